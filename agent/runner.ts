/**
 * The runner: one repetition of an application × scenario in a fresh browser context,
 * measured on the page's audio clock. It opens the page with the hooks, runs the steps in
 * order and keeps what they measured, and always returns a record (a failed step ends the
 * repetition with an error naming the file, step and action). Jobs (`job.ts`) call it for
 * every pair and repetition.
 */
import type { Browser, BrowserContext, Page } from "puppeteer-core";
import { join, resolve, sep } from "node:path";
import { ConfigError, type LoadedConfig } from "./config.ts";
import { BlockedDestination, type EgressPolicy, type EgressProxy, startEgressProxy } from "./egress.ts";
import type { Step } from "./format.ts";
import { background, noisePayload } from "./injection.ts";
import { naturalness } from "./naturalness.ts";
import { pageHooks } from "./page_hooks.ts";
import { saveRecording } from "./recording.ts";
import type { RunRecord, StepRecord, Turn } from "./report.ts";
import { Session } from "./session.ts";
import { executeStep } from "./steps.ts";
import { setHold } from "./turns.ts";

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
  /** On abort, close the run's pages at once (the daemon's deadline) instead of at the next wait. */
  closeOnAbort?: boolean;
  /** Structured progress for a daemon: before each step, and once per measured turn. */
  onStep?: (info: StepProgress) => void;
  /** `--retries`: a failed repetition runs again, up to this many more times (default 0). */
  retries?: number;
  /**
   * `--audio-url`: audio looped into the microphone under everything the caller says, from the
   * scenario's first step on (base64 of the file, its level in dBFS RMS); replaces the
   * scenario's own background.
   */
  audioBed?: { b64: string; levelDb: number };
  /** `--record`: a video of the tab (puppeteer's screencast, needs ffmpeg) beside the audio. */
  recordVideo?: boolean;
  /**
   * The strict egress policy (`egress.ts`): every browser context of the job reaches the
   * network only through a proxy that enforces it. Absent, the browser connects directly.
   */
  egress?: EgressPolicy;
  /** Address the egress proxy listens on (the host end of a network namespace); 127.0.0.1 by default. */
  egressListen?: string;
}

/** A step (or opening the page) failed; names the file, step and action. */
class StepFailure extends Error {
  constructor(
    message: string,
    readonly file: string,
    readonly step: number | null,
    readonly action: string | null,
  ) {
    super(message);
  }
}

/** Serves an `html` application on a loopback port, with files from its folder beside it. */
function serveHtml(config: LoadedConfig): { url: string; close(): Promise<void> } {
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    if (path === "/" || path === "/index.html") {
      return new Response(config.html, { headers: { "content-type": "text/html; charset=utf-8" } });
    }
    try {
      // Only files inside the config's folder or its assets/ (which may be a link, as in a
      // daemon job), links resolved: any other link leading out is not served.
      const file = await Deno.realPath(resolve(config.dir, "." + decodeURIComponent(path)));
      const roots = await Promise.all(
        [config.dir, join(config.dir, "assets")].map((d) => Deno.realPath(d).catch(() => null)),
      );
      if (!roots.some((r) => r && file.startsWith(r + sep))) {
        return new Response("forbidden", { status: 403 });
      }
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
  const began = performance.now();
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
  let video: { stop(): Promise<void> } | null = null;
  let proxy: EgressProxy | null = null;
  // A refused destination ends the run with its name, whatever the page did with the refusal.
  const blocked = (): BlockedDestination | undefined => proxy?.blocked[0] ?? session?.queue.blocked[0];
  const failIfBlocked = (file: string, step: number | null, action: string | null) => {
    const b = blocked();
    if (b) throw new StepFailure(b.message, file, step, action);
  };
  try {
    if (options.egress) {
      proxy = startEgressProxy(options.egress, options.egressListen);
      // <-loopback> removes Chromium's implicit bypass, so loopback goes through the proxy too.
      context = await browser.createBrowserContext({
        proxyServer: proxy.url,
        proxyBypassList: ["<-loopback>"],
      });
    } else {
      context = await browser.createBrowserContext();
    }
    // A job stopped at its deadline (or cancelled) loses its pages at once: whatever the page
    // was doing, every wait on it ends.
    const ctx = context;
    if (options.closeOnAbort) {
      options.signal?.addEventListener("abort", () => ctx.close().catch(() => {}), { once: true });
    }
    const page = await context.newPage();
    const opts = { stepTimeoutMs: 30_000, verbose: false, ...options };
    session = new Session(page, run, opts.stepTimeoutMs, options.outDir, progress);
    const s = session;
    s.queue.signal = options.signal;
    s.queue.onPageError = (m) => progress(`    [vox] ${m}`);
    s.queue.egress = options.egress;
    options.signal?.addEventListener("abort", () => s.queue.wake(), { once: true });
    // The meter worklet loads from a blob: URL, which a strict Content-Security-Policy would block.
    await page.setBypassCSP(true);
    // The binding's name is new for every run and the hooks take it off the window before the
    // page's scripts run, so the page cannot call it (see hooks.js).
    const binding = `vox${crypto.randomUUID().replaceAll("-", "")}`;
    await page.exposeFunction(binding, (json: string) => s.queue.pushFromPage(json));
    await page.evaluateOnNewDocument(
      await pageHooks({ verbose: !!options.verbose, binding, strictEgress: !!options.egress }),
    );
    if (options.verbose) page.on("console", (m) => progress(`    [page] ${m.text()}`));
    page.on("pageerror", (e) => progress(`    [page error] ${(e as Error).message ?? e}`));
    let url = app.url;
    if (!url) {
      html = serveHtml(app);
      url = html.url;
      const port = Number(new URL(url).port);
      proxy?.allow({ kind: "host", host: "127.0.0.1", port, path: null, text: url });
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
        `cannot open ${url}: ${blocked()?.message ?? (err as Error).message.split("\n")[0]}`,
        app.path,
        null,
        "open",
      );
    }
    if (options.recordVideo) {
      const path = join(options.outDir, `${safeName(app.name)}__${safeName(suite.name)}__run${run}.webm`);
      video = await page.screencast({ path: path as `${string}.webm` });
      record.video = path;
    }
    failIfBlocked(app.path, null, "open");
    const all: [LoadedConfig, Step, number][] = [
      ...app.steps.map((st, i): [LoadedConfig, Step, number] => [app, st, i + 1]),
      ...suite.steps.map((st, i): [LoadedConfig, Step, number] => [suite, st, i + 1]),
    ];
    let backgroundStarted = false;
    for (const [config, step, n] of all) {
      if (options.signal?.aborted) {
        throw new StepFailure("the job was cancelled", config.path, n, step.action);
      }
      if (config === suite && !backgroundStarted && options.audioBed) {
        backgroundStarted = true;
        await background(s, options.audioBed);
        s.backgroundActive = true;
      }
      if (config === suite && !backgroundStarted && suite.background) {
        backgroundStarted = true;
        const noise = await noisePayload(suite, suite.background);
        await background(s, { ...noise, levelDb: suite.background.level_db ?? -35 });
        s.backgroundActive = true;
      }
      if (config === suite && suite.silenceMs) await setHold(s, suite.silenceMs);
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
        const extra = await executeStep(s, config, step, n);
        const b = blocked();
        if (b) throw b;
        const elapsed = Math.round(performance.now() - began);
        const rec: StepRecord = {
          file: config.path,
          step: n,
          index,
          action: step.action,
          ok: true,
          elapsed_ms: elapsed,
        };
        // voice-agent-tester's `metrics.includes(name)`: a list holds names, a string is
        // searched (`metrics: elapsed_time` and `"elapsed_time,score"` both work).
        const wanted = step.metrics as string | string[] | undefined;
        if (wanted && wanted.length > 0) {
          rec.metrics = {};
          if (wanted.includes("elapsed_time")) rec.metrics.elapsed_time = elapsed;
          for (const [k, v] of Object.entries(extra ?? {})) if (wanted.includes(k)) rec.metrics[k] = v;
        }
        s.steps.push(rec);
        for (const turn of s.turns.slice(turnsBefore)) {
          options.onStep?.({ run, step: index, totalSteps: all.length, message: `${turn.kind} turn`, turn });
        }
      } catch (err) {
        const message = blocked()?.message ?? (err as Error).message.split("\n")[0];
        s.steps.push({
          file: config.path,
          step: n,
          index,
          action: step.action,
          ok: false,
          elapsed_ms: Math.round(performance.now() - began),
          error: message,
        });
        throw new StepFailure(message, config.path, n, step.action);
      }
    }
    failIfBlocked(app.path, null, null);
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
    record.duration_ms = Math.round(performance.now() - began);
    await video?.stop().catch((err) => progress(`    video could not be saved: ${(err as Error).message}`));
    if (session) {
      record.turns = session.turns;
      record.noise_checks = session.noiseChecks;
      record.steps = session.steps;
      try {
        const base = `${safeName(app.name)}__${safeName(suite.name)}__run${run}-${
          Date.now().toString(36)
        }.wav`;
        const saved = await saveRecording(session, join(options.outDir, base));
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
    await proxy?.close().catch(() => {});
  }
  return record;
}
