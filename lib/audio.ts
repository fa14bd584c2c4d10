// Caller audio (issue 18): clips a project uploads, the shipped library, and the agreement
// between an eval set's audio names and what an agent will be given. Clip bytes are stored
// once per content (SHA-256) through the artifact store (lib/artifact_store.ts, audio_blobs +
// audio_blob_chunks or the S3 bucket); names are per project and plain (agent/format.ts
// FILE_NAME, the agent's file rules). A job's offer carries the name, hash and size of every
// clip its eval set uses (offerClipsSql, libraryClipsFor); the agent fetches them by hash over
// its authenticated route (routes/api/agent_gateway.ts) and verifies them.
import { createHash } from "node:crypto";
import { join } from "node:path";
import { FILE_NAME, type Step } from "../agent/format.ts";
import type { ArtifactStore } from "./artifact_store.ts";
import { AudioProblem, probeAudio, sniffFormat } from "./audio_probe.ts";
import type { Db, Fragment, Sql } from "./db.ts";
import { HttpError } from "./errors.ts";
import { accessibleProject, assertProjectAccess } from "./projects.ts";
import type { AuthUser } from "./roles.ts";
import { readSetting } from "./settings.ts";
import manifest from "../assets/library/v1/manifest.json" with { type: "json" };

/** One shipped library clip (assets/library/v1/manifest.json, made by tasks/make_audio_library.sh). */
export interface LibraryClip {
  name: string;
  kind: "speech" | "bed";
  text: string;
  voice: string;
  engine: string;
  sha256: string;
  bytes: number;
  durationMs: number;
}

/** The library's folder on the server. */
export const LIBRARY_DIR = new URL("../assets/library/v1/", import.meta.url).pathname;
/** The shipped library, by name. */
export const LIBRARY: ReadonlyMap<string, LibraryClip> = new Map(
  (manifest as LibraryClip[]).map((c) => [c.name, c]),
);

/**
 * Voices the console offers for `speak: { text, voice }` (agent/voices.ts engines): espeak-ng's
 * (bare or `espeak:`), Debian flite's built-in ones, Festival's HTS voice from Debian's
 * `festvox-us-slt-hts`, and OpenAI's (which need the workflow's
 * OPENAI_API_KEY secret). Any other voice the step schema accepts may still be typed.
 */
export const VOICES: readonly string[] = [
  "en-us",
  "en-gb",
  "en-gb-scotland",
  "en-029",
  "espeak:en-us+f3",
  "flite:slt",
  "flite:rms",
  "flite:awb",
  "flite:kal",
  "flite:kal16",
  "festival:cmu_us_slt_arctic_hts",
  "openai:alloy",
  "openai:ash",
  "openai:coral",
  "openai:echo",
  "openai:fable",
  "openai:nova",
  "openai:onyx",
  "openai:sage",
  "openai:shimmer",
];

/** What the API says of a project's clip. */
export interface ClipInfo {
  name: string;
  sha256: string;
  durationMs: number;
  sampleRate: number;
  channels: number;
  bytes: number;
  format: string;
  createdAt: string;
}

/** A clip as a job's offer carries it (agent/protocol.ts jobOfferSchema.audio). */
export interface OfferClip {
  name: string;
  sha256: string;
  bytes: number;
}

/** Upload bounds (VOX_AUDIO_MAX_BYTES, VOX_AUDIO_MAX_SECONDS). */
export interface AudioLimits {
  maxBytes: number;
  maxSeconds: number;
}

/** Every audio file name a scenario config uses: step files, noise files, the background. */
export function audioNamesOf(
  config: Record<string, unknown>,
): { name: string; step: number | null; action: string; field: string }[] {
  const out: { name: string; step: number | null; action: string; field: string }[] = [];
  const steps = Array.isArray(config.steps) ? config.steps as Step[] : [];
  for (const [i, step] of steps.entries()) {
    if (!step || typeof step !== "object") continue;
    if (typeof step.file === "string") {
      out.push({ name: step.file, step: i, action: step.action, field: "file" });
    }
    const noise = step.noise as { file?: unknown } | undefined;
    if (typeof noise?.file === "string") {
      out.push({ name: noise.file, step: i, action: step.action, field: "noise.file" });
    }
  }
  const bg = config.background;
  if (typeof bg === "string") out.push({ name: bg, step: null, action: "", field: "background" });
  else if (bg && typeof (bg as { file?: unknown }).file === "string") {
    out.push({ name: (bg as { file: string }).file, step: null, action: "", field: "background.file" });
  }
  return out;
}

/**
 * 400 unless every audio name `config` uses is a clip of project `projectId`, a library clip,
 * or one of the names the operators declared their agents carry (`audio.agent_assets`). The
 * message names the step (1-based) and the name. voice-agent-tester's `background: <file>`
 * that exists nowhere is let through: the agent warns and runs without it, as the tester did.
 */
export async function assertAudioKnown(
  tx: Db,
  projectId: number,
  config: Record<string, unknown>,
): Promise<void> {
  const used = audioNamesOf(config);
  if (used.length === 0) return;
  const names = [...new Set(used.map((u) => u.name))];
  const rows = await tx<{ name: string }[]>`
    SELECT name FROM project_audio WHERE project_id = ${projectId} AND name IN ${tx(names)}`;
  const have = new Set(rows.map((r) => r.name));
  const declared = new Set(await readSetting(tx, "audio.agent_assets"));
  for (const u of used) {
    if (have.has(u.name) || LIBRARY.has(u.name) || declared.has(u.name)) continue;
    if (u.field === "background") continue;
    const where = u.step === null ? `config.${u.field}` : `config.steps.${u.step}.${u.field}`;
    throw new HttpError(
      400,
      "invalid_input",
      `${where}: ${
        u.step === null ? "the background" : `step ${u.step + 1} (${u.action})`
      } names audio "${u.name}", which is not a clip of project ${projectId}, a library clip or a declared agent asset`,
      { details: { issues: [{ field: where, message: `unknown audio "${u.name}"` }] } },
    );
  }
}

/**
 * SQL: the project clips (name, sha256, bytes) an eval set `e` (alias) names in its config, as
 * a jsonb array — what a job's offer carries (lib/queue.ts) and what its agent may fetch.
 */
export function offerClipsSql(sql: Db, alias = "e"): Fragment {
  const e = sql(alias);
  return sql`(
    SELECT coalesce(jsonb_agg(jsonb_build_object('name', pa.name, 'sha256', b.sha256, 'bytes', b.size_bytes)
                    ORDER BY pa.name), '[]'::jsonb)
    FROM project_audio pa JOIN audio_blobs b ON b.id = pa.blob_id
    WHERE pa.project_id = ${e}.project_id AND pa.name IN (
      SELECT v #>> '{}' FROM jsonb_path_query(${e}.config, 'lax $.steps[*].file') v
      UNION SELECT v #>> '{}' FROM jsonb_path_query(${e}.config, 'lax $.steps[*].noise.file') v
      UNION SELECT v #>> '{}' FROM jsonb_path_query(${e}.config, 'lax $.background') v WHERE jsonb_typeof(v) = 'string'
      UNION SELECT v #>> '{}' FROM jsonb_path_query(${e}.config, 'lax $.background.file') v))`;
}

/** The offer's clips: the project's (from offerClipsSql), then library clips the config names that the project does not shadow. */
export function offerClips(projectClips: OfferClip[], config: Record<string, unknown>): OfferClip[] {
  const out = [...projectClips];
  const taken = new Set(out.map((c) => c.name));
  for (const { name } of audioNamesOf(config)) {
    const lib = LIBRARY.get(name);
    if (!lib || taken.has(name)) continue;
    taken.add(name);
    out.push({ name, sha256: lib.sha256, bytes: lib.bytes });
  }
  return out;
}

/**
 * The bytes of clip `sha256` for the agent holding job `jobId` with a token `tokenId`: only a
 * clip that job's offer carries. Null when the job is not held by that token or carries no such clip.
 */
export async function jobClipBytes(
  sql: Db,
  store: ArtifactStore,
  input: { jobId: number; tokenId: number; sha256: string },
): Promise<{ bytes: number; body: ReadableStream<Uint8Array> } | "not_held" | null> {
  const [job] = await sql<{ clips: OfferClip[]; config: Record<string, unknown> }[]>`
    SELECT ${offerClipsSql(sql)} AS clips, e.config
    FROM eval_jobs j JOIN eval_agents a ON a.id = j.agent_id JOIN eval_sets e ON e.id = j.eval_set_id
    WHERE j.id = ${input.jobId} AND j.status = 'running' AND a.token_id = ${input.tokenId}`;
  if (!job) return "not_held";
  const clip = offerClips(job.clips, job.config).find((c) => c.sha256 === input.sha256);
  if (!clip) return null;
  const lib = [...LIBRARY.values()].find((l) => l.sha256 === clip.sha256 && l.name === clip.name);
  if (lib && !job.clips.some((c) => c.sha256 === clip.sha256)) {
    const file = await Deno.open(join(LIBRARY_DIR, lib.name));
    return { bytes: lib.bytes, body: file.readable };
  }
  return await blobBytes(sql, store, clip.sha256);
}

async function blobBytes(sql: Db, store: ArtifactStore, sha256: string) {
  const [b] =
    await sql`SELECT id, storage, storage_key, size_bytes FROM audio_blobs WHERE sha256 = ${sha256}`;
  if (!b) return null;
  return {
    bytes: b.sizeBytes as number,
    body: store.read(sql, { id: b.id, storage: b.storage, storageKey: b.storageKey }),
  };
}

const COLUMNS = (sql: Db) =>
  sql`pa.name, b.sha256, b.duration_ms, b.sample_rate, b.channels, b.size_bytes, b.format, pa.created_at`;

function toClip(r: Record<string, unknown>): ClipInfo {
  return {
    name: r.name as string,
    sha256: r.sha256 as string,
    durationMs: r.durationMs as number,
    sampleRate: r.sampleRate as number,
    channels: r.channels as number,
    bytes: r.sizeBytes as number,
    format: r.format as string,
    createdAt: r.createdAt instanceof Date ? r.createdAt.toISOString() : String(r.createdAt),
  };
}

/** A plain clip name from `given`, or from an upload's file name made plain; 400 when neither works. */
export function clipName(given: string | undefined, filename: string | undefined): string {
  if (given !== undefined && given !== "") {
    if (given.length > 200 || !FILE_NAME.test(given)) {
      throw new HttpError(
        400,
        "invalid_input",
        "name: a plain file name (letters, digits, . _ -; no folder, no leading dot; at most 200)",
      );
    }
    return given;
  }
  const base = (filename ?? "").split(/[\\/]/).pop() ?? "";
  const plain = base.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^[.]+/, "").slice(0, 200);
  if (!plain || !FILE_NAME.test(plain)) {
    throw new HttpError(
      400,
      "invalid_input",
      "name: give a plain file name (the upload's own name has none)",
    );
  }
  return plain;
}

function libraryClash(name: string): void {
  if (LIBRARY.has(name)) {
    throw new HttpError(409, "conflict", `name: "${name}" is a library clip's name; choose another`);
  }
}

/**
 * Stores an uploaded clip in project `projectId` under `name`: probed by decoding (400
 * unsupported_audio / corrupt_audio / audio_too_long), stored once per content, named once per
 * project (409 when the name is taken). `bytes` is the whole file (the route bounds it).
 */
export async function uploadClip(
  sql: Sql,
  store: ArtifactStore,
  user: AuthUser,
  input: { projectId: number; name: string; bytes: Uint8Array },
  limits: AudioLimits,
): Promise<ClipInfo> {
  await assertProjectAccess(sql, user, input.projectId);
  libraryClash(input.name);
  if (input.bytes.length > limits.maxBytes) throw tooLarge(input.bytes.length, limits.maxBytes);
  if (input.bytes.length === 0) throw new HttpError(400, "corrupt_audio", "file: the file is empty");
  const dir = await Deno.makeTempDir({ prefix: "vox-audio-" });
  let info;
  try {
    // Named by what the bytes say they are, so soxi reads them as that.
    const ext = sniffFormat(input.bytes.subarray(0, 64)) ?? "bin";
    const path = join(dir, `clip.${ext}`);
    await Deno.writeFile(path, input.bytes);
    info = await probeAudio(path, input.bytes, limits.maxSeconds * 1000);
  } catch (err) {
    if (err instanceof AudioProblem) {
      const code =
        { unsupported: "unsupported_audio", corrupt: "corrupt_audio", too_long: "audio_too_long" }[err.kind];
      throw new HttpError(400, code, `file: ${err.message}`);
    }
    throw err;
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  const sha256 = createHash("sha256").update(input.bytes).digest("hex");
  return await sql.begin(async (tx) => {
    const [taken] =
      await tx`SELECT 1 FROM project_audio WHERE project_id = ${input.projectId} AND name = ${input.name}`;
    if (taken) {
      throw new HttpError(
        409,
        "conflict",
        `name: project ${input.projectId} already has a clip named "${input.name}"`,
      );
    }
    const blobId = await storeBlob(tx, store, sha256, input.bytes, info);
    await tx`
      INSERT INTO project_audio (project_id, name, blob_id, created_by)
      VALUES (${input.projectId}, ${input.name}, ${blobId}, ${user.id})`;
    const [row] = await tx`
      SELECT ${COLUMNS(tx)} FROM project_audio pa JOIN audio_blobs b ON b.id = pa.blob_id
      WHERE pa.project_id = ${input.projectId} AND pa.name = ${input.name}`;
    return toClip(row);
  });
}

/** The blob with these bytes (stored now when new), by id; inside the caller's transaction. */
export async function storeBlob(
  tx: Db,
  store: ArtifactStore,
  sha256: string,
  bytes: Uint8Array,
  info: { format: string; durationMs: number; sampleRate: number; channels: number },
): Promise<number> {
  const [created] = await tx`
    INSERT INTO audio_blobs (sha256, size_bytes, format, duration_ms, sample_rate, channels, storage)
    VALUES (${sha256}, ${bytes.length}, ${info.format}, ${info.durationMs}, ${info.sampleRate}, ${info.channels},
            ${store.kind})
    ON CONFLICT (sha256) DO NOTHING RETURNING id`;
  if (!created) {
    const [have] = await tx`SELECT id FROM audio_blobs WHERE sha256 = ${sha256}`;
    return have.id;
  }
  async function* body() {
    yield bytes;
  }
  const key = await store.write(tx, created.id, `audio/${sha256}`, body());
  await tx`UPDATE audio_blobs SET storage_key = ${key} WHERE id = ${created.id}`;
  return created.id;
}

function tooLarge(size: number, max: number): HttpError {
  return new HttpError(
    413,
    "payload_too_large",
    `file: ${size} bytes is over the ${max}-byte limit for an audio clip (VOX_AUDIO_MAX_BYTES)`,
    { details: { limit: "VOX_AUDIO_MAX_BYTES", maxBytes: max } },
  );
}

/** The 413 for an upload whose request is over the clip limit before it is read. */
export function uploadTooLarge(size: number, max: number): HttpError {
  return tooLarge(size, max);
}

/** Eval sets of the project that name `name` (ids and names), for "used by" and the 409. */
export async function clipUsers(
  sql: Db,
  projectId: number,
): Promise<Map<string, { id: number; name: string }[]>> {
  const sets = await sql<{ id: number; name: string; config: Record<string, unknown> }[]>`
    SELECT id, name, config FROM eval_sets WHERE project_id = ${projectId} ORDER BY id`;
  const users = new Map<string, { id: number; name: string }[]>();
  for (const s of sets) {
    for (const n of new Set(audioNamesOf(s.config).map((u) => u.name))) {
      users.set(n, [...(users.get(n) ?? []), { id: s.id, name: s.name }]);
    }
  }
  return users;
}

/** A project's clips, each with the eval sets that use it. */
export async function listClips(
  sql: Db,
  user: AuthUser,
  projectId: number,
): Promise<(ClipInfo & { usedBy: { id: number; name: string }[] })[]> {
  await assertProjectAccess(sql, user, projectId);
  const rows = await sql`
    SELECT ${COLUMNS(sql)} FROM project_audio pa JOIN audio_blobs b ON b.id = pa.blob_id
    WHERE pa.project_id = ${projectId} ORDER BY pa.name`;
  const users = await clipUsers(sql, projectId);
  return rows.map((r) => ({ ...toClip(r), usedBy: users.get(r.name as string) ?? [] }));
}

/** One clip of a visible project with its bytes, or 404. */
export async function readClip(
  sql: Db,
  store: ArtifactStore,
  user: AuthUser,
  projectId: number,
  name: string,
): Promise<ClipInfo & { body: ReadableStream<Uint8Array> }> {
  const [row] = await sql`
    SELECT ${COLUMNS(sql)}, b.id AS blob_id, b.storage, b.storage_key
    FROM project_audio pa JOIN audio_blobs b ON b.id = pa.blob_id JOIN projects p ON p.id = pa.project_id
    WHERE pa.project_id = ${projectId} AND pa.name = ${name} AND ${accessibleProject(sql, user)}`;
  if (!row) throw new HttpError(404, "not_found", `No clip "${name}" in project ${projectId}`);
  return {
    ...toClip(row),
    body: store.read(sql, { id: row.blobId, storage: row.storage, storageKey: row.storageKey }),
  };
}

async function lockedClip(tx: Db, user: AuthUser, projectId: number, name: string) {
  await assertProjectAccess(tx, user, projectId);
  const [row] = await tx`
    SELECT id, blob_id FROM project_audio WHERE project_id = ${projectId} AND name = ${name} FOR UPDATE`;
  if (!row) throw new HttpError(404, "not_found", `No clip "${name}" in project ${projectId}`);
  const users = (await clipUsers(tx, projectId)).get(name) ?? [];
  return { row, users };
}

function inUse(name: string, users: { id: number; name: string }[], what: string): HttpError {
  return new HttpError(
    409,
    "clip_in_use",
    `Cannot ${what} "${name}": eval set${users.length > 1 ? "s" : ""} ${
      users.map((u) => `${u.id} (${u.name})`).join(", ")
    } use${users.length > 1 ? "" : "s"} it`,
    { details: { usedBy: users } },
  );
}

/** Removes a clip (409 while an eval set of the project names it); its bytes go when no name is left. */
export async function deleteClip(
  sql: Sql,
  store: ArtifactStore,
  user: AuthUser,
  projectId: number,
  name: string,
): Promise<void> {
  const keys = await sql.begin(async (tx) => {
    const { row, users } = await lockedClip(tx, user, projectId, name);
    if (users.length) throw inUse(name, users, "delete");
    await tx`DELETE FROM project_audio WHERE id = ${row.id}`;
    const gone = await tx<{ storageKey: string | null }[]>`
      DELETE FROM audio_blobs b WHERE b.id = ${row.blobId}
        AND NOT EXISTS (SELECT 1 FROM project_audio WHERE blob_id = b.id)
      RETURNING storage_key`;
    return gone.map((g) => g.storageKey).filter((k): k is string => k !== null);
  });
  if (keys.length) await store.remove(keys);
}

/** Renames a clip (409 while an eval set names it, or when the new name is taken). */
export async function renameClip(
  sql: Sql,
  user: AuthUser,
  projectId: number,
  name: string,
  to: string,
): Promise<ClipInfo> {
  clipName(to, undefined);
  libraryClash(to);
  return await sql.begin(async (tx) => {
    const { row, users } = await lockedClip(tx, user, projectId, name);
    if (to === name) users.length = 0;
    if (users.length) throw inUse(name, users, "rename");
    const [taken] = await tx`SELECT 1 FROM project_audio WHERE project_id = ${projectId} AND name = ${to}`;
    if (taken && to !== name) {
      throw new HttpError(409, "conflict", `name: project ${projectId} already has a clip named "${to}"`);
    }
    await tx`UPDATE project_audio SET name = ${to} WHERE id = ${row.id}`;
    const [r] = await tx`
      SELECT ${
      COLUMNS(tx)
    } FROM project_audio pa JOIN audio_blobs b ON b.id = pa.blob_id WHERE pa.id = ${row.id}`;
    return toClip(r);
  });
}
