// `deno task bench:accuracy`: how far Vox's measured latencies are from the reference agent's
// truth over a grid of response delays × barge-in stop delays × output paths, two runs in
// parallel. Prints |error| p50/p95/max per path and metric, the detection rate, and the error
// of voice-agent-tester's method (timing from the end of the prompt file) on the same turns.
//   deno task bench:accuracy [--quick] [--concurrency N] [--json out.json]
import { parseArgs } from "node:util";
import { launchChromium } from "../agent/browser.ts";
import { loadConfig } from "../agent/config.ts";
import { runMatrix } from "../agent/job.ts";
import type { Turn } from "../agent/report.ts";
import { quantile } from "../agent/stats.ts";
import { appFile, collectTruth, serveReferenceAgent, type TruthRecord } from "./reference_agent.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    quick: { type: "boolean", default: false },
    concurrency: { type: "string", default: "2" },
    json: { type: "string" },
  },
});
const paths = (Deno.env.get("VOX_BENCH_PATHS")?.split(",") ?? ["webaudio", "src", "srcobject"]) as (
  | "webaudio"
  | "src"
  | "srcobject"
)[];
const delays = Deno.env.get("VOX_BENCH_DELAYS")
  ? Deno.env.get("VOX_BENCH_DELAYS")!.split(",").map(Number)
  : values.quick
  ? [500, 1500]
  : [400, 700, 1000, 1500, 2000];
const stops = [200, 350, 500];
const targets = { webaudio: [5, 10], src: [10, 15], srcobject: [10, 15] } as const;

const server = serveReferenceAgent();
const chromium = await launchChromium();
const outDir = await Deno.makeTempDir({ prefix: "vox-bench-" });
const suite = await loadConfig("tests/fixtures/vat/barge_in.yaml", "scenario");

interface Sample {
  path: string;
  kind: "response" | "interrupt";
  error: number | null;
  baseline: number | null;
}
const samples: Sample[] = [];
// Barge-ins whose stop fell just before a word on an element path: the truth cannot decide.
const ambiguous: string[] = [];
const started = performance.now();
for (const path of paths) {
  const apps = await Promise.all(
    delays.map((d, i) =>
      appFile(`${server.url}agent/index.html?out=${path}&delay=${d}&stop=${stops[i % stops.length]}`)
        .then((f) => loadConfig(f, "application"))
    ),
  );
  const { report } = await runMatrix(apps, [suite], {
    browser: chromium.browser,
    outDir,
    concurrency: Number(values.concurrency),
    collect: collectTruth,
  });
  for (const run of report.runs) {
    const truth = (run.collected as TruthRecord[] | undefined) ?? [];
    const turns = report.turns.filter((t) => t.run === run.run);
    for (const kind of ["response", "interrupt"] as const) {
      const real = truth.filter((t) => t.kind === kind);
      const measured = turns.filter((t) => t.kind === kind);
      real.forEach((t, i) => {
        const m: Turn | undefined = measured[i];
        const ok = m?.latency_ms != null && t.latency_ms != null;
        let baseline: number | null = null;
        if (
          kind === "response" && m?.agent_frame != null && m.caller_file_end_frame != null &&
          t.latency_ms != null
        ) {
          const fromFileEnd = ((m.agent_frame - m.caller_file_end_frame) / m.sample_rate!) * 1000;
          baseline = Math.abs(fromFileEnd - t.latency_ms);
        }
        if (t.ambiguous) {
          ambiguous.push(path);
          return;
        }
        samples.push({ path, kind, error: ok ? Math.abs(m.latency_ms! - t.latency_ms!) : null, baseline });
        const bad = !ok || Math.abs(m.latency_ms! - t.latency_ms!) > 20;
        if (bad && Deno.env.get("VOX_BENCH_DEBUG")) console.error(path, kind, JSON.stringify({ t, m }));
      });
    }
  }
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
  for (const [k, kind] of (["response", "interrupt"] as const).entries()) {
    const set = samples.filter((s) => s.path === path && s.kind === kind);
    const errs = set.map((s) => s.error).filter((e): e is number => e != null).sort((a, b) => a - b);
    const base = set.map((s) => s.baseline).filter((e): e is number => e != null).sort((a, b) => a - b);
    const row = {
      path,
      kind,
      n: set.length,
      detected: set.length ? errs.length / set.length : 0,
      p50: errs.length ? quantile(errs, 0.5) : null,
      p95: errs.length ? quantile(errs, 0.95) : null,
      max: errs.length ? errs[errs.length - 1] : null,
      target_p95: targets[path][k],
      baseline_p50: base.length ? quantile(base, 0.5) : null,
    };
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
