/**
 * The audio clips a daemon job's offer carries (the project's uploads, the shipped library):
 * fetched by SHA-256 over the agent's authenticated route, kept in a cache named by hash,
 * verified on every use (a cached file that no longer hashes right is fetched again), and
 * copied into the job's own `clips/` folder under the names the offer gives them. Nothing here
 * opens a path a config names: the offer names a hash, the cache names files by hash, and the
 * config's loader then finds plain names in `clips/` (agent/config.ts, audioFolders). A replay
 * (agent/replay.ts) fetches a result's stored speech through the same verified, hash-named cache.
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { FILE_NAME } from "./format.ts";
import { audioFetchPath, MAX_ARTIFACT_BYTES } from "./protocol.ts";

/** One clip of an offer. */
export interface OfferedClip {
  name: string;
  sha256: string;
  bytes: number;
}

/** A clip the job cannot have; the job fails with this message. */
export class ClipError extends Error {
  constructor(message: string, readonly retryable: boolean) {
    super(message);
    this.name = "ClipError";
  }
}

/** Where clips come from and go. */
export interface ClipSource {
  /** The server's base URL (http or ws; the ws scheme is turned into http). */
  serverUrl: string;
  token: string;
  /** The cache folder (created when missing). */
  cacheDir: string;
}

const sha256Of = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** Reads a cached clip when it is there and still hashes to its name; else null (and it is removed). */
async function cached(path: string, sha256: string): Promise<Uint8Array | null> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch {
    return null;
  }
  if (sha256Of(bytes) === sha256) return bytes;
  await Deno.remove(path).catch(() => {});
  return null;
}

/** Fetches `what` from `url` with the Bearer `token`, bounded by its announced `size`. */
async function download(url: string, token: string, what: string, size: number, signal?: AbortSignal) {
  let res: Response;
  try {
    res = await fetch(url, { headers: { authorization: `Bearer ${token}` }, signal });
  } catch (err) {
    throw new ClipError(`cannot fetch ${what}: ${(err as Error).message}`, true);
  }
  if (res.status !== 200) {
    const text = (await res.text().catch(() => "")).slice(0, 300);
    throw new ClipError(`cannot fetch ${what}: the server answered ${res.status} ${text}`, res.status >= 500);
  }
  const parts: Uint8Array[] = [];
  let got = 0;
  for await (const piece of res.body!) {
    got += piece.length;
    if (got > size || got > MAX_ARTIFACT_BYTES) {
      await res.body?.cancel().catch(() => {});
      throw new ClipError(`${what}: the server sent more than its ${size} bytes`, true);
    }
    parts.push(piece);
  }
  const bytes = new Uint8Array(got);
  let off = 0;
  for (const p of parts) {
    bytes.set(p, off);
    off += p.length;
  }
  return bytes;
}

/**
 * The bytes whose SHA-256 is `want.sha256`: from `cacheDir` when the file named by that hash
 * is there and still verifies, else fetched from `url` with the Bearer `token`, verified and
 * cached. `what` names them in errors. Throws ClipError.
 */
export async function verifiedBytes(
  cacheDir: string,
  want: { sha256: string; bytes: number; what: string },
  url: string,
  token: string,
  signal?: AbortSignal,
): Promise<{ bytes: Uint8Array; fetched: boolean }> {
  if (!/^[0-9a-f]{64}$/.test(want.sha256)) throw new ClipError(`${want.what}: not a SHA-256`, false);
  await Deno.mkdir(cacheDir, { recursive: true, mode: 0o700 });
  const cachePath = join(cacheDir, want.sha256);
  const hit = await cached(cachePath, want.sha256);
  if (hit) return { bytes: hit, fetched: false };
  const bytes = await download(url, token, want.what, want.bytes, signal);
  const got = sha256Of(bytes);
  if (got !== want.sha256) {
    throw new ClipError(`${want.what}: the bytes fetched hash to ${got}, not ${want.sha256}; refused`, true);
  }
  const tmp = `${cachePath}.${crypto.randomUUID()}.part`;
  await Deno.writeFile(tmp, bytes, { mode: 0o600 });
  await Deno.rename(tmp, cachePath);
  return { bytes, fetched: true };
}

/**
 * Puts every offered clip into `destDir` under its name: from the cache when it is there and
 * verifies, else fetched, verified against its SHA-256 and cached. Returns how many were
 * fetched and how many came from the cache. Throws ClipError for a clip it cannot have.
 */
export async function provideClips(
  source: ClipSource,
  jobId: number,
  clips: readonly OfferedClip[],
  destDir: string,
  signal?: AbortSignal,
): Promise<{ fetched: string[]; cached: string[] }> {
  const out = { fetched: [] as string[], cached: [] as string[] };
  if (clips.length === 0) return out;
  await Deno.mkdir(destDir, { recursive: true });
  const base = source.serverUrl.replace(/\/+$/, "").replace(/^ws/, "http");
  for (const clip of clips) {
    // The offer is the server's word, but a name still has to be a plain file name here.
    if (!FILE_NAME.test(clip.name) || !/^[0-9a-f]{64}$/.test(clip.sha256)) {
      throw new ClipError(`the offer names a clip the agent refuses: ${JSON.stringify(clip.name)}`, false);
    }
    const { bytes, fetched } = await verifiedBytes(
      source.cacheDir,
      { sha256: clip.sha256, bytes: clip.bytes, what: `audio clip ${clip.name}` },
      base + audioFetchPath(jobId, clip.sha256),
      source.token,
      signal,
    );
    (fetched ? out.fetched : out.cached).push(clip.name);
    await Deno.writeFile(join(destDir, clip.name), bytes, { createNew: true });
  }
  return out;
}
