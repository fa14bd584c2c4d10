/**
 * A job: every application × scenario pair, repeated, run by the runner (`runner.ts`) up to
 * `concurrency` at once in one browser, then again under network profiles when a scenario
 * names them, and summed up in one report. Run mode and the daemon both call `runJob()`.
 */
import { join, resolve } from "node:path";
import { launchChromium } from "./browser.ts";
import type { LoadedConfig } from "./config.ts";
import { NETWORK_METHODS, runNetworkProfiles } from "./network_resilience.ts";
import { buildReport, type Report, type RunRecord } from "./report.ts";
import { runOnce, type RunOptions, withDeadline } from "./runner.ts";
import { REALTIME_METHODS, runRealtimeOnce } from "./realtime/runner.ts";

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
  // Realtime applications need no browser; one is launched only for pages.
  const needsBrowser = apps.some((a) => !a.realtime);
  const launched = options.browser || !needsBrowser ? null : await launchChromium({
    headless: options.headless ?? true,
    strictEgress: !!options.egress,
  });
  const browser = options.browser ?? launched?.browser;
  const callOnce = (p: (typeof plan)[number], signal: AbortSignal, onLive: RunOptions["onLive"]) =>
    p.app.realtime
      ? runRealtimeOnce({ ...p.app, realtime: p.app.realtime }, p.suite, p.run, p.repetition, {
        ...options,
        signal,
        outDir,
      })
      : runOnce(browser!, p.app, p.suite, p.run, p.repetition, { ...options, signal, onLive, outDir });
  const once = (p: (typeof plan)[number]) =>
    withDeadline(p, options, (signal, onLive) => callOnce(p, signal, onLive));
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
          let rec = await once(p);
          let attempt = 1;
          rec.attempt = attempt;
          // `--retries`: voice-agent-tester runs a failed repetition again after 3 s, fresh.
          while (!rec.ok && attempt <= retries && !options.signal?.aborted) {
            retried.push(rec);
            options.onProgress?.(
              `  run ${p.run} failed (${rec.error?.message}); retry ${attempt}/${retries} in 3 s`,
            );
            await new Promise((r) => setTimeout(r, 3000));
            const next = await once(p);
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
  if (apps.every((a) => a.realtime)) {
    // Timed on the modelled playback, not a page's audio clock; the policy is part of the method.
    const policies = [...new Set(apps.map((a) => a.realtime!.barge_in))].join(",");
    report.methods.response_latency = REALTIME_METHODS.response_latency;
    report.methods.interrupt_latency = `${REALTIME_METHODS.interrupt_latency} (barge-in policy ${policies})`;
  }
  if (suites.some((s) => (s.network ?? []).length > 0) && needsBrowser) {
    const net = await runNetworkProfiles(apps, suites, runs, { ...options, outDir });
    report.metrics.network_resilience = net.score;
    report.notes.network_resilience = net.note;
    report.methods.network_resilience = NETWORK_METHODS[net.method];
    report.network = net.profiles;
    report.network_runs = net.runs.map(({ turns: _t, noise_checks: _n, ...rest }) => rest);
    runs.push(...net.runs);
  }
  return { report, recordings: runs.map((r) => r.recording).filter((p): p is string => p != null) };
}
