/**
 * Measurement health on the browser path (issue 19): whether the host ran the page on time
 * while a turn was measured. The page hooks sample, ten times a second per audio context, how
 * late the page's thread ran, how far real time ran ahead of the audio clock at the output,
 * and the context's playback underruns (`agent/page/hooks.js`). A turn whose window saw any of
 * them past its limit was not timed the way a caller would hear the agent on a healthy host:
 * it is reported `ok: false, unreliable: true` with what was seen, and left out of the metrics.
 */
import type { VoxEvent } from "./event_queue.ts";
import type { RunHealth, Turn } from "./report.ts";

/**
 * Limits of a healthy window, from runs of the Web Audio reference agent on a 2-core host
 * (figures in docs/agent.md, "Measurement health"): quiet, every sample stayed far below them;
 * turns whose error against the agent's truth passed the accuracy targets all crossed one.
 */
export const HEALTH_LIMITS = {
  /** The page's 20 ms timer fired this much late (ms): its thread was not running the page. */
  lagMs: 200,
  /** The audio thread rendered this far behind real time (ms), then caught up in a burst. */
  renderMs: 100,
  /** Real time against the audio clock at the output moved this much within the window (ms). */
  slipMs: 100,
  /**
   * Playback underruns allowed in the window; null: recorded, not judged. A quiet host sees one
   * at a barge-in (the caller's new utterance reaching the microphone worklet) with no error.
   */
  underruns: null as number | null,
  /**
   * How many signals must be past their limits together (a missing sample after the window counts
   * as one). A host that holds the page up moves them together (the page's thread, its rendering
   * and its clock, ~400 ms each when its process is stopped); one alone was seen on accurate turns
   * under ordinary load (a 55 ms slip, a late last sample), and the frames Vox reads stay exact
   * through it.
   */
  minSignals: 2,
};

const OVERLOADED = "(host overloaded); not counted";

/** How long before its first frame a turn's window starts (ms): the agent hears the caller then. */
const LEAD_MS = 100;

/** What one turn's window saw. */
export interface WindowHealth {
  /** Samples of the page's thread that covered the window. */
  samples: number;
  /** Worst lateness of the page thread's timer, ms. */
  lag_ms: number;
  /** Worst lateness of the audio rendering against real time, ms (null: no meter ticks). */
  render_ms: number | null;
  /** How far real time moved against the audio clock at the output across the window, ms. */
  clock_slip_ms: number | null;
  /** Playback underruns within the window (null: this Chromium does not count them). */
  underruns: number | null;
  /** No sample came after the window: the page's thread was still stalled when the run ended. */
  uncovered: boolean;
}

/**
 * One source's samples (sorted by frame) that bear on frames `start`..`to`: the last before
 * `start` (the baseline) and every one whose period (since the sample before it) overlaps.
 */
function covering(seq: VoxEvent[], start: number, to: number) {
  let baseline: VoxEvent | null = null;
  const inside: VoxEvent[] = [];
  let prev = -Infinity;
  for (const e of seq) {
    if (e.frame! < start) baseline = e;
    else if (prev <= to) inside.push(e);
    prev = e.frame!;
  }
  return { baseline, inside };
}

/**
 * The health of frames `from`..`to` of context `ctx` (sample rate `rate`), from the page's
 * samples; null when that context sent none (nothing to judge by). A sample covers the time
 * since the one before it from the same source, so the first after `to` still counts.
 */
export function windowHealth(
  samples: readonly VoxEvent[],
  ctx: number,
  rate: number,
  from: number,
  to: number,
): WindowHealth | null {
  const own = samples.filter((e) => e.ctx === ctx && typeof e.frame === "number")
    .sort((a, b) => a.frame! - b.frame!);
  // The page thread's samples (lateness, slip, underruns) and the meter's ticks (rendering).
  const page = own.filter((e) => typeof e.lag === "number");
  const ticks = own.filter((e) => typeof e.render === "number");
  if (page.length === 0 && ticks.length === 0) return null;
  const start = from - Math.round((LEAD_MS / 1000) * rate);
  const { baseline, inside } = covering(page, start, to);
  const rendered = covering(ticks, start, to).inside;
  const withBase = baseline ? [baseline, ...inside] : inside;
  const slips = withBase.map((e) => e.slip).filter((v): v is number => typeof v === "number");
  const counts = withBase.map((e) => e.underruns).filter((v): v is number => typeof v === "number");
  return {
    samples: inside.length,
    lag_ms: Math.max(0, ...inside.map((e) => e.lag!)),
    render_ms: rendered.length ? round(Math.max(...rendered.map((e) => e.render!))) : null,
    clock_slip_ms: slips.length > 1
      ? round(Math.max(...slips) - Math.min(...slips))
      : slips.length
      ? 0
      : null,
    underruns: counts.length > 0 ? Math.max(...counts) - counts[0] : null,
    uncovered: !inside.some((e) => e.frame! >= to),
  };
}

/** What made a window unhealthy, in words; empty when it was healthy (fewer than `minSignals` past). */
export function healthProblems(h: WindowHealth, limits = HEALTH_LIMITS): string[] {
  const out: string[] = [];
  if (h.lag_ms > limits.lagMs) out.push(`the page's thread ran ${round(h.lag_ms)} ms late`);
  if (h.render_ms != null && h.render_ms > limits.renderMs) {
    out.push(`the audio rendering fell ${h.render_ms} ms behind real time`);
  }
  if (h.clock_slip_ms != null && h.clock_slip_ms > limits.slipMs) {
    out.push(`the audio clock slipped ${h.clock_slip_ms} ms against real time`);
  }
  if (h.underruns != null && limits.underruns != null && h.underruns > limits.underruns) {
    out.push(`${h.underruns} playback underrun(s)`);
  }
  if (h.uncovered) out.push("no health sample came after the turn (the page's thread was stalled)");
  return out.length >= limits.minSignals ? out : [];
}

/** The frames a turn's latency spans (caller's instant to agent's), or null for turns without one. */
function turnWindow(t: Turn): [number, number] | null {
  if (t.latency_ms == null || t.agent_frame === undefined) return null;
  const caller = t.kind === "response"
    ? t.caller_voiced_end_frame
    : t.kind === "interrupt"
    ? t.caller_voiced_start_frame
    : undefined;
  if (caller === undefined) return null;
  return [Math.min(caller, t.agent_frame), Math.max(caller, t.agent_frame)];
}

/**
 * Judges a measured response or interrupt turn on context `ctx`'s samples and, when its window
 * was unhealthy, turns it into `ok: false, unreliable: true` with the reason (its latency kept
 * for reference). Records what the window saw as `health`. Returns whether it was marked.
 * Until `final` (the run's end) a window not yet covered by a later sample is not held
 * against the turn: that sample may still be on its way.
 */
export function checkTurn(
  t: Turn,
  samples: readonly VoxEvent[],
  ctx: number,
  opts: { final: boolean; limits?: typeof HEALTH_LIMITS },
): boolean {
  const span = turnWindow(t);
  if (!span || t.sample_rate === undefined) return false;
  const h = windowHealth(samples, ctx, t.sample_rate, span[0], span[1]);
  if (!h) return false;
  t.health = {
    lag_ms: round(h.lag_ms),
    render_ms: h.render_ms,
    clock_slip_ms: h.clock_slip_ms,
    underruns: h.underruns,
  };
  const problems = healthProblems(opts.final ? h : { ...h, uncovered: false }, opts.limits);
  if (problems.length === 0) return false;
  const note = `unreliable: ${
    problems.join("; ")
  } while this turn was measured (host overloaded); not counted`;
  // Marked by an earlier check of the same window: the note follows what the final samples saw.
  if (t.unreliable) {
    if (t.note?.endsWith(OVERLOADED)) t.note = note;
    return false;
  }
  if (!t.ok) return false;
  t.ok = false;
  t.unreliable = true;
  t.note = note;
  return true;
}

/** Sums up the `health` that checkTurn() left on a run's turns. */
export function runHealth(turns: readonly Turn[]): RunHealth {
  const checked = turns.filter((t) => t.health);
  const worst = (k: "lag_ms" | "render_ms" | "clock_slip_ms" | "underruns") => {
    const v = checked.map((t) => t.health![k]).filter((x): x is number => typeof x === "number");
    return v.length ? Math.max(...v) : null;
  };
  return {
    turns_checked: checked.length,
    unreliable_turns: turns.filter((t) => t.unreliable).length,
    worst_lag_ms: worst("lag_ms"),
    worst_render_ms: worst("render_ms"),
    worst_clock_slip_ms: worst("clock_slip_ms"),
    underruns: worst("underruns"),
  };
}

function round(v: number): number {
  return Math.round(v * 10) / 10;
}
