/**
 * Turn taking (issue 20): the caller's mid-turn pauses (`pause`), acknowledgements spoken into
 * the agent's reply (`backchannel`) and speech not addressed to the agent (`speech_nearby`),
 * each recorded as a turn of its own kind on the page's audio clock, with the same frames and
 * voice detector as the response and interrupt turns (which are left as they are). The
 * metrics over these turns are in `turn_taking_metrics.ts`.
 */
import type { LoadedConfig } from "./config.ts";
import type { VoxEvent } from "./event_queue.ts";
import type { Step } from "./format.ts";
import { inject, post } from "./injection.ts";
import type { Turn } from "./report.ts";
import type { Session, Utterance } from "./session.ts";
import { speak, speechPayload, turnBase } from "./turns.ts";

/** Default `stop_window_ms` of a backchannel. */
export const BACKCHANNEL_STOP_WINDOW_MS = 1500;
/** Default `grace_ms` of speech_nearby. */
export const NEARBY_GRACE_MS = 2000;
/** Default `gain_db` of speech_nearby: a bystander is quieter than the caller. */
export const NEARBY_GAIN_DB = -20;

const frames = (s: Session, ctx: number, ms: number) => Math.round((ms / 1000) * s.rate(ctx));

/** The first agent voice start in context `ctx` within (from, to], if any. */
function voiceStartIn(s: Session, ctx: number, from: number, to: number): VoxEvent | undefined {
  return s.queue.events.find((e) =>
    e.type === "voice_start" && e.ctx === ctx && e.frame! > from && e.frame! <= to
  );
}

/** The pause's turn: did the agent's voice start in (pause start, pause end]? */
function pauseTurn(s: Session, p: NonNullable<Session["pendingPause"]>, resumed: Utterance | null): Turn {
  const prev = p.prev;
  // Look in every context that heard the caller; report on the one where the agent spoke.
  let found: { ctx: number; e: VoxEvent } | null = null;
  for (const [ctx, f] of prev.others) {
    const to = resumed?.others.get(ctx)?.voicedStart ?? f.voicedEnd + frames(s, ctx, p.ms);
    const e = voiceStartIn(s, ctx, f.voicedEnd, Math.max(f.voicedEnd, to - 1));
    if (e && (!found || e.frame! - f.voicedEnd < found.e.frame! - prev.others.get(found.ctx)!.voicedEnd)) {
      found = { ctx, e };
    }
  }
  const ctx = found?.ctx ?? prev.ctx;
  const from = prev.others.get(ctx) ?? prev;
  const resumedAt = resumed?.others.get(ctx)?.voicedStart;
  const takeover = found ? s.ms(ctx, found.e.frame! - from.voicedEnd) : null;
  return {
    kind: "pause",
    latency_ms: takeover,
    ok: !found,
    took_over: !!found,
    takeover_ms: takeover,
    pause_ms: p.ms,
    pause_heard_ms: resumedAt != null ? s.ms(ctx, resumedAt - from.voicedEnd) : null,
    run: s.run,
    file: p.file,
    step: p.step,
    caller_voiced_end_frame: from.voicedEnd,
    ...(found ? { agent_frame: found.e.frame } : {}),
    sample_rate: s.rate(ctx),
    ...(found ? { note: `the agent took the turn ${takeover} ms into the caller's pause` } : {}),
  };
}

/**
 * `pause`: the caller holds the turn for `ms` of silence after the last voiced sample of the
 * previous utterance; the agent's voice starting in it is a takeover. A `speak` right after it
 * was queued in the page's microphone behind the utterance before the pause, held there until
 * exactly `ms` after that utterance's last voiced sample (its own first voiced sample lands
 * on that frame): the caller resumes on time, whatever the harness's own delays.
 */
export function pause(s: Session, config: LoadedConfig, step: Step, n: number) {
  if (!s.last) throw new Error("a pause needs a speak step before it (the caller pauses mid-turn)");
  s.pendingPause = {
    prev: s.last,
    ms: step.ms as number,
    file: config.path,
    step: n,
    ...(s.queuedResume ? { queued: s.queuedResume } : {}),
  };
  s.queuedResume = null;
}

/**
 * A `speak` step. Followed by `pause` and another `speak` (`upcoming`: the rest of its file),
 * it queues that speech right behind its own, held for the pause. After a pause it follows
 * the speech queued for it and records the pause turn.
 */
export async function speakTurn(
  s: Session,
  config: LoadedConfig,
  step: Step,
  n: number,
  upcoming: Step[] = [],
) {
  const p = s.pendingPause;
  s.pendingPause = null;
  s.queuedResume = null;
  const [next, after] = upcoming;
  // The resuming speech is synthesized before this one is queued, and queued right behind it:
  // only the page's decoding of it has to fit in this utterance and the pause.
  const resume = next?.action === "pause" && after?.action === "speak"
    ? await speechPayload(s, config, after).catch(() => null)
    : null;
  const afterPost = resume
    ? async (id: number) => {
      try {
        const posted = await post(s, { ...resume.payload, afterId: id, afterMs: next.ms as number });
        s.queuedResume = { step: after, posted, noisy: resume.noisy };
      } catch {
        // The resuming speak prepares its speech itself, and fails with its own step if it must.
      }
    }
    : undefined;
  let queued = p?.queued?.step === step ? p.queued : undefined;
  if (p && !queued) {
    // Not queued ahead (it failed then): held all the same, so it starts on time if it still can.
    const { payload, noisy } = await speechPayload(s, config, step);
    queued = { step, posted: await post(s, { ...payload, afterId: p.prev.id, afterMs: p.ms }), noisy };
  }
  const u = await speak(s, config, step, n, 2000, { posted: queued, afterPost, resumed: !!p });
  if (!p) return;
  // The caller's utterance before the pause and this one are one turn: a reply is owed to the end.
  p.prev.responded = true;
  const turn = pauseTurn(s, p, u);
  s.turns.push(turn);
  s.progress(
    `    pause of ${p.ms} ms: ${turn.took_over ? `taken over after ${turn.takeover_ms} ms` : "held"}`,
  );
}

/**
 * A pause that no `speak` follows (the next step is something else, or the run ends): waits
 * until the pause is over on the audio clock and records its turn.
 */
export async function settlePause(s: Session) {
  const p = s.pendingPause;
  if (!p) return;
  s.pendingPause = null;
  await s.queue.until(
    () =>
      [...p.prev.others].every(([c, f]) => (s.queue.ticks.get(c) ?? 0) >= f.voicedEnd + frames(s, c, p.ms))
        ? true
        : undefined,
    p.ms + s.stepTimeoutMs,
    "the end of the caller's pause",
  );
  const turn = pauseTurn(s, p, null);
  s.turns.push(turn);
  s.progress(
    `    pause of ${p.ms} ms: ${turn.took_over ? `taken over after ${turn.takeover_ms} ms` : "held"}`,
  );
}

/**
 * `backchannel`: waits for the agent to talk, speaks a short acknowledgement `after` ms into
 * its reply, and records whether the agent's voice ended within `stop_window_ms` of the
 * backchannel's first voiced sample (a false stop) and when.
 */
export async function backchannel(
  s: Session,
  config: LoadedConfig,
  step: Step,
  n: number,
  timeoutMs: number,
) {
  // Synthesized first, so only the page's decoding stands between `after` and the speech.
  const { payload, noisy } = await speechPayload(s, config, step);
  const ctx0 = s.measureCtx;
  if (!(ctx0 != null && s.agentTalking(ctx0))) {
    const e = await s.queue.until(
      () => s.queue.find((e) => e.type === "voice_start" && (ctx0 == null || e.ctx === ctx0)),
      timeoutMs,
      "the agent to talk before the backchannel",
    );
    e.consumed = true;
    s.lastVoiceStart = e;
  }
  const after = typeof step.after_ms === "number"
    ? step.after_ms
    : typeof step.after === "number"
    ? step.after
    : 300;
  if (after > 0) await new Promise((r) => setTimeout(r, after));
  const window = typeof step.stop_window_ms === "number" ? step.stop_window_ms : BACKCHANNEL_STOP_WINDOW_MS;
  const u = await inject(s, payload, config.path, n, noisy);
  if (u.voicedStart < 0) throw new Error("the backchannel holds no voiced sample above -40 dBFS");
  if (!u.agentVoicedAtStart) {
    s.turns.push({
      kind: "backchannel",
      latency_ms: null,
      ok: false,
      stopped: null,
      stop_latency_ms: null,
      note: "the agent had already stopped talking when the backchannel began (not counted)",
      ...turnBase(s, u),
    });
    return;
  }
  const limit = u.voicedStart + frames(s, u.ctx, window);
  let segment = 0;
  for (const e of s.queue.events) {
    if (e.type === "voice_start" && e.ctx === u.ctx && e.frame! <= u.voicedStart) segment = e.frame!;
  }
  // The detector reports an end once its hold has passed: wait for the clock to pass that.
  await s.queue.until(
    () => (s.queue.ticks.get(u.ctx) ?? 0) > limit + frames(s, u.ctx, s.holdMs + 100) ? true : undefined,
    window + s.holdMs + s.stepTimeoutMs,
    "the backchannel's stop window to pass",
  );
  const end = s.queue.find((e) => e.type === "voice_end" && e.ctx === u.ctx && e.frame! >= segment);
  const stopped = !!end && end.frame! <= limit;
  if (stopped) end!.consumed = true;
  const latency = stopped ? s.ms(u.ctx, end!.frame! - u.voicedStart) : null;
  s.turns.push({
    kind: "backchannel",
    latency_ms: latency,
    ok: !stopped,
    stopped,
    stop_latency_ms: latency,
    ...(stopped
      ? { agent_frame: end!.frame, note: `the agent stopped ${latency} ms after the backchannel` }
      : {}),
    ...turnBase(s, u),
  });
  s.progress(`    backchannel: ${stopped ? `agent stopped after ${latency} ms` : "agent kept talking"}`);
}

/**
 * `speech_nearby`: speech not addressed to the agent (a bystander, a television), at `gain_db`
 * (−20 dB). A reply starting between its start and `grace_ms` after it, or the agent's voice
 * ending while it plays (within 1500 ms of its first voiced sample), counts against the agent.
 */
export async function speechNearby(s: Session, config: LoadedConfig, step: Step, n: number) {
  const { payload } = await speechPayload(s, config, step, NEARBY_GAIN_DB);
  const talkingBefore = [...s.queue.rates.keys()].filter((c) => s.agentTalking(c));
  const u = await inject(s, payload, config.path, n, true);
  const grace = typeof step.grace_ms === "number" ? step.grace_ms : NEARBY_GRACE_MS;
  await s.queue.until(
    () =>
      [...u.others].every(([c, f]) => (s.queue.ticks.get(c) ?? 0) >= f.endFrame + frames(s, c, grace))
        ? true
        : undefined,
    grace + s.stepTimeoutMs,
    "the grace period after the nearby speech",
  );
  const replies = s.queue.events.filter((e) => {
    const f = e.type === "voice_start" && !e.consumed ? u.others.get(e.ctx!) : undefined;
    return !!f && e.frame! >= f.startFrame && e.frame! <= f.endFrame + frames(s, e.ctx!, grace);
  });
  for (const r of replies) r.consumed = true;
  // Stopped: the agent's voice ended within the backchannel stop window of the speech's first
  // voiced sample (not its whole length, so a reply finishing on its own late in a long
  // bystander sentence is not taken for a stop).
  const stoppedAgent = talkingBefore.length > 0 && s.queue.events.some((e) => {
    const f = e.type === "voice_end" && talkingBefore.includes(e.ctx!) ? u.others.get(e.ctx!) : undefined;
    if (!f) return false;
    const from = f.voicedStart >= 0 ? f.voicedStart : f.startFrame;
    return e.frame! >= from &&
      e.frame! <= Math.min(f.endFrame, from + frames(s, e.ctx!, BACKCHANNEL_STOP_WINDOW_MS));
  });
  const triggered = replies.length > 0;
  const first = replies[0];
  s.turns.push({
    kind: "background",
    latency_ms: null,
    ok: !triggered && !stoppedAgent,
    triggered,
    stopped_agent: stoppedAgent,
    ...(first ? { agent_frame: first.frame } : {}),
    ...(triggered || stoppedAgent
      ? {
        note: triggered
          ? "the agent answered speech not addressed to it"
          : "the agent stopped for a bystander",
      }
      : {}),
    ...turnBase(s, u),
    caller_voiced_start_frame: u.voicedStart >= 0 ? u.voicedStart : undefined,
    caller_voiced_end_frame: u.voicedEnd >= 0 ? u.voicedEnd : undefined,
  });
  s.progress(
    `    nearby speech: ${triggered ? "the agent replied" : stoppedAgent ? "the agent stopped" : "ignored"}`,
  );
}
