/**
 * `--fail-if` gates: `<metric> <op> <number>[ms]`, e.g. `response.p90 > 800`,
 * `interrupt.median > 300`, `failed_turns > 0`, `turn_taking.pause_takeover_rate > 0.2`. A gate fails when its condition holds, and
 * also when its metric has no value (no turns of that kind): a gate that cannot be checked
 * must not pass silently.
 */
import { CliError } from "./errors.ts";
import { TURN_TAKING_KEYS } from "./measurement.ts";
import type { Measurement } from "./measurement.ts";

const OPS = [">=", "<=", "==", "!=", ">", "<"] as const;
type Op = typeof OPS[number];

/** A parsed gate. */
export interface Gate {
  text: string;
  metric: string;
  op: Op;
  value: number;
}

/** One gate checked against a measurement. */
export interface GateOutcome {
  gate: Gate;
  actual: number | null;
  failed: boolean;
  message: string;
}

const STATS = ["median", "p90", "sd", "n"] as const;
/** Every metric a gate may name. */
export const GATE_METRICS: readonly string[] = [
  ...["response", "interrupt"].flatMap((k) => STATS.map((s) => `${k}.${s}`)),
  "failed_turns",
  "turns",
  "noise_reduction",
  "network_resilience",
  "naturalness",
  ...TURN_TAKING_KEYS.map((k) => `turn_taking.${k}`),
];

/** Parses one `--fail-if` expression; a malformed one is a CliError naming what is wrong. */
export function parseGate(text: string): Gate {
  const m = /^\s*([a-z_]+(?:\.[a-z0-9_]+)?)\s*(>=|<=|==|!=|>|<)\s*(-?\d+(?:\.\d+)?)\s*(ms)?\s*$/.exec(text);
  if (!m) {
    throw new CliError(
      `--fail-if '${text}': expected '<metric> <op> <number>', e.g. 'response.p90 > 800' ` +
        `(ops: ${OPS.join(" ")})`,
    );
  }
  const metric = m[1].replace(/^(response|interrupt)_latency\./, "$1.");
  if (!GATE_METRICS.includes(metric)) {
    throw new CliError(`--fail-if '${text}': unknown metric "${m[1]}" (known: ${GATE_METRICS.join(", ")})`);
  }
  return { text: `${metric} ${m[2]} ${m[3]}`, metric, op: m[2] as Op, value: Number(m[3]) };
}

/** The value of a gate metric in a measurement (null when it has none). */
export function metricValue(m: Measurement, metric: string): number | null {
  const [kind, stat] = metric.split(".");
  if (kind === "response" || kind === "interrupt") {
    return m[kind][stat as typeof STATS[number]] ?? null;
  }
  if (kind === "turn_taking") return m.turnTaking?.[stat as typeof TURN_TAKING_KEYS[number]] ?? null;
  switch (metric) {
    case "failed_turns":
      return m.turns.filter((t) => !t.ok).length;
    case "turns":
      return m.turns.length;
    case "noise_reduction":
      return m.noiseReduction;
    case "network_resilience":
      return m.networkResilience;
    case "naturalness":
      return m.naturalness;
  }
  return null;
}

function holds(a: number, op: Op, b: number): boolean {
  switch (op) {
    case ">":
      return a > b;
    case ">=":
      return a >= b;
    case "<":
      return a < b;
    case "<=":
      return a <= b;
    case "==":
      return a === b;
    case "!=":
      return a !== b;
  }
}

/** Checks every gate against `m`. */
export function checkGates(m: Measurement, gates: Gate[]): GateOutcome[] {
  return gates.map((gate) => {
    const actual = metricValue(m, gate.metric);
    if (actual == null) {
      return { gate, actual, failed: true, message: `${gate.metric} has no value (nothing measured)` };
    }
    const failed = holds(actual, gate.op, gate.value);
    return {
      gate,
      actual,
      failed,
      message: failed
        ? `${gate.metric} = ${actual}, fails '${gate.text}'`
        : `${gate.metric} = ${actual}, passes '${gate.text}'`,
    };
  });
}
