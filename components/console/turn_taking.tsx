/**
 * The result view's turn-taking card (issue 20): metrics.turn_taking of a result's report
 * (agent/turn_taking_metrics.ts, vox-turntaking/1), each rate with the count it is over.
 * Reports from agents older than the method have none: the card then says so.
 */
import { type TurnTaking, turnTaking } from "../../agent/turn_taking_metrics.ts";

const pct = (v: number | null) => (v === null ? "—" : `${Math.round(v * 100)} %`);

/** metrics.turn_taking of a stored report, or recomputed from its turns; null when it measured none. */
export function turnTakingOf(report: unknown, turns: readonly Record<string, unknown>[]): TurnTaking | null {
  const m = (report as { metrics?: { turn_taking?: TurnTaking } } | null)?.metrics?.turn_taking;
  if (m && m.n_pause + m.n_backchannel + m.n_background > 0) return m;
  const tt = turns.filter((t) => t.kind === "pause" || t.kind === "backchannel" || t.kind === "background");
  if (tt.length === 0) return null;
  return turnTaking(turns.map((t) => ({
    kind: String(t.kind),
    ok: t.ok === true,
    latency_ms: typeof t.latency_ms === "number" ? t.latency_ms : null,
    took_over: t.took_over === true,
    stopped: typeof t.stopped === "boolean" ? t.stopped : null,
    triggered: t.triggered === true,
    stopped_agent: t.stopped_agent === true,
  })));
}

/** One card beside the latency cards: the three rates with their n, and the penalty. */
export function TurnTakingCard({ value }: { value: TurnTaking | null }) {
  return (
    <div class="c-stat" data-testid="turn-taking">
      <h3>Turn taking</h3>
      {value
        ? (
          <>
            <p class="c-stat-main">
              {value.penalty_ms === null ? "—" : `${Math.round(value.penalty_ms)} ms`}{" "}
              <span class="muted small">penalty per event</span>
            </p>
            <p class="muted small">
              pause takeover {pct(value.pause_takeover_rate)} (n = {value.n_pause}) · backchannel stop{" "}
              {pct(value.backchannel_stop_rate)} (n = {value.n_backchannel}) · background false trigger{" "}
              {pct(value.background_false_trigger_rate)} (n = {value.n_background})
            </p>
          </>
        )
        : (
          <p class="muted small">
            not measured (the eval set has no pause, backchannel or speech_nearby step)
          </p>
        )}
    </div>
  );
}
