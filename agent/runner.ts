/**
 * The runner: one application × scenario in a real browser, measured on the page's audio clock.
 * `runJob()` is what run mode and the daemon both call: configs in, report and recordings out.
 */
import type { Browser, BrowserContext, Page } from "puppeteer-core";
import { join, resolve } from "node:path";
import { ConfigError, type LoadedConfig } from "./config.ts";
import type { NetworkProfile, Step } from "./format.ts";
import { launchChromium } from "./browser.ts";
import { summarize } from "./stats.ts";
import { naturalness } from "./naturalness.ts";
import { impairedNetwork, probeNetem } from "./network.ts";
import {
  buildReport,
  type NetworkResult,
  type Report,
  type RunRecord,
  type StepRecord,
  type Turn,
} from "./report.ts";
import { pageHooks, Session, StepFailure } from "./session.ts";

export { buildReport, METHODS, noiseReduction } from "./report.ts";
export type {
  NetworkResult,
  NoiseCheck,
  Report,
  RunErrorInfo,
  RunRecord,
  StepRecord,
  Turn,
} from "./report.ts";
export { DETECTOR } from "./session.ts";

/** Where a run is: step `step` of `totalSteps` (1-based, application then scenario steps). */
export interface StepProgress {
  run: number;
  step: number;
  totalSteps: number;
  message: string;
  turn?: Turn;
}

/** Options of a job run. */
export interface RunOptions {
  repeat?: number;
  headless?: boolean;
  verbose?: boolean;
  concurrency?: number;
  /** Folder for recordings and screenshots; created when missing. */
  outDir?: string;
  /** Reuse a browser (tests and the daemon); otherwise one is launched per job. */
  browser?: Browser;
  /** Default timeout of waiting steps, wall-clock ms. */
  stepTimeoutMs?: number;
  /** Called with the page before it closes; its result is kept as `collected` on the run. */
  collect?: (page: Page) => Promise<unknown>;
  /** Progress lines (run mode prints them). */
  onProgress?: (line: string) => void;
  /** Cancels the job: the current step stops at its next wait and the run fails as cancelled. */
  signal?: AbortSignal;
  /** Structured progress for a daemon: before each step, and once per measured turn. */
  onStep?: (info: StepProgress) => void;
}

/** Result of `runJob()`: the report and the stereo recordings written (caller left, agent right). */
export interface JobResult {
  report: Report;
  recordings: string[];
}

function serveHtml(config: LoadedConfig): { url: string; close(): Promise<void> } {
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/" || path === "/index.html") {
      return new Response(config.html, { headers: { "content-type": "text/html; charset=utf-8" } });
    }
    try {
      const file = resolve(config.dir, "." + decodeURIComponent(path));
      if (!file.startsWith(config.dir)) return new Response("forbidden", { status: 403 });
      return new Response(await Deno.readFile(file));
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  return { url: `http://127.0.0.1:${server.addr.port}/`, close: () => server.shutdown() };
}

function safeName(s: string): string {
  return s.replace(/[^A-Za-z0-9_.-]+/g, "_");
}

/** Runs one repetition of app × suite in a fresh browser context; never throws. */
export async function runOnce(
  browser: Browser,
  app: LoadedConfig,
  suite: LoadedConfig,
  run: number,
  repetition: number,
  options: RunOptions & { outDir: string },
): Promise<RunRecord> {
  const progress = options.onProgress ?? (() => {});
  const record: RunRecord = {
    run,
    app: app.path,
    suite: suite.path,
    repetition,
    ok: false,
    error: null,
    steps: [],
    turns: [],
    noise_checks: [],
    recording: null,
    sample_rate: null,
    naturalness: null,
  };
  let context: BrowserContext | null = null;
  let html: ReturnType<typeof serveHtml> | null = null;
  let session: Session | null = null;
  try {
    context = await browser.createBrowserContext();
    const page = await context.newPage();
    const opts = { stepTimeoutMs: 30_000, verbose: false, ...options };
    session = new Session(page, run, opts, options.outDir, progress);
    const s = session;
    s.queue.signal = options.signal;
    s.queue.onPageError = (m) => progress(`    [vox] ${m}`);
    options.signal?.addEventListener("abort", () => s.queue.wake(), { once: true });
    // The meter worklet loads from a blob: URL, which a strict Content-Security-Policy would block.
    await page.setBypassCSP(true);
    await page.exposeFunction("__voxEmit", (json: string) => s.queue.push(JSON.parse(json)));
    await page.evaluateOnNewDocument(await pageHooks(!!options.verbose));
    if (options.verbose) page.on("console", (m) => progress(`    [page] ${m.text()}`));
    page.on("pageerror", (e) => progress(`    [page error] ${(e as Error).message ?? e}`));
    let url = app.url;
    if (!url) {
      html = serveHtml(app);
      url = html.url;
    }
    try {
      const origin = new URL(url).origin;
      if (/^https?:/.test(origin)) await context.overridePermissions(origin, ["microphone"]);
    } catch { /* non-http URLs need no permission */ }
    try {
      const res = await page.goto(url, { waitUntil: "load", timeout: opts.stepTimeoutMs });
      if (res && res.status() >= 400) throw new Error(`HTTP ${res.status()}`);
    } catch (err) {
      throw new StepFailure(
        `cannot open ${url}: ${(err as Error).message.split("\n")[0]}`,
        app.path,
        null,
        "open",
      );
    }
    const all: [LoadedConfig, Step, number][] = [
      ...app.steps.map((st, i): [LoadedConfig, Step, number] => [app, st, i + 1]),
      ...suite.steps.map((st, i): [LoadedConfig, Step, number] => [suite, st, i + 1]),
    ];
    let backgroundStarted = false;
    for (const [config, step, n] of all) {
      if (options.signal?.aborted) {
        throw new StepFailure("the job was cancelled", config.path, n, step.action);
      }
      if (config === suite && !backgroundStarted && suite.background) {
        backgroundStarted = true;
        const noise = await s.noisePayload(suite, suite.background);
        await s.background({ ...noise, levelDb: suite.background.level_db ?? -35 });
        s.backgroundActive = true;
      }
      if (config === suite && suite.silenceMs) await s.setHold(suite.silenceMs);
      progress(`  ${config.name} step ${n}: ${step.action}`);
      const index = all.findIndex((x) => x[1] === step) + 1;
      options.onStep?.({
        run,
        step: index,
        totalSteps: all.length,
        message: `${config.name} step ${n}: ${step.action}`,
      });
      const turnsBefore = s.turns.length;
      const began = performance.now();
      try {
        const extra = await s.execute(config, step, n);
        const elapsed = Math.round(performance.now() - began);
        const rec: StepRecord = {
          file: config.path,
          step: n,
          action: step.action,
          ok: true,
          elapsed_ms: elapsed,
        };
        const wanted = ([] as string[]).concat((step.metrics as string | string[] | undefined) ?? []);
        if (wanted.length > 0) {
          rec.metrics = {};
          if (wanted.includes("elapsed_time")) rec.metrics.elapsed_time = elapsed;
          for (const [k, v] of Object.entries(extra ?? {})) if (wanted.includes(k)) rec.metrics[k] = v;
        }
        s.steps.push(rec);
        for (const turn of s.turns.slice(turnsBefore)) {
          options.onStep?.({ run, step: index, totalSteps: all.length, message: `${turn.kind} turn`, turn });
        }
      } catch (err) {
        const message = (err as Error).message.split("\n")[0];
        s.steps.push({
          file: config.path,
          step: n,
          action: step.action,
          ok: false,
          elapsed_ms: Math.round(performance.now() - began),
          error: message,
        });
        throw new StepFailure(message, config.path, n, step.action);
      }
    }
    record.ok = true;
  } catch (err) {
    if (err instanceof StepFailure) {
      record.error = { message: err.message, file: err.file, step: err.step, action: err.action };
    } else if (err instanceof ConfigError) {
      record.error = {
        message: err.message,
        file: err.file,
        step: err.step ?? null,
        action: err.action ?? null,
      };
    } else {
      record.error = { message: (err as Error).message, file: app.path, step: null, action: null };
    }
  } finally {
    if (session) {
      record.turns = session.turns;
      record.noise_checks = session.noiseChecks;
      record.steps = session.steps;
      try {
        const base = `${safeName(app.name)}__${safeName(suite.name)}__run${run}-${
          Date.now().toString(36)
        }.wav`;
        const saved = await session.saveRecording(join(options.outDir, base));
        if (saved) {
          record.recording = saved.path;
          record.sample_rate = saved.sampleRate;
          record.recording_first_frame = saved.firstFrame;
          record.naturalness = await naturalness(saved.path);
        }
      } catch (err) {
        progress(`    recording could not be saved: ${(err as Error).message}`);
      }
      if (options.collect) {
        try {
          record.collected = await options.collect(session.page);
        } catch (err) {
          record.collected = { error: (err as Error).message };
        }
      }
    }
    await context?.close().catch(() => {});
    await html?.close().catch(() => {});
  }
  return record;
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
  const launched = options.browser ? null : await launchChromium({ headless: options.headless ?? true });
  const browser = options.browser ?? launched!.browser;
  const runs: RunRecord[] = [];
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
          runs.push(await runOnce(browser, p.app, p.suite, p.run, p.repetition, { ...options, outDir }));
        }
      },
    );
    await Promise.all(workers);
  } finally {
    await launched?.close();
  }
  runs.sort((a, b) => a.run - b.run);
  const report = buildReport(runs, startedAt);
  if (suites.some((s) => (s.network ?? []).length > 0)) {
    const net = await runNetworkProfiles(apps, suites, runs, { ...options, outDir });
    report.metrics.network_resilience = net.score;
    report.notes.network_resilience = net.note;
    report.network = net.profiles;
    runs.push(...net.runs);
  }
  return { report, recordings: runs.map((r) => r.recording).filter((p): p is string => p != null) };
}

/**
 * Network resilience (vox-netem/1): every application × scenario with `network` profiles runs
 * again with Chromium inside a namespace whose link carries the profile's netem. Per profile:
 * 100 × (ok turns impaired ÷ ok turns clean, capped at 1) × min(1, clean median ÷ impaired
 * median response latency); the metric is the mean over profiles.
 */
async function runNetworkProfiles(
  apps: LoadedConfig[],
  suites: LoadedConfig[],
  clean: RunRecord[],
  options: RunOptions & { outDir: string },
): Promise<{ score: number | null; note: string; profiles: NetworkResult[]; runs: RunRecord[] }> {
  const profiles: NetworkProfile[] = [];
  for (const s of suites) {
    for (const p of s.network ?? []) if (!profiles.some((q) => q.name === p.name)) profiles.push(p);
  }
  const names = profiles.map((p) => p.name).join(", ");
  const probe = await probeNetem();
  if (!probe.ok) {
    return {
      score: null,
      note: `network profiles ${names} were not applied: ${probe.reason}`,
      profiles: [],
      runs: [],
    };
  }
  const cleanTurns = clean.flatMap((r) => r.turns);
  const cleanOk = cleanTurns.filter((t) => t.ok).length;
  const cleanMedian = summarize(
    cleanTurns.filter((t) => t.kind === "response" && t.ok).map((t) => t.latency_ms!),
  ).median;
  const results: NetworkResult[] = [];
  const allRuns: RunRecord[] = [];
  let runNo = clean.length;
  for (const [i, profile] of profiles.entries()) {
    const result: NetworkResult = {
      profile: profile.name,
      score: null,
      response_latency: summarize([]),
      turns_ok: 0,
      turns: 0,
    };
    results.push(result);
    let net: Awaited<ReturnType<typeof impairedNetwork>> | null = null;
    let launched: Awaited<ReturnType<typeof launchChromium>> | null = null;
    try {
      net = await impairedNetwork(profile, i + 1);
      const pairs: { app: LoadedConfig; suite: LoadedConfig }[] = [];
      const origins = new Set<string>();
      for (const app of apps) {
        for (const suite of suites.filter((s) => s.network?.some((p) => p.name === profile.name))) {
          if (!app.url) throw new Error("html applications are not served into the namespace");
          const url = await net.rewrite(app.url);
          origins.add(new URL(url).origin);
          pairs.push({ app: { ...app, url }, suite });
        }
      }
      launched = await launchChromium({
        headless: options.headless ?? true,
        executablePath: net.chromiumWrapper,
        pipe: true,
        // The rewritten origins are plain-HTTP addresses; getUserMedia needs a secure context.
        args: [`--unsafely-treat-insecure-origin-as-secure=${[...origins].join(",")}`],
      });
      const runs: RunRecord[] = [];
      for (const { app, suite } of pairs) {
        for (let r = 0; r < Math.max(1, options.repeat ?? 1); r++) {
          options.onProgress?.(`network ${profile.name}: ${app.name} × ${suite.name} (repetition ${r + 1})`);
          runs.push(await runOnce(launched.browser, app, suite, ++runNo, r + 1, options));
        }
      }
      const turns = runs.flatMap((r) => r.turns);
      result.turns = turns.length;
      result.turns_ok = turns.filter((t) => t.ok).length;
      result.response_latency = summarize(
        turns.filter((t) => t.kind === "response" && t.ok).map((t) => t.latency_ms!),
      );
      const success = cleanOk > 0 ? Math.min(1, result.turns_ok / cleanOk) : 0;
      const slow = cleanMedian != null && result.response_latency.median != null
        ? Math.min(1, cleanMedian / result.response_latency.median)
        : result.turns_ok > 0
        ? 1
        : 0;
      result.score = Math.round(100 * success * slow * 10) / 10;
      for (const r of runs) {
        r.error = r.error ? { ...r.error, message: `[network ${profile.name}] ${r.error.message}` } : null;
      }
      allRuns.push(...runs.map((r) => ({ ...r, turns: [], noise_checks: [] })));
    } catch (err) {
      result.error = (err as Error).message;
    } finally {
      await launched?.close();
      await net?.close();
    }
  }
  const scored = results.filter((r) => r.score != null).map((r) => r.score!);
  const score = scored.length
    ? Math.round((scored.reduce((a, b) => a + b, 0) / scored.length) * 10) / 10
    : null;
  const failed = results.filter((r) => r.error).map((r) => `${r.profile}: ${r.error}`);
  return {
    score,
    note: `profiles ${names} applied with tc netem in a network namespace` +
      (failed.length ? `; failed: ${failed.join("; ")}` : ""),
    profiles: results,
    runs: allRuns,
  };
}
