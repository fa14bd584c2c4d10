/**
 * Audio into the page's microphone: speech (a file or synthesized text) and noise as payloads
 * for the page hooks, one utterance injected and followed until its last sample was delivered
 * on every audio context, and background noise for a whole scenario.
 */
import { toBase64 } from "./audio.ts";
import { speak } from "./voices.ts";
import { type LoadedConfig, resolveAudio } from "./config.ts";
import type { VoxEvent } from "./event_queue.ts";
import type { NoiseSpec, Step } from "./format.ts";
import { micFrames } from "./page_hooks.ts";
import type { Frames, Posted, Session, Utterance } from "./session.ts";

export type { Posted };

/** The speech of a `speak`/`barge_in` step as base64 audio: its file, or its text synthesized. */
export async function audioPayload(config: LoadedConfig, step: Step): Promise<{ b64: string }> {
  if (typeof step.text === "string") {
    return { b64: toBase64(await speak(step.text, step.voice as string | undefined, config.speech)) };
  }
  const path = await resolveAudio(config, step.file as string);
  if (!path) throw new Error(`audio file not found: ${step.file}`);
  return { b64: toBase64(await Deno.readFile(path)) };
}

/** A noise spec as the page hooks take it (a file read as base64, or a generated type). */
export async function noisePayload(
  config: LoadedConfig,
  spec: NoiseSpec | undefined,
): Promise<Record<string, unknown> | undefined> {
  if (!spec) return undefined;
  const out: Record<string, unknown> = {
    type: spec.type,
    snrDb: spec.snr_db,
    levelDb: spec.level_db,
    seed: spec.seed,
  };
  if (spec.file) {
    const path = await resolveAudio(config, spec.file);
    if (!path) throw new Error(`noise file not found: ${spec.file}`);
    out.b64 = toBase64(await Deno.readFile(path));
  }
  return out;
}

/** Feeds one utterance into the microphone and waits until its last sample was delivered. */
export async function inject(
  s: Session,
  payload: Record<string, unknown>,
  file: string,
  stepNo: number,
  noisy: boolean,
): Promise<Utterance> {
  return await follow(s, await post(s, payload), file, stepNo, noisy);
}

/**
 * Queues one utterance in the microphone of every frame and returns at once. The page plays
 * queued utterances in order; `payload.afterId`/`afterMs` hold one until `afterMs` after the
 * last voiced sample of utterance `afterId` (a caller's pause, agent/turn_taking.ts).
 */
export async function post(s: Session, payload: Record<string, unknown>): Promise<Posted> {
  const id = s.nextId++;
  let res: { primary: number | null; ctxs: number[] };
  try {
    const frames = await micFrames(s.page, s.stepTimeoutMs, s.queue.signal);
    const results = await Promise.all(frames.map((f) =>
      f.evaluate(
        // deno-lint-ignore no-explicit-any
        (u) => (globalThis as any).__vox.speak(u) as Promise<{ primary: number | null; ctxs: number[] }>,
        { ...payload, id },
      )
    ));
    results.forEach((r, i) => r.ctxs.forEach((c) => s.frameOf.set(c, frames[i])));
    res = { primary: results[0].primary, ctxs: results.flatMap((r) => r.ctxs) };
  } catch (err) {
    const msg = (err as Error).message;
    if (/Unable to decode|decodeAudioData|EncodingError/i.test(msg)) {
      throw new Error(`audio could not be decoded (corrupt or unsupported file): ${msg.split("\n")[0]}`);
    }
    throw err;
  }
  return { id, res };
}

/** Follows a posted utterance until its last sample was delivered on every context. */
export async function follow(
  s: Session,
  { id, res }: Posted,
  file: string,
  stepNo: number,
  noisy: boolean,
): Promise<Utterance> {
  const ctx = res.primary ?? s.queue.primary ?? 0;
  const ev = await s.queue.until(
    () => s.queue.find((e) => e.type === "utt_end" && e.id === id && e.ctx === ctx),
    s.stepTimeoutMs + 60_000,
    "the utterance to be played into the microphone",
  );
  // Every context of the page played the same utterance on its own clock; the agent's voice
  // is paired with the copy in the context where the voice was observed.
  const others = new Map<number, Frames>();
  const framesOf = (e: VoxEvent): Frames => ({
    voicedStart: e.voicedStart!,
    voicedEnd: e.voicedEnd!,
    startFrame: e.startFrame!,
    endFrame: e.endFrame!,
  });
  others.set(ctx, framesOf(ev));
  await s.queue.until(
    () => {
      for (const c of res.ctxs) {
        if (others.has(c)) continue;
        const e = s.queue.find((e) => e.type === "utt_end" && e.id === id && e.ctx === c);
        if (e) others.set(c, framesOf(e));
      }
      return others.size >= res.ctxs.length ? true : undefined;
    },
    2000,
    "every audio context to play the utterance",
  ).catch(() => {});
  for (const e of s.queue.events) {
    if ((e.type === "utt_end" || e.type === "utt_start") && e.id === id) e.consumed = true;
  }
  s.measureCtx = ctx;
  // A meter has seen every frame of the utterance once its clock passed the end.
  await s.queue.until(
    () => [...others].every(([c, f]) => (s.queue.ticks.get(c) ?? 0) >= f.endFrame) ? true : undefined,
    s.stepTimeoutMs,
    "the meters to pass the end of the utterance",
  ).catch(() => {});
  const u: Utterance = {
    ctx,
    id,
    ...framesOf(ev),
    others,
    agentVoicedAtStart: false,
    responded: false,
    noisy,
    file,
    step: stepNo,
  };
  for (const [c, f] of others) {
    if (f.voicedStart >= 0 && s.agentVoicedAt(c, f.voicedStart)) {
      u.agentVoicedAtStart = true;
      s.rebase(u, c);
      break;
    }
  }
  return u;
}

/** Starts background noise (a `noisePayload()` with its level) under everything the caller says. */
export async function background(s: Session, spec: Record<string, unknown>): Promise<void> {
  for (const f of await micFrames(s.page, s.stepTimeoutMs, s.queue.signal)) {
    // deno-lint-ignore no-explicit-any
    await f.evaluate((b) => (globalThis as any).__vox.background(b), spec);
  }
}
