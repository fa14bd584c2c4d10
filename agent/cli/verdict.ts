/**
 * The verdict on one measured job or report: its gates, its baseline comparison, or why it
 * could not run; and the exit code for a whole invocation.
 */
import { type BaselineOptions, type ShiftTest, shiftTest } from "./baseline.ts";
import { EXIT } from "./errors.ts";
import { checkGates, type Gate, type GateOutcome } from "./gates.ts";
import { latencies, type Measurement } from "./measurement.ts";

/** The baseline comparison of one kind of turn. */
export interface KindComparison {
  kind: "response" | "interrupt";
  test: ShiftTest;
}

/** A result against its baseline. */
export interface BaselineComparison {
  label: string;
  kinds: KindComparison[];
}

/** Everything known about one job or report. */
export interface Evaluation {
  /** "job 12 (eu)" or a report path. */
  title: string;
  measurement?: Measurement;
  gates: GateOutcome[];
  baseline?: BaselineComparison;
  /** Why it could not be measured or judged: exit 2. */
  error?: string;
}

/** Compares both kinds of turns present on either side. */
export function compareToBaseline(
  baseline: Measurement,
  next: Measurement,
  opts: BaselineOptions = {},
): BaselineComparison {
  const kinds: KindComparison[] = [];
  for (const kind of ["response", "interrupt"] as const) {
    const a = latencies(baseline, kind);
    const b = latencies(next, kind);
    if (a.length === 0 && b.length === 0) continue;
    kinds.push({ kind, test: shiftTest(a, b, opts) });
  }
  return { label: baseline.label, kinds };
}

/** Gates and baseline for a measurement. */
export function evaluate(
  title: string,
  m: Measurement,
  gates: Gate[],
  baseline?: Measurement,
  opts?: BaselineOptions,
): Evaluation {
  const ev: Evaluation = { title, measurement: m, gates: checkGates(m, gates) };
  if (baseline) {
    ev.baseline = compareToBaseline(baseline, m, opts);
    const insufficient = ev.baseline.kinds.filter((k) => k.test.verdict === "insufficient");
    if (ev.baseline.kinds.length === 0) {
      ev.error = `baseline: neither ${baseline.label} nor this run has turns`;
    } else if (insufficient.length) {
      ev.error = `baseline: ${insufficient.map((k) => `${k.kind} turns: ${k.test.summary}`).join("; ")}`;
    }
  }
  return ev;
}

/** Did this evaluation pass, fail, or not run? */
export function statusOf(ev: Evaluation): "passed" | "failed" | "error" {
  if (ev.error) return "error";
  if (ev.gates.some((g) => g.failed)) return "failed";
  if (ev.baseline?.kinds.some((k) => k.test.verdict === "regression")) return "failed";
  return "passed";
}

/** 2 when anything could not run, else 1 when anything failed, else 0. */
export function exitCode(evs: Evaluation[]): number {
  const s = evs.map(statusOf);
  if (s.includes("error") || s.length === 0) return EXIT.error;
  if (s.includes("failed")) return EXIT.failed;
  return EXIT.passed;
}
