/**
 * Turn-taking quality (issue 20), method vox-turntaking/1: from a report's `pause`,
 * `backchannel` and `background` turns (agent/turn_taking.ts) to `metrics.turn_taking`. Pure,
 * so the server, the CLI gates and the tests compute it the same way.
 */

/** The method version recorded in `methods.turn_taking`. */
export const TURN_TAKING_METHOD = "vox-turntaking/1";

/** What a false takeover, a false stop or a bystander's speech answered costs, in ms. */
export const FALSE_EVENT_PENALTY_MS = 2000;
/** A reply later than this after the caller's last voiced sample costs the excess, in ms. */
export const LATE_AFTER_MS = 800;
/** A response turn that got no reply costs this, in ms. */
export const MISSED_REPLY_PENALTY_MS = 2000;

/** `metrics.turn_taking`: rates in 0..1 (null when no such turn), counts, and the penalty. */
export interface TurnTaking {
  /** Pauses the agent talked into ÷ pauses. */
  pause_takeover_rate: number | null;
  /** Backchannels the agent stopped for ÷ backchannels heard while it talked. */
  backchannel_stop_rate: number | null;
  /** Bystander speech that got a reply or stopped the agent ÷ bystander segments. */
  background_false_trigger_rate: number | null;
  n_pause: number;
  n_backchannel: number;
  n_background: number;
  /**
   * Mean penalty per event in ms (pauses, backchannels, bystander segments and response
   * turns): a false takeover, false stop or answered bystander costs FALSE_EVENT_PENALTY_MS,
   * a reply costs its latency beyond LATE_AFTER_MS, a missing reply MISSED_REPLY_PENALTY_MS.
   * Null when the report has no turn-taking event.
   */
  penalty_ms: number | null;
}

/** The fields of a turn this reads (agent/report.ts `Turn`). */
interface TurnLike {
  kind: string;
  ok: boolean;
  latency_ms: number | null;
  took_over?: boolean;
  stopped?: boolean | null;
  triggered?: boolean;
  stopped_agent?: boolean;
}

const round = (x: number, digits: number) => Math.round(x * 10 ** digits) / 10 ** digits;
const rate = (hits: number, n: number) => (n === 0 ? null : round(hits / n, 4));

/** `metrics.turn_taking` of a report's turns (vox-turntaking/1). */
export function turnTaking(turns: readonly TurnLike[]): TurnTaking {
  const pauses = turns.filter((t) => t.kind === "pause");
  // A backchannel spoken after the agent had stopped measured nothing (stopped: null).
  const backchannels = turns.filter((t) => t.kind === "backchannel" && typeof t.stopped === "boolean");
  const background = turns.filter((t) => t.kind === "background");
  const takeovers = pauses.filter((t) => t.took_over).length;
  const stops = backchannels.filter((t) => t.stopped).length;
  const triggers = background.filter((t) => t.triggered || t.stopped_agent).length;
  const events = pauses.length + backchannels.length + background.length;
  let penalty: number | null = null;
  if (events > 0) {
    const responses = turns.filter((t) => t.kind === "response");
    let sum = (takeovers + stops + triggers) * FALSE_EVENT_PENALTY_MS;
    for (const r of responses) {
      sum += r.ok && r.latency_ms != null
        ? Math.max(0, r.latency_ms - LATE_AFTER_MS)
        : MISSED_REPLY_PENALTY_MS;
    }
    penalty = round(sum / (events + responses.length), 1);
  }
  return {
    pause_takeover_rate: rate(takeovers, pauses.length),
    backchannel_stop_rate: rate(stops, backchannels.length),
    background_false_trigger_rate: rate(triggers, background.length),
    n_pause: pauses.length,
    n_backchannel: backchannels.length,
    n_background: background.length,
    penalty_ms: penalty,
  };
}
