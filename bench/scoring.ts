// Grading the runner against the reference agent's truth, shared by `bench:accuracy` and
// `bench:capacity`: the accuracy targets, the reference applications, the pairing of measured
// turns with truth, and the per-path summary.
import { loadConfig, type LoadedConfig } from "../agent/config.ts";
import type { Report, Turn } from "../agent/report.ts";
import { quantile } from "../agent/stats.ts";
import { appFile, type TruthRecord } from "./reference_agent.ts";

/** The reference agent's output paths the benches measure. */
export type OutputPath = "webaudio" | "src" | "srcobject";
export const OUTPUT_PATHS: OutputPath[] = ["webaudio", "src", "srcobject"];

/** Accuracy targets: p95 |error| in ms per output path, response then interrupt (README). */
export const TARGETS: Record<OutputPath, { response: number; interrupt: number }> = {
  webaudio: { response: 5, interrupt: 10 },
  src: { response: 10, interrupt: 15 },
  srcobject: { response: 10, interrupt: 15 },
};

/** Barge-in stop delays of the reference agent, ms, cycled over the applications. */
export const STOPS = [200, 350, 500];

/** The scenario every reference application runs: a reply, a barge-in, the reply to it. */
export const SCENARIO = "tests/fixtures/vat/barge_in.yaml";

/** The reference agent on `path` with response delay `delay` and stop delay `stop`, as an application. */
export async function referenceApp(
  serverUrl: string,
  path: OutputPath,
  delay: number,
  stop: number,
): Promise<LoadedConfig> {
  return await loadConfig(
    await appFile(`${serverUrl}agent/index.html?out=${path}&delay=${delay}&stop=${stop}`),
    "application",
  );
}

/** One turn graded against truth. `error` is null when the turn was not measured (or not reported ok). */
export interface Sample {
  path: string;
  kind: "response" | "interrupt";
  error: number | null;
  /** Measured minus truth, ms (positive: Vox measured later than the truth), null when not measured. */
  signed: number | null;
  /** voice-agent-tester's method on the same turn (timed from the end of the prompt file). */
  baseline: number | null;
  /** The runner flagged the turn unreliable (overload): counted as not detected. */
  unreliable: boolean;
}

/** What grading a report found: the samples, interruptions left out, runs without truth. */
export interface Graded {
  samples: Sample[];
  /** Output path of each interruption whose truth could not decide (stop just before a word). */
  ambiguous: string[];
  /** Runs whose page gave no truth (failed or closed early), with the reason. */
  noTruth: { run: number; reason: string }[];
}

/**
 * Pairs each run's measured turns with the truth the page kept (`collectTruth`), in order of
 * occurrence per kind; `pathOf` names the run's output path.
 */
export function gradeReport(report: Report, pathOf: (run: Report["runs"][number]) => string): Graded {
  const out: Graded = { samples: [], ambiguous: [], noTruth: [] };
  for (const run of report.runs) {
    const path = pathOf(run);
    // The page's truth is read before it closes; a page that failed or closed early leaves
    // `{ error }` instead: its turns cannot be scored and are left out (the caller says so).
    if (!Array.isArray(run.collected)) {
      out.noTruth.push({ run: run.run, reason: JSON.stringify(run.collected ?? run.error?.message ?? null) });
    }
    const truth = Array.isArray(run.collected) ? run.collected as TruthRecord[] : [];
    const turns = report.turns.filter((t) => t.run === run.run);
    for (const kind of ["response", "interrupt"] as const) {
      const real = truth.filter((t) => t.kind === kind);
      const measured = turns.filter((t) => t.kind === kind);
      real.forEach((t, i) => {
        const m: Turn | undefined = measured[i];
        if (t.ambiguous) {
          out.ambiguous.push(path);
          return;
        }
        const unreliable = !!m?.unreliable;
        const ok = !unreliable && m?.latency_ms != null && t.latency_ms != null;
        let baseline: number | null = null;
        if (
          kind === "response" && m?.agent_frame != null && m.caller_file_end_frame != null &&
          t.latency_ms != null
        ) {
          const fromFileEnd = ((m.agent_frame - m.caller_file_end_frame) / m.sample_rate!) * 1000;
          baseline = Math.abs(fromFileEnd - t.latency_ms);
        }
        const signed = ok ? m.latency_ms! - t.latency_ms! : null;
        const error = signed == null ? null : Math.abs(signed);
        out.samples.push({ path, kind, error, signed, baseline, unreliable });
        if (
          (error == null || error > Number(Deno.env.get("VOX_BENCH_DEBUG_MS") ?? 20)) &&
          Deno.env.get("VOX_BENCH_DEBUG")
        ) {
          console.error(path, kind, JSON.stringify({ t, m }));
        }
      });
    }
  }
  return out;
}

/** |error| statistics of one path and turn kind. Statistics are null when no turn was measured. */
export interface Summary {
  path: string;
  kind: "response" | "interrupt";
  n: number;
  /** Share of truth turns measured and reported ok (null when there were none). */
  detected: number | null;
  unreliable: number;
  p50: number | null;
  p95: number | null;
  max: number | null;
  /** Median of measured minus truth, ms: a sign that errors lean one way. */
  bias_p50: number | null;
  target_p95: number;
  baseline_p50: number | null;
}

/** Summarises the samples of one path and kind against its target. */
export function summarize(samples: Sample[], path: OutputPath, kind: "response" | "interrupt"): Summary {
  const set = samples.filter((s) => s.path === path && s.kind === kind);
  const errs = set.map((s) => s.error).filter((e): e is number => e != null).sort((a, b) => a - b);
  const signed = set.map((s) => s.signed).filter((e): e is number => e != null).sort((a, b) => a - b);
  const base = set.map((s) => s.baseline).filter((e): e is number => e != null).sort((a, b) => a - b);
  return {
    path,
    kind,
    n: set.length,
    detected: set.length ? errs.length / set.length : null,
    unreliable: set.filter((s) => s.unreliable).length,
    p50: errs.length ? quantile(errs, 0.5) : null,
    p95: errs.length ? quantile(errs, 0.95) : null,
    max: errs.length ? errs[errs.length - 1] : null,
    bias_p50: signed.length ? quantile(signed, 0.5) : null,
    target_p95: TARGETS[path][kind],
    baseline_p50: base.length ? quantile(base, 0.5) : null,
  };
}
