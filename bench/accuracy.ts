// `deno task bench:accuracy`: how far Vox's measured latencies are from the reference agent's
// truth over a grid of response delays × barge-in stop delays × output paths, two runs in
// parallel. Prints |error| p50/p95/max per path and metric, the detection rate, and the error
// of voice-agent-tester's method (timing from the end of the prompt file) on the same turns.
//   deno task bench:accuracy [--quick] [--concurrency N] [--json out.json]
import { parseArgs } from "node:util";
import { launchChromium } from "../agent/browser.ts";
import { loadConfig } from "../agent/config.ts";
import { runMatrix } from "../agent/job.ts";
import { collectTruth, serveReferenceAgent } from "./reference_agent.ts";
import {
  gradeReport,
  OUTPUT_PATHS,
  type OutputPath,
  referenceApp,
  type Sample,
  SCENARIO,
  STOPS,
  summarize,
} from "./scoring.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    concurrency: { type: "string", default: "2" },
    json: { type: "string" },
  },
});
const paths = (Deno.env.get("VOX_BENCH_PATHS")?.split(",") ?? OUTPUT_PATHS) as OutputPath[];
const delays = Deno.env.get("VOX_BENCH_DELAYS")
  ? Deno.env.get("VOX_BENCH_DELAYS")!.split(",").map(Number)
  : values.quick
  ? [500, 1500]
  : [400, 700, 1000, 1500, 2000];

const server = serveReferenceAgent();
const chromium = await launchChromium();
const outDir = await Deno.makeTempDir({ prefix: "vox-bench-" });
const suite = await loadConfig(SCENARIO, "scenario");

const samples: Sample[] = [];
// Barge-ins whose stop fell just before a word on an element path: the truth cannot decide.
const ambiguous: string[] = [];
const started = performance.now();
for (const path of paths) {
  const apps = await Promise.all(
    delays.map((d, i) => referenceApp(server.url, path, d, STOPS[i % STOPS.length])),
  );
  const { report } = await runMatrix(apps, [suite], {
    browser: chromium.browser,
    outDir,
    concurrency: Number(values.concurrency),
    collect: collectTruth,
  });
  const graded = gradeReport(report, () => path);
  for (const { run, reason } of graded.noTruth) {
    console.error(`run ${run}: no truth from the page (${reason})`);
  }
  samples.push(...graded.samples);
  ambiguous.push(...graded.ambiguous);
  if (!report.ok) console.error(`  ${path}: ${report.errors.map((e) => e.message).join("; ")}`);
}
await chromium.close();
await server.close();
if (Deno.env.get("VOX_BENCH_KEEP")) console.log(`recordings kept in ${outDir}`);
else await Deno.remove(outDir, { recursive: true });

const fmt = (x: number) => x.toFixed(2).padStart(7);
const rows: Record<string, unknown>[] = [];
console.log(
  `\nVox accuracy vs reference-agent truth (${delays.length} delays × ${paths.length} paths, ` +
    `${values.concurrency} runs in parallel, ${((performance.now() - started) / 1000).toFixed(0)} s)\n`,
);
console.log(
  "path       metric     n  detected   p50 |err|  p95 |err|  max |err|  target p95  vat-method p50",
);
for (const path of paths) {
  for (const kind of ["response", "interrupt"] as const) {
    const { unreliable: _u, bias_p50: _b, ...summary } = summarize(samples, path, kind);
    const row = { ...summary, detected: summary.detected ?? 0 };
    rows.push(row);
    console.log(
      `${path.padEnd(10)} ${kind.padEnd(9)} ${String(row.n).padStart(2)}  ${
        (row.detected * 100).toFixed(0).padStart(6)
      } %  ` +
        `${row.p50 == null ? "      —" : fmt(row.p50)} ms ${row.p95 == null ? "      —" : fmt(row.p95)} ms ` +
        `${row.max == null ? "      —" : fmt(row.max)} ms  ${String(row.target_p95).padStart(6)} ms  ` +
        `${row.baseline_p50 == null ? "" : fmt(row.baseline_p50) + " ms"}`,
    );
  }
}
console.log(
  "\nvat-method: the same turns timed from the end of the prompt file (voice-agent-tester's reference\n" +
    "point), which silently subtracts the prompt's trailing silence from the latency.",
);
if (ambiguous.length) {
  console.log(
    `\nleft out: ${ambiguous.length} interruption(s) with ambiguous truth (${ambiguous.join(", ")})`,
  );
}
if (values.json) await Deno.writeTextFile(values.json, JSON.stringify(rows, null, 2) + "\n");
