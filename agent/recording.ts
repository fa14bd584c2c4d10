/**
 * The recording of a repetition: the primary meter's stereo capture (caller left, agent right)
 * pulled from the page in chunks and written as a WAV, with the frame it starts at.
 */
import { encodeWav, fromBase64 } from "./audio.ts";
import { LIMITS } from "./format.ts";
import { voxFrames } from "./page_hooks.ts";
import type { Session } from "./session.ts";

/** Chunks asked for in one pull. */
const PULL_CHUNKS = 50;

/**
 * The meter hands its recording over in 100 ms chunks (agent/page/meter_worklet.js), and a run can
 * end the moment the agent's voice is detected: without a short tail the chunk holding the last
 * measured onset is still in the worklet, and the recording (which `deno task verify` re-derives
 * the turns from) stops just before the evidence of its own last turn.
 */
const TAIL_MS = 250;

/**
 * Pulls the primary meter's recording (caller left, agent right) and writes a WAV. The page
 * answers the pulls, so it is not believed about sizes: at most LIMITS.recordingCalls pulls and
 * LIMITS.recordingBytes bytes, and only a full pull is followed by another (a page answering
 * `{chunks: 1, total: 1e12}` forever gets a truncated recording, not a job that never ends).
 */
export async function saveRecording(
  s: Session,
  path: string,
): Promise<{ path: string; sampleRate: number; firstFrame: number } | null> {
  const ctx = s.measureCtx ?? s.queue.primary;
  if (ctx == null) return null;
  if (s.turns.length > 0 && !s.queue.signal?.aborted) await new Promise((r) => setTimeout(r, TAIL_MS));
  const parts: Uint8Array[] = [];
  let sampleRate = 0;
  let firstFrame = -1;
  let frame = s.frameOf.get(ctx);
  if (!frame) {
    for (const f of await voxFrames(s.page)) {
      // deno-lint-ignore no-explicit-any
      if (await f.evaluate((c) => (globalThis as any).__vox.recording(c, 0, 0) != null, ctx)) frame = f;
    }
  }
  if (!frame) return null;
  let bytes = 0;
  for (let from = 0, calls = 0; calls < LIMITS.recordingCalls; calls++) {
    if (s.queue.signal?.aborted) break;
    const r = await frame.evaluate(
      // deno-lint-ignore no-explicit-any
      (c, f, n) => (globalThis as any).__vox?.recording(c, f, n) ?? null,
      ctx,
      from,
      PULL_CHUNKS,
    ) as { sampleRate: number; firstFrame: number; chunks: number; total: number; b64: string } | null;
    if (!r || !(r.chunks > 0) || typeof r.b64 !== "string") break;
    const part = fromBase64(r.b64);
    if (bytes + part.length > LIMITS.recordingBytes) break;
    bytes += part.length;
    sampleRate = r.sampleRate;
    if (firstFrame < 0) firstFrame = r.firstFrame;
    parts.push(part);
    from += r.chunks;
    // The hooks answer a full pull until the last one: a short answer ends the recording.
    if (from >= r.total || r.chunks < PULL_CHUNKS) break;
  }
  if (parts.length === 0) return null;
  const pcm = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    pcm.set(p, o);
    o += p.length;
  }
  await Deno.writeFile(path, encodeWav(pcm, sampleRate, 2));
  return { path, sampleRate, firstFrame };
}
