/**
 * Turn timing: what the caller says and when the agent answers, stops or stays quiet, measured
 * on the page's audio clock. Response turns run from the caller's last voiced sample to the
 * agent's first; interrupt turns from the caller's first voiced sample to the agent's stop.
 */
import type { LoadedConfig } from "./config.ts";
import type { VoxEvent } from "./event_queue.ts";
import type { NoiseSpec, Step } from "./format.ts";
import { audioPayload, follow, inject, noisePayload, post, type Posted } from "./injection.ts";
import { voxFrames } from "./page_hooks.ts";
import type { NoiseCheck, Turn } from "./report.ts";
import type { Frames, Session, Utterance } from "./session.ts";

/** The fields every turn of utterance `u` carries (where it was said, its frames). */
export function turnBase(s: Session, u: Utterance) {
  return {
    run: s.run,
    file: u.file,
    step: u.step,
    caller_voiced_start_frame: u.voicedStart,
    caller_voiced_end_frame: u.voicedEnd,
    caller_file_end_frame: u.endFrame,
    sample_rate: s.rate(u.ctx),
    ...(u.noisy ? { noisy: true } : {}),
  };
}

/** After a barge-in: the agent's voice must stop; latency runs from the caller's first voiced sample. */
async function interruptTurn(s: Session, u: Utterance, stopTimeoutMs: number): Promise<Turn> {
  const limit = u.voicedStart + Math.round((stopTimeoutMs / 1000) * s.rate(u.ctx));
  // The agent's segment that was on when the barge-in began; it may have been in a pause
  // that turns out to be where it stopped, which gives a latency at or below zero.
  let segment = 0;
  for (const e of s.queue.events) {
    if (e.type === "voice_start" && e.ctx === u.ctx && e.frame! <= u.voicedStart) segment = e.frame!;
  }
  const end = await s.queue.until(
    () => {
      const e = s.queue.find((e) => e.type === "voice_end" && e.ctx === u.ctx && e.frame! >= segment);
      if (e) return e;
      if ((s.queue.ticks.get(u.ctx) ?? 0) > limit + s.rate(u.ctx)) return null;
      return undefined;
    },
    stopTimeoutMs + s.stepTimeoutMs,
    "the agent to stop talking after the barge-in",
  );
  if (end && end.frame! <= limit) {
    end.consumed = true;
    return {
      kind: "interrupt",
      latency_ms: s.ms(u.ctx, end.frame! - u.voicedStart),
      ok: true,
      agent_frame: end.frame,
      ...turnBase(s, u),
    };
  }
  return {
    kind: "interrupt",
    latency_ms: null,
    ok: false,
    note: `the agent did not stop within ${stopTimeoutMs} ms of the barge-in`,
    ...turnBase(s, u),
  };
}

/** A speech step's audio as the page hooks take it (file or text, gain, noise); `noisy` with noise. */
export async function speechPayload(
  s: Session,
  config: LoadedConfig,
  step: Step,
  defaultGainDb?: number,
): Promise<{ payload: Record<string, unknown>; noisy: boolean }> {
  const payload: Record<string, unknown> = { ...(await audioPayload(config, step)) };
  const gain = typeof step.gain_db === "number" ? step.gain_db : defaultGainDb;
  if (gain != null) payload.gainDb = gain;
  const noise = await noisePayload(config, step.noise as NoiseSpec | undefined);
  if (noise) payload.noise = noise;
  return { payload, noisy: !!noise || s.backgroundActive };
}

/** How a `speak` is fed when turn taking needs more than the default (agent/turn_taking.ts). */
export interface SpeakOptions {
  /** The utterance was queued already (it resumes a caller's pause): follow it. */
  posted?: { posted: Posted; noisy: boolean };
  /** Called once the utterance is queued, before it has played (to queue what follows it). */
  afterPost?: (id: number) => Promise<void>;
  /** It resumes the caller's own turn after a pause: no interrupt turn. */
  resumed?: boolean;
}

/**
 * A `speak` step: injects the utterance; speech that starts while the agent talks is a barge-in
 * and yields an interrupt turn (the agent must stop within `stopTimeoutMs`).
 */
export async function speak(
  s: Session,
  config: LoadedConfig,
  step: Step,
  n: number,
  stopTimeoutMs = 2000,
  opts: SpeakOptions = {},
): Promise<Utterance> {
  let queued = opts.posted;
  if (!queued) {
    const { payload, noisy } = await speechPayload(s, config, step);
    queued = { posted: await post(s, payload), noisy };
  }
  await opts.afterPost?.(queued.posted.id);
  const u = await follow(s, queued.posted, config.path, n, queued.noisy);
  if (u.voicedStart < 0) throw new Error("the utterance holds no voiced sample above -40 dBFS");
  s.last = u;
  if (u.agentVoicedAtStart && !opts.resumed) {
    const turn = await interruptTurn(s, u, stopTimeoutMs);
    s.turns.push(turn);
    s.progress(
      `    barge-in: ${turn.ok ? `agent stopped after ${turn.latency_ms} ms` : turn.note}`,
    );
  }
  return u;
}

/**
 * `wait_for_voice`: after an utterance, the agent's reply is a response turn (latency from the
 * caller's last voiced sample); with no utterance pending, it waits for the agent to talk.
 */
export async function waitForVoice(s: Session, timeoutMs: number): Promise<void> {
  const u = s.last && !s.last.responded ? s.last : null;
  if (!u) {
    const e = await s.queue.until(
      () => s.queue.find((e) => e.type === "voice_start" && (s.measureCtx == null || e.ctx === s.measureCtx)),
      timeoutMs,
      "the agent's voice",
    );
    e.consumed = true;
    s.lastVoiceStart = e;
    s.measureCtx ??= e.ctx!;
    return;
  }
  u.responded = true;
  let e: VoxEvent;
  try {
    e = await s.queue.until(
      () =>
        s.queue.find((e) =>
          e.type === "voice_start" && u.others.has(e.ctx!) && e.frame! >= u.others.get(e.ctx!)!.voicedStart
        ),
      timeoutMs,
      "the agent's reply",
    );
  } catch (err) {
    // A cancelled job measured nothing about the agent; only a real timeout is a failed turn.
    if (s.queue.signal?.aborted) throw err;
    s.turns.push({
      kind: "response",
      latency_ms: null,
      ok: false,
      note: "no reply",
      ...turnBase(s, u),
    });
    throw err;
  }
  s.rebase(u, e.ctx!);
  // Agent speech that began before this utterance and was never waited for is stale.
  for (const v of s.queue.events) {
    if (v.type === "voice_start" && v.ctx === u.ctx && !v.consumed && v.frame! < e.frame!) {
      v.consumed = true;
    }
  }
  e.consumed = true;
  s.lastVoiceStart = e;
  const latency = s.ms(u.ctx, e.frame! - u.voicedEnd);
  const early = latency < 0;
  s.turns.push({
    kind: "response",
    latency_ms: latency,
    ok: !early,
    agent_frame: e.frame,
    ...(early ? { note: "the agent started talking before the caller had finished" } : {}),
    ...turnBase(s, u),
  });
  s.progress(`    response latency ${latency} ms`);
}

/** `wait_for_silence`: waits for the end of the agent's current voiced segment and returns it. */
export async function waitForSilence(s: Session, timeoutMs: number): Promise<VoxEvent> {
  const start = s.lastVoiceStart;
  const ctx = start?.ctx ?? s.measureCtx;
  const e = await s.queue.until(
    () =>
      s.queue.find((e) =>
        e.type === "voice_end" && (ctx == null || e.ctx === ctx) && (!start || e.frame! >= start.frame!)
      ),
    timeoutMs,
    "the agent to fall silent",
  );
  e.consumed = true;
  return e;
}

/** `barge_in`: waits for the agent to talk, then speaks `after_ms` into its reply; an interrupt turn. */
export async function bargeIn(s: Session, config: LoadedConfig, step: Step, n: number, timeoutMs: number) {
  const ctx = s.measureCtx;
  const talking = ctx != null && s.agentTalking(ctx);
  if (!talking) {
    const e = await s.queue.until(
      () => s.queue.find((e) => e.type === "voice_start" && (ctx == null || e.ctx === ctx)),
      timeoutMs,
      "the agent to talk before the barge-in",
    );
    e.consumed = true;
    s.lastVoiceStart = e;
  }
  const after = typeof step.after_ms === "number" ? step.after_ms : 300;
  if (after > 0) await new Promise((r) => setTimeout(r, after));
  const stopTimeout = typeof step.stop_timeout_ms === "number" ? step.stop_timeout_ms : 2000;
  const u = await speak(s, config, step, n, stopTimeout);
  if (!u.agentVoicedAtStart) {
    s.turns.push({
      kind: "interrupt",
      latency_ms: null,
      ok: false,
      note: "the agent had already stopped when the barge-in speech began",
      ...turnBase(s, u),
    });
  }
}

/** `noise`: noise alone, then a grace period; records whether it triggered a reply or stopped the agent. */
export async function noiseOnly(s: Session, config: LoadedConfig, step: Step, n: number) {
  const spec: NoiseSpec = { file: step.file as string | undefined, type: step.type as NoiseSpec["type"] };
  const noise = await noisePayload(config, spec);
  const payload = {
    durationMs: step.duration_ms as number,
    noise: { ...noise, levelDb: typeof step.level_db === "number" ? step.level_db : -30 },
  };
  const talkingBefore = [...s.queue.rates.keys()].filter((c) => s.agentTalking(c));
  const u = await inject(s, payload, config.path, n, true);
  const grace = typeof step.grace_ms === "number" ? step.grace_ms : 1500;
  const graceEnd = (c: number, f: Frames) => f.endFrame + Math.round((grace / 1000) * s.rate(c));
  await s.queue.until(
    () => [...u.others].every(([c, f]) => (s.queue.ticks.get(c) ?? 0) >= graceEnd(c, f)) ? true : undefined,
    grace + s.stepTimeoutMs,
    "the grace period after the noise",
  );
  const within = (e: VoxEvent, to: (c: number, f: Frames) => number) => {
    const f = u.others.get(e.ctx!);
    return !!f && e.frame! >= f.startFrame && e.frame! <= to(e.ctx!, f);
  };
  const replies = s.queue.events.filter((e) =>
    e.type === "voice_start" && !e.consumed && within(e, graceEnd)
  );
  for (const r of replies) r.consumed = true;
  const check: NoiseCheck = { run: s.run, file: config.path, step: n, triggered: replies.length > 0 };
  if (talkingBefore.length > 0) {
    check.stopped_agent = s.queue.events.some((e) =>
      e.type === "voice_end" && talkingBefore.includes(e.ctx!) && within(e, (_c, f) => f.endFrame)
    );
  }
  s.noiseChecks.push(check);
  s.progress(`    noise-only segment: ${check.triggered ? "the agent replied to noise" : "no reply"}`);
}

/** Sets how long a pause may last inside one agent segment, in the page's detector and here. */
export async function setHold(s: Session, ms: number) {
  s.holdMs = ms;
  for (const f of await voxFrames(s.page)) {
    // deno-lint-ignore no-explicit-any
    await f.evaluate((h) => (globalThis as any).__vox.setHold(h), ms);
  }
}
