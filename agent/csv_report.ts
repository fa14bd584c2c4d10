/**
 * The run report as voice-agent-tester's CSV (`-r out.csv`): its columns first, in its format
 * (", " between fields, no quoting, one row per attempt), then Vox's own per run.
 *
 *   app, scenario, repetition, success, duration, step_<n>_<action>_<metric>…, vox_…
 *
 * `app`/`scenario` are file names without their extension, `repetition` counts from 0,
 * `success` is 1 or 0, `duration` and `elapsed_time` are whole ms; `n` counts the application's
 * steps then the scenario's from 1; metric columns are ordered by step, then by name; a run
 * without a value leaves the field empty.
 */
import { basename, extname } from "node:path";
import type { Report, RunRecord } from "./report.ts";
import { summarize } from "./stats.ts";

type Run = Omit<RunRecord, "turns" | "noise_checks">;

/** Vox's columns after the tester's. */
export const VOX_CSV_COLUMNS = [
  "vox_run",
  "vox_attempt",
  "vox_response_latency_median_ms",
  "vox_interrupt_latency_median_ms",
  "vox_turns",
  "vox_turns_failed",
  "vox_naturalness",
] as const;

const name = (path: string) => basename(path, extname(path));

/** A report's runs (and retried attempts) as the tester's CSV text, ending in a newline. */
export function reportCsv(report: Report): string {
  const rows: Run[] = [...(report.retried ?? []), ...report.runs]
    .sort((a, b) => a.run - b.run || (a.attempt ?? 1) - (b.attempt ?? 1));
  const columns = new Map<string, { index: number; metric: string }>();
  for (const run of rows) {
    for (const step of run.steps) {
      for (const metric of Object.keys(step.metrics ?? {})) {
        const key = `${step.index ?? step.step}\u0000${metric}`;
        if (!columns.has(key)) columns.set(key, { index: step.index ?? step.step, metric });
      }
    }
  }
  const stepColumns = [...columns.values()].sort((a, b) =>
    a.index - b.index || (a.metric < b.metric ? -1 : a.metric > b.metric ? 1 : 0)
  );
  // The action in a column's name is the one of the first run that recorded it.
  const actionOf = (c: { index: number; metric: string }) =>
    rows.flatMap((r) => r.steps).find((s) =>
      (s.index ?? s.step) === c.index && s.metrics?.[c.metric] != null
    )!
      .action;
  const header = [
    "app",
    "scenario",
    "repetition",
    "success",
    "duration",
    ...stepColumns.map((c) => `step_${c.index}_${actionOf(c)}_${c.metric}`),
    ...VOX_CSV_COLUMNS,
  ];
  const lines = [header.join(", ")];
  for (const run of rows) {
    const final = !report.retried?.includes(run);
    const turns = final ? report.turns.filter((t) => t.run === run.run) : [];
    const median = (kind: string) =>
      summarize(
        turns.filter((t) => t.kind === kind && t.ok && t.latency_ms != null).map((t) => t.latency_ms!),
      )
        .median;
    const value = (c: { index: number; metric: string }) => {
      const v = run.steps.find((s) => (s.index ?? s.step) === c.index)?.metrics?.[c.metric];
      return v == null ? "" : c.metric === "elapsed_time" ? String(Math.round(v)) : String(v);
    };
    const cells: (string | number | null | undefined)[] = [
      name(run.app),
      name(run.suite),
      run.repetition - 1,
      run.ok ? 1 : 0,
      run.duration_ms ?? "",
      ...stepColumns.map(value),
      run.run,
      run.attempt ?? 1,
      final ? median("response") : null,
      final ? median("interrupt") : null,
      final ? turns.length : null,
      final ? turns.filter((t) => !t.ok).length : null,
      run.naturalness,
    ];
    lines.push(cells.map((c) => c == null ? "" : String(c)).join(", "));
  }
  return lines.join("\n") + "\n";
}
