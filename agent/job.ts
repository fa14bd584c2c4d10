/**
 * A job: every application × scenario pair, repeated, run by the runner (`runner.ts`) up to
 * `concurrency` at once in one browser, then again under network profiles when a scenario
 * names them, and summed up in one report. Run mode and the daemon both call `runJob()`.
 */
import { join, resolve } from "node:path";
import { launchChromium } from "./browser.ts";
import type { LoadedConfig } from "./config.ts";
import { runNetworkProfiles } from "./network_resilience.ts";
import { buildReport, type Report, type RunRecord } from "./report.ts";
import { runOnce, type RunOptions } from "./runner.ts";

/** Result of `runJob()`: the report and the stereo recordings written (caller left, agent right). */
export interface JobResult {
  report: Report;
  recordings: string[];
}

/**
 * Runs app × suite `repeat` times (up to `concurrency` at once) and returns the report and the
 * recordings. This is the whole job; run mode and the daemon only wrap it.
 */
export async function runJob(
  app: LoadedConfig,
  suite: LoadedConfig,
  options: RunOptions = {},
): Promise<JobResult> {
  return await runMatrix([app], [suite], options);
}

/** Like `runJob()` over every application × scenario pair. */
export async function runMatrix(
  apps: LoadedConfig[],
  suites: LoadedConfig[],
  options: RunOptions = {},
): Promise<JobResult> {
  const startedAt = new Date();
  const outDir = resolve(
    options.outDir ?? join(".vox", "agent", startedAt.toISOString().replace(/[:.]/g, "-")),
  );
  await Deno.mkdir(outDir, { recursive: true });
  const repeat = Math.max(1, options.repeat ?? 1);
  const plan: { app: LoadedConfig; suite: LoadedConfig; repetition: number; run: number }[] = [];
  for (const app of apps) {
    for (const suite of suites) {
      for (let r = 0; r < repeat; r++) plan.push({ app, suite, repetition: r + 1, run: plan.length + 1 });
    }
  }
  const launched = options.browser ? null : await launchChromium({
    headless: options.headless ?? true,
    strictEgress: !!options.egress,
  });
  const browser = options.browser ?? launched!.browser;
  const runs: RunRecord[] = [];
  const retried: RunRecord[] = [];
  const retries = Math.max(0, options.retries ?? 0);
  try {
    let next = 0;
    const workers = Array.from(
      { length: Math.max(1, Math.min(options.concurrency ?? 1, plan.length)) },
      async () => {
        while (next < plan.length && !options.signal?.aborted) {
          const p = plan[next++];
          options.onProgress?.(
            `run ${p.run}/${plan.length}: ${p.app.name} × ${p.suite.name} (repetition ${p.repetition})`,
          );
          let rec = await runOnce(browser, p.app, p.suite, p.run, p.repetition, { ...options, outDir });
          let attempt = 1;
          rec.attempt = attempt;
          // `--retries`: voice-agent-tester runs a failed repetition again after 3 s, fresh.
          while (!rec.ok && attempt <= retries && !options.signal?.aborted) {
            retried.push(rec);
            options.onProgress?.(
              `  run ${p.run} failed (${rec.error?.message}); retry ${attempt}/${retries} in 3 s`,
            );
            await new Promise((r) => setTimeout(r, 3000));
            const next = await runOnce(browser, p.app, p.suite, p.run, p.repetition, { ...options, outDir });
            next.attempt = ++attempt;
            rec = next;
          }
          runs.push(rec);
        }
      },
    );
    await Promise.all(workers);
  } finally {
    await launched?.close();
  }
  runs.sort((a, b) => a.run - b.run);
  const report = buildReport(runs, startedAt);
  if (retried.length > 0) {
    report.retried = retried.sort((a, b) => a.run - b.run || a.attempt! - b.attempt!)
      .map(({ turns: _t, noise_checks: _n, ...rest }) => rest);
  }
  if (suites.some((s) => (s.network ?? []).length > 0)) {
    const net = await runNetworkProfiles(apps, suites, runs, { ...options, outDir });
    report.metrics.network_resilience = net.score;
    report.notes.network_resilience = net.note;
    report.network = net.profiles;
    runs.push(...net.runs);
  }
  return { report, recordings: runs.map((r) => r.recording).filter((p): p is string => p != null) };
}
