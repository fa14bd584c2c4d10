/**
 * Replay (issue 18): a run that speaks exactly the caller audio a stored result spoke, rather
 * than synthesizing its texts again (another espeak-ng build, another flite, a cloud voice's
 * next model would each sound different). `deno task agent run … --replay <result URL>` reads
 * the result with the user's API key (`GET /api/v1/results/:id`), takes the utterances its
 * report lists in `speech` (engine, voice, text, key, SHA-256, artifact), and fetches each
 * `speech-<sha256>.wav` artifact the daemon stored with it over the same authenticated API,
 * bounded by its listed size, verified against its SHA-256 and cached by that hash (the clip
 * cache of agent/clips.ts). The run then speaks those bytes by the utterance's key
 * (agent/voices.ts `SpeechOptions.replay`): a text the result did not speak is an error, never
 * a fresh synthesis. `--replay <report.json>` does the same from a run-mode report: run mode
 * writes each utterance's audio as `speech-<sha256>.wav` into its recordings folder, and the
 * replay reads exactly those names from the report's folder or its `recordings/` folder,
 * verified against the report's hashes. Nothing here opens a path a config or a report names.
 */
import { createHash } from "node:crypto";
import { dirname, join, resolve } from "node:path";
import { z } from "zod";
import { ClipError, verifiedBytes } from "./clips.ts";
import { ENGINES, type ReplayAudio, speechArtifactName, speechKey } from "./voices.ts";

/** What a replayed run's report says it replayed (`report.replay`). */
export interface ReplayInfo {
  /** The result's URL, or the report file's absolute path. */
  of: string;
  /** The result and its job (null for a report file). */
  result_id: number | null;
  job_id: number | null;
  /** Utterances the result holds audio for, by key. */
  utterances: number;
  /** How many of them came from the server now, and how many from the agent's cache. */
  fetched: number;
  cached: number;
}

/** A replay that cannot happen: a bad reference, a refused key, a result without stored audio. */
export class ReplayError extends Error {
  override name = "ReplayError";
}

const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
// Only what a replay needs of a report (agent/voices.ts SpeechRecord); the rest is left alone.
const reportSchema = z.looseObject({
  speech: z.array(z.looseObject({
    key: sha256.optional(),
    engine: z.enum(ENGINES),
    voice: z.string().max(100),
    text: z.string().max(500),
    sha256,
    bytes: z.number().int().positive(),
    artifact: z.string().nullable().optional(),
  })).max(1000).optional(),
});
type Utterance = NonNullable<z.infer<typeof reportSchema>["speech"]>[number];
// Only what a replay needs of `GET /api/v1/results/:id`.
const resultSchema = z.object({
  id: z.number().int(),
  jobId: z.number().int(),
  report: reportSchema.nullable(),
  artifacts: z.array(z.object({ name: z.string(), sizeBytes: z.number().int(), sha256: z.string() })),
});

/**
 * The server and result id of a result URL: `https://vox.example/api/v1/results/42`, or the
 * console's `https://vox.example/console/results/42`. Throws ReplayError for anything else.
 */
export function parseResultUrl(ref: string): { base: string; resultId: number } {
  let url: URL;
  try {
    url = new URL(ref);
  } catch {
    throw new ReplayError(`--replay: not a result URL: ${ref} (e.g. https://vox.example/api/v1/results/42)`);
  }
  const m = /^(.*?)(?:\/api\/v1|\/console)?\/results\/(\d{1,15})\/?$/.exec(url.pathname);
  if (!/^https?:$/.test(url.protocol) || !m || url.search || url.hash) {
    throw new ReplayError(`--replay: not a result URL: ${ref} (e.g. https://vox.example/api/v1/results/42)`);
  }
  return { base: url.origin + m[1], resultId: Number(m[2]) };
}

/** The cache key of a listed utterance: its recorded key, or (older reports) its key recomputed. */
function keyOf(s: Utterance, where: string): string {
  // A long text is listed cut to 500 characters: only its recorded key finds it again.
  const key = s.key ?? (s.text.length < 500 ? speechKey(s.engine, s.voice, s.text) : null);
  if (!key) throw new ReplayError(`--replay: ${where} lists ${describe(s)} without its key`);
  return key;
}

const describe = (s: Utterance) => `${s.engine}:${s.voice} ${JSON.stringify(s.text.slice(0, 80))}`;

/**
 * The audio to replay from `ref`: a result URL (fetched with the API key `apiKey`, cached by
 * SHA-256 in `cacheDir`) or a run-mode report file; ready for `SpeechOptions.replay`. Throws
 * ReplayError.
 */
export async function loadReplay(
  ref: string,
  options: { apiKey: string | undefined; cacheDir: string; signal?: AbortSignal },
): Promise<{ audio: ReplayAudio; info: ReplayInfo }> {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(ref) ? await loadResult(ref, options) : await loadReportFile(ref);
}

/** A run-mode report's speech, from `speech-<sha256>.wav` files beside it or in its `recordings/`. */
async function loadReportFile(path: string): Promise<{ audio: ReplayAudio; info: ReplayInfo }> {
  const of = resolve(path);
  let json: unknown;
  try {
    json = JSON.parse(await Deno.readTextFile(of));
  } catch (err) {
    throw new ReplayError(`--replay: cannot read the report ${of} (${(err as Error).message.split(":")[0]})`);
  }
  const parsed = reportSchema.safeParse(json);
  if (!parsed.success) throw new ReplayError(`--replay: ${of} is not a Vox report`);
  const speech = parsed.data.speech ?? [];
  if (speech.length === 0) {
    throw new ReplayError(`--replay: the report ${of} synthesized no speech; there is nothing to replay`);
  }
  const audio = new Map<string, Uint8Array>();
  for (const s of speech) {
    const name = speechArtifactName(s.sha256);
    let bytes: Uint8Array | null = null;
    // Only the name the hash makes, in the two folders a run writes it to; never a listed path.
    for (const dir of [dirname(of), join(dirname(of), "recordings")]) {
      bytes = await Deno.readFile(join(dir, name)).catch(() => null);
      if (bytes) break;
    }
    if (!bytes) {
      throw new ReplayError(
        `--replay: no ${name} (the audio of ${describe(s)}) beside ${of} or in its recordings/ folder`,
      );
    }
    const got = createHash("sha256").update(bytes).digest("hex");
    if (got !== s.sha256) {
      throw new ReplayError(`--replay: ${name} hashes to ${got}, not ${s.sha256}; refused`);
    }
    audio.set(keyOf(s, of), bytes);
  }
  return {
    audio: { of, audio },
    info: { of, result_id: null, job_id: null, utterances: audio.size, fetched: 0, cached: audio.size },
  };
}

/** A stored result's speech, fetched over the results API (see the module's comment). */
async function loadResult(
  ref: string,
  options: { apiKey: string | undefined; cacheDir: string; signal?: AbortSignal },
): Promise<{ audio: ReplayAudio; info: ReplayInfo }> {
  const { base, resultId } = parseResultUrl(ref);
  const of = `${base}/api/v1/results/${resultId}`;
  if (!options.apiKey) {
    throw new ReplayError(`--replay: reading result ${resultId} needs an API key in VOX_API_KEY`);
  }
  const auth = { authorization: `Bearer ${options.apiKey}` };
  let res: Response;
  try {
    res = await fetch(of, { headers: auth, signal: options.signal });
  } catch (err) {
    throw new ReplayError(`--replay: cannot reach ${base} (${(err as Error).message})`);
  }
  if (res.status !== 200) {
    const why = res.status === 401
      ? "the API key was refused"
      : res.status === 404
      ? "no such result you can see"
      : "";
    await res.body?.cancel();
    throw new ReplayError(`--replay: ${of} answered ${res.status}${why ? ` (${why})` : ""}`);
  }
  const parsed = resultSchema.safeParse(await res.json().catch(() => null));
  if (!parsed.success) throw new ReplayError(`--replay: ${of} did not answer with a result`);
  const result = parsed.data;
  const speech = result.report?.speech ?? [];
  if (speech.length === 0) {
    throw new ReplayError(`--replay: result ${resultId} synthesized no speech; there is nothing to replay`);
  }
  const stored = new Map(result.artifacts.map((a) => [a.name, a]));
  const audio = new Map<string, Uint8Array>();
  let fetched = 0;
  for (const s of speech) {
    const what = describe(s);
    const name = speechArtifactName(s.sha256);
    const artifact = stored.get(name);
    if (s.artifact !== name || !artifact || artifact.sha256 !== s.sha256) {
      throw new ReplayError(
        `--replay: result ${resultId} did not store the audio of ${what} (an agent older than replay kept only cloud speech, or the job's artifact limit left no room); it cannot be replayed exactly`,
      );
    }
    const key = keyOf(s, `result ${resultId}`);
    try {
      const got = await verifiedBytes(
        options.cacheDir,
        { sha256: s.sha256, bytes: artifact.sizeBytes, what: `the speech ${name} of result ${resultId}` },
        `${of}/artifacts/${name}`,
        options.apiKey,
        options.signal,
      );
      if (got.fetched) fetched++;
      audio.set(key, got.bytes);
    } catch (err) {
      if (err instanceof ClipError) throw new ReplayError(`--replay: ${err.message}`);
      throw err;
    }
  }
  return {
    audio: { of, audio },
    info: {
      of,
      result_id: result.id,
      job_id: result.jobId,
      utterances: audio.size,
      fetched,
      cached: audio.size - fetched,
    },
  };
}
