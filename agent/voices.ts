/**
 * Speech synthesis for `speak: { text, voice }`, pluggable by engine. A voice is `engine:name`
 * or a bare espeak-ng voice: `en-us` / `espeak:en-us` (espeak-ng, the default), `flite:slt`
 * (Debian's flite, when installed), `festival:cmu_us_slt_arctic_hts` (Debian's Festival with an
 * HTS voice, when installed), `openai:alloy` (OpenAI's speech API, with a key). Local engines
 * get the text on stdin or in a file, never on the command line. Synthesized audio is cached
 * by SHA-256 of (engine, voice, text) in the agent's audio cache, so a repeated utterance is
 * synthesized once; a cloud voice without a working key fails the run with a clear error and
 * never falls back to another engine. A replay (agent/replay.ts) speaks the audio a stored
 * result spoke, by the same key, and synthesizes nothing.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { synthesize } from "./audio.ts";
import { withAgentLife } from "./die_with_agent.ts";

/** The engines; a voice names one (`engine:voice`), espeak-ng when it names none. */
export const ENGINES = ["espeak", "flite", "festival", "openai"] as const;
export type Engine = typeof ENGINES[number];

/** Where a run's synthesis gets its keys and keeps its cache. */
export interface SpeechOptions {
  /** Secrets of the job (the workflow's sealed secrets in an offer; the environment in run mode). */
  secrets?: Record<string, string>;
  /** Cache folder for synthesized audio (none: no cache). */
  cacheDir?: string;
  /** OpenAI's API base (VOX_TTS_OPENAI_URL; tests point it at a local fake). */
  openaiUrl?: string;
  /** Filled with what was spoken, by cache key (the daemon stores the speech with the result). */
  spoken?: Map<string, SpokenAudio>;
  /** A replay: the audio to speak, by cache key; nothing is synthesized (agent/replay.ts). */
  replay?: ReplayAudio;
}

/** The audio of a stored result, by cache key, that a replay speaks instead of synthesizing. */
export interface ReplayAudio {
  /** What is replayed (a result's URL), for messages and the report. */
  of: string;
  audio: ReadonlyMap<string, Uint8Array>;
}

/** One synthesized utterance: what made it and the SHA-256 of its audio. */
export interface SpokenAudio {
  engine: Engine;
  voice: string;
  text: string;
  sha256: string;
  bytes: number;
  /** The cached file (when the run has a cache and the audio was synthesized or cached). */
  path: string | null;
  /** The audio itself (run mode keeps it next to its report, for a replay). */
  audio: Uint8Array;
}

/** One utterance as a report lists it (`report.speech`): what made it, its key and its audio's hash. */
export interface SpeechRecord {
  /** The cache key, speechKey(engine, voice, text): what a replay looks the audio up by. */
  key: string;
  engine: Engine;
  voice: string;
  /** The text (at most its first 500 characters). */
  text: string;
  sha256: string;
  bytes: number;
  /** The artifact holding the audio (`speech-<sha256>.wav`), null when it was not stored. */
  artifact: string | null;
}

/** The artifact name of synthesized speech: `speech-<sha256>.wav` (lib/artifacts.ts ARTIFACT_NAME). */
export function speechArtifactName(sha256: string): string {
  return `speech-${sha256}.wav`;
}

/** What `spoken` holds, as `report.speech`; `stored` says which audio hashes have an artifact. */
export function speechRecords(
  spoken: ReadonlyMap<string, SpokenAudio>,
  stored: ReadonlySet<string>,
): SpeechRecord[] {
  return [...spoken.entries()].map(([key, s]) => ({
    key,
    engine: s.engine,
    voice: s.voice,
    text: s.text.slice(0, 500),
    sha256: s.sha256,
    bytes: s.bytes,
    artifact: stored.has(s.sha256) ? speechArtifactName(s.sha256) : null,
  }));
}

/** The secret the OpenAI engine reads its key from. */
export const OPENAI_KEY_SECRET = "OPENAI_API_KEY";
/** The OpenAI speech model (VOX_TTS_OPENAI_MODEL). */
const OPENAI_MODEL = "gpt-4o-mini-tts";

/** A synthesis that cannot happen (no key, a refused key, an engine that is not installed). */
export class SpeechError extends Error {
  override name = "SpeechError";
}

/** Engine and voice of a step's `voice` (undefined: espeak-ng's en-us). */
export function parseVoice(voice: string | undefined): { engine: Engine; voice: string } {
  if (!voice) return { engine: "espeak", voice: "en-us" };
  const m = /^(espeak|flite|festival|openai):(.+)$/.exec(voice);
  return m ? { engine: m[1] as Engine, voice: m[2] } : { engine: "espeak", voice };
}

/** The cache key of an utterance: SHA-256 of engine, voice and text. */
export function speechKey(engine: string, voice: string, text: string): string {
  return createHash("sha256").update(`${engine}\0${voice}\0${text}`).digest("hex");
}

/** Audio bytes (WAV) of `text` in `voice`, from the cache when it has them. */
export async function speak(
  text: string,
  voice: string | undefined,
  options: SpeechOptions = {},
): Promise<Uint8Array> {
  const v = parseVoice(voice);
  const key = speechKey(v.engine, v.voice, text);
  const path = options.cacheDir ? join(options.cacheDir, `tts-${key}.wav`) : null;
  const note = (bytes: Uint8Array, file = path) => {
    options.spoken?.set(key, {
      ...v,
      text,
      sha256: createHash("sha256").update(bytes).digest("hex"),
      bytes: bytes.length,
      path: file,
      audio: bytes,
    });
    return bytes;
  };
  if (options.replay) {
    // A replay speaks exactly what was spoken: an utterance the result has no audio for is an
    // error, never a fresh synthesis that could sound different.
    const bytes = options.replay.audio.get(key);
    if (!bytes) {
      throw new SpeechError(
        `replay of ${options.replay.of}: it holds no audio for ${v.engine}:${v.voice} ${
          JSON.stringify(text.slice(0, 80))
        }; nothing was spoken`,
      );
    }
    return note(bytes, null);
  }
  if (path) {
    try {
      return note(await Deno.readFile(path));
    } catch { /* not cached yet */ }
  }
  const bytes = v.engine === "espeak"
    ? await synthesize(text, v.voice)
    : v.engine === "flite"
    ? await flite(text, v.voice)
    : v.engine === "festival"
    ? await festival(text, v.voice)
    : await openai(text, v.voice, options);
  if (path) {
    await Deno.mkdir(options.cacheDir!, { recursive: true, mode: 0o700 });
    const tmp = `${path}.${crypto.randomUUID()}.part`;
    await Deno.writeFile(tmp, bytes, { mode: 0o600 });
    await Deno.rename(tmp, path);
  }
  return note(bytes);
}

/** flite (Debian's `flite`): the text goes in a file of its own, never on the command line. */
async function flite(text: string, voice: string): Promise<Uint8Array> {
  if (!/^[A-Za-z0-9_-]{1,50}$/.test(voice)) throw new SpeechError(`flite: not a voice name: ${voice}`);
  // flite speaks an unknown voice with its default one, silently: the voice must be listed.
  const voices = await fliteVoices();
  if (!voices.includes(voice)) {
    throw new SpeechError(
      `voice flite:${voice}: flite has no such voice (it has ${voices.join(", ") || "none"})`,
    );
  }
  return await textFileToWav(
    `flite:${voice}`,
    { name: "flite", missing: "flite" },
    (textFile, wavFile) =>
      withAgentLife(Deno.env.get("FLITE_PATH") ?? "flite", ["-voice", voice, "-f", textFile, "-o", wavFile]),
    text,
  );
}

/**
 * Runs an engine that reads the text from a file of its own and writes a WAV file (flite,
 * Festival's text2wave), in a temporary folder removed afterwards. `label` names the voice in
 * errors, `engine` the program when it fails and `missing` when it is not installed.
 */
async function textFileToWav(
  label: string,
  engine: { name: string; missing: string },
  command: (textFile: string, wavFile: string) => { cmd: string; args: string[] },
  text: string,
): Promise<Uint8Array> {
  const dir = await Deno.makeTempDir({ prefix: "vox-tts-" });
  try {
    const textFile = join(dir, "text.txt");
    const wavFile = join(dir, "out.wav");
    await Deno.writeTextFile(textFile, text);
    const cmd = command(textFile, wavFile);
    let out: Deno.CommandOutput;
    try {
      out = await new Deno.Command(cmd.cmd, {
        args: cmd.args,
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      })
        .output();
    } catch (err) {
      throw new SpeechError(`voice ${label}: ${engine.missing} is not installed (${(err as Error).message})`);
    }
    const wav = await Deno.readFile(wavFile).catch(() => null);
    if (!out.success || !wav || wav.length < 64) {
      const why = new TextDecoder().decode(out.stderr).trim().split("\n")[0];
      throw new SpeechError(`voice ${label}: ${engine.name} failed (${why || "no audio"})`);
    }
    return wav;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

let fliteVoiceList: Promise<string[]> | null = null;
/** The voices `flite -lv` lists (asked once per process). */
function fliteVoices(): Promise<string[]> {
  fliteVoiceList ??= (async () => {
    try {
      const out = await new Deno.Command(Deno.env.get("FLITE_PATH") ?? "flite", {
        args: ["-lv"],
        stdin: "null",
        stdout: "piped",
        stderr: "null",
      }).output();
      return new TextDecoder().decode(out.stdout).replace(/^.*:/, "").trim().split(/\s+/).filter(Boolean);
    } catch (err) {
      fliteVoiceList = null;
      throw new SpeechError(`flite is not installed (${(err as Error).message})`);
    }
  })();
  return fliteVoiceList;
}

/**
 * Festival (Debian's `festival` with a voice package such as `festvox-us-slt-hts`) through its
 * `text2wave` script: the text goes in a file of its own; the voice is checked against the
 * voices Festival lists first, since `text2wave` exits 0 without audio for an unknown one.
 */
async function festival(text: string, voice: string): Promise<Uint8Array> {
  if (!/^[a-z0-9_]{1,60}$/.test(voice)) throw new SpeechError(`festival: not a voice name: ${voice}`);
  const voices = await festivalVoices().catch((err) => {
    throw new SpeechError(`voice festival:${voice}: ${err.message}`);
  });
  if (!voices.includes(voice)) {
    throw new SpeechError(
      `voice festival:${voice}: Festival has no such voice (it has ${voices.join(", ") || "none"})`,
    );
  }
  return await textFileToWav(
    `festival:${voice}`,
    { name: "Festival", missing: "Festival's text2wave" },
    (textFile, wavFile) =>
      withAgentLife(Deno.env.get("TEXT2WAVE_PATH") ?? "text2wave", [
        "-eval",
        `(voice_${voice})`,
        textFile,
        "-o",
        wavFile,
      ]),
    text,
  );
}

const festivalVoiceLists = new Map<string, Promise<string[]>>();
/** The voices Festival lists (`(voice.list)`), asked once per process and binary. */
function festivalVoices(): Promise<string[]> {
  const bin = Deno.env.get("FESTIVAL_PATH") ?? "festival";
  let list = festivalVoiceLists.get(bin);
  if (!list) {
    list = (async () => {
      let out: Deno.CommandOutput;
      try {
        out = await new Deno.Command(bin, {
          args: ["--batch", "(print (voice.list))"],
          stdin: "null",
          stdout: "piped",
          stderr: "null",
        }).output();
      } catch (err) {
        festivalVoiceLists.delete(bin);
        throw new SpeechError(
          `Festival is not installed (${
            (err as Error).message
          }); on Debian: apt-get install festival festvox-us-slt-hts`,
        );
      }
      // `(cmu_us_slt_arctic_hts kal_diphone)`: the names between the parentheses.
      return new TextDecoder().decode(out.stdout).replace(/[()]/g, " ").trim().split(/\s+/).filter(Boolean);
    })();
    festivalVoiceLists.set(bin, list);
  }
  return list;
}

/** OpenAI's speech API (POST /v1/audio/speech, WAV back), with the job's key. */
async function openai(text: string, voice: string, options: SpeechOptions): Promise<Uint8Array> {
  const key = options.secrets?.[OPENAI_KEY_SECRET];
  if (!key) {
    throw new SpeechError(
      `voice openai:${voice} needs the secret ${OPENAI_KEY_SECRET} (the workflow's sealed secrets on a server; the environment in run mode); nothing was spoken`,
    );
  }
  const base = (options.openaiUrl ?? Deno.env.get("VOX_TTS_OPENAI_URL") ?? "https://api.openai.com").replace(
    /\/+$/,
    "",
  );
  let res: Response;
  try {
    res = await fetch(`${base}/v1/audio/speech`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({
        model: Deno.env.get("VOX_TTS_OPENAI_MODEL") ?? OPENAI_MODEL,
        voice,
        input: text,
        response_format: "wav",
      }),
    });
  } catch (err) {
    throw new SpeechError(`voice openai:${voice}: cannot reach ${base} (${(err as Error).message})`);
  }
  if (!res.ok) {
    // The body may quote part of the key: only its error code is repeated.
    let code = "";
    try {
      code = String((await res.json())?.error?.code ?? "");
    } catch { /* not JSON */ }
    const what = res.status === 401 || res.status === 403 ? "refused the key" : "failed";
    throw new SpeechError(
      `voice openai:${voice}: the OpenAI speech API ${what} (HTTP ${res.status}${
        code ? ` ${code}` : ""
      }); nothing was spoken`,
    );
  }
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (bytes.length < 64) throw new SpeechError(`voice openai:${voice}: the OpenAI speech API sent no audio`);
  return bytes;
}

/**
 * Synthesizes every `speak`/`barge_in` text of `configs` before a browser starts, so a voice
 * that cannot speak (no key, a refused key) fails the job at once; the cache then serves the
 * runs. Throws SpeechError naming the file and step.
 */
export async function prepareSpeech(
  configs: readonly {
    path: string;
    steps: readonly { action: string; [k: string]: unknown }[];
    speech?: SpeechOptions;
  }[],
): Promise<void> {
  for (const config of configs) {
    for (const [i, step] of config.steps.entries()) {
      if (typeof step.text !== "string" || (step.action !== "speak" && step.action !== "barge_in")) continue;
      try {
        await speak(step.text, step.voice as string | undefined, config.speech);
      } catch (err) {
        if (!(err instanceof SpeechError)) throw err;
        throw new SpeechError(`step ${i + 1} (${step.action}): ${err.message}`);
      }
    }
  }
}
