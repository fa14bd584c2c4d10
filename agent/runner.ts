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
import {
  BlockedDestination,
  type EgressPolicy,
  type EgressProxy,
  parseAllowList,
  startEgressProxy,
} from "./egress.ts";
import { jobDeadlineMs, type Step } from "./format.ts";
import { background, noisePayload } from "./injection.ts";
import { naturalness } from "./naturalness.ts";
import { type ImposedTurn, pageHooks } from "./page_hooks.ts";
import { type Relay, type ResolvedProfile, startTcpRelay } from "./network_relay.ts";
import { checkTurn, runHealth } from "./measurement_health.ts";
import { saveRecording } from "./recording.ts";
import { newRunRecord, type RunRecord, type StepRecord, type Turn } from "./report.ts";
import { Session } from "./session.ts";
import { executeStep } from "./steps.ts";
import { settlePause } from "./turn_taking.ts";
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
  /**
   * Each call's own deadline, ms (job.ts; default: what its steps can take at most). Past it
   * the call's pages close and it fails naming the deadline.
   */
  callDeadlineMs?: number;
  /**
   * Given, once a call's page is open, a function returning its record so far with its turns
   * judged: what withDeadline() reports for a call that does not unwind in time.
   */
  onLive?: (snapshot: () => RunRecord) => void;
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
  /**
   * The workflow's secrets (daemon: from the job offer; run mode: VOX_SECRET_<NAME> variables),
   * e.g. a Realtime endpoint's key. Never logged.
   */
  secrets?: Record<string, string>;
  /**
   * A network profile applied in user space (method relay, `network_resilience.ts`): the
   * context's proxy is reached through the profile's TCP delay line, and the page hooks force
   * WebRTC through `turn` (reached through its UDP delay line).
   */
  impair?: {
    profile: ResolvedProfile;
    turn: ImposedTurn | null;
    /** TURN over TCP (strict egress: no UDP), let through the run's proxy to exactly this address. */
    turnTcp?: { host: string; port: number };
  };
}

/** The policy of an open run's proxy when a profile needs one: every destination. */
const OPEN_POLICY: EgressPolicy = { allow: parseAllowList("0.0.0.0/0,::/0") };

/** The abort reason of a call stopped at its own deadline (job.ts): its pages close at once. */
export class CallDeadline extends Error {
  constructor(readonly ms: number) {
    super(`the call ran past its deadline of ${Math.round(ms / 1000)} s and was stopped`);
  }
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

/** The final health check of a call's turns (measurement_health.ts) and the run's summary. */
function judgeTurns(session: Session, record: RunRecord, progress: (line: string) => void) {
  for (const turn of session.turns) {
    const ctx = session.turnCtx.get(turn) ?? session.measureCtx ?? session.queue.primary;
    if (ctx != null && checkTurn(turn, session.queue.health, ctx, { final: true })) {
      progress(`    ${turn.kind} turn ${turn.note}`);
    }
  }
  record.health = runHealth(session.turns);
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
  const record = newRunRecord(run, app.path, suite.path, repetition);
  let context: BrowserContext | null = null;
  let html: ReturnType<typeof serveHtml> | null = null;
  let session: Session | null = null;
  let video: { stop(): Promise<void> } | null = null;
  let proxy: EgressProxy | null = null;
  let impairRelay: Relay | null = null;
  // A refused destination ends the run with its name, whatever the page did with the refusal.
  const blocked = (): BlockedDestination | undefined => proxy?.blocked[0] ?? session?.queue.blocked[0];
  const failIfBlocked = (file: string, step: number | null, action: string | null) => {
    const b = blocked();
    if (b) throw new StepFailure(b.message, file, step, action);
  };
  try {
    if (options.egress || options.impair) {
      proxy = startEgressProxy(options.egress ?? OPEN_POLICY, options.egressListen);
      let proxyUrl = proxy.url;
      if (options.impair) {
        const t = options.impair.turnTcp;
        if (t) {
          proxy.allow({ kind: "host", host: t.host, port: t.port, path: null, text: `${t.host}:${t.port}` });
        }
        // Everything the context sends through its proxy crosses the profile's TCP delay line first.
        const u = new URL(proxy.url);
        impairRelay = startTcpRelay({ hostname: u.hostname, port: Number(u.port) }, options.impair.profile);
        proxyUrl = `http://127.0.0.1:${impairRelay.port}`;
      }
      // <-loopback> removes Chromium's implicit bypass, so loopback goes through the proxy too.
      context = await browser.createBrowserContext({
        proxyServer: proxyUrl,
        proxyBypassList: ["<-loopback>"],
      });
    } else {
      context = await browser.createBrowserContext();
    }
    // A job stopped at its deadline (or cancelled) loses its pages at once: whatever the page
    // was doing, every wait on it ends.
    const ctx = context;
    options.signal?.addEventListener("abort", () => {
      if (options.closeOnAbort || options.signal?.reason instanceof CallDeadline) ctx.close().catch(() => {});
    }, { once: true });
    const page = await context.newPage();
    const opts = { stepTimeoutMs: 30_000, verbose: false, ...options };
    session = new Session(page, run, opts.stepTimeoutMs, options.outDir, progress);
    // A call given up at its deadline (withDeadline) still reports what it measured, judged.
    const live = session;
    options.onLive?.(() => {
      record.turns = live.turns;
      record.noise_checks = live.noiseChecks;
      record.steps = live.steps;
      judgeTurns(live, record, progress);
      return record;
    });
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
      await pageHooks({
        verbose: !!options.verbose,
        binding,
        strictEgress: !!options.egress,
        turn: options.impair?.turn ?? null,
      }),
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
        const extra = await executeStep(s, config, step, n, config.steps.slice(n));
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
          // The turn's frames count on the context it was measured in (rebased to where the reply was heard).
          const ctx = s.measureCtx ?? s.queue.primary;
          if (ctx != null) {
            s.turnCtx.set(turn, ctx);
            checkTurn(turn, s.queue.health, ctx, { final: false });
          }
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
    // A pause at the end of the scenario is over once its time has passed.
    await settlePause(s);
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
      // Before the recording's pulls, which on a busy host are the slowest part of the end.
      if (options.collect) {
        try {
          record.collected = await options.collect(session.page);
        } catch (err) {
          record.collected = { error: (err as Error).message };
        }
      }
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
      // Judged again now that the samples after the last turn are in (the recording's tail
      // waited for them): a turn may have been checked before its window was covered.
      judgeTurns(session, record, progress);
    }
    await context?.close().catch(() => {});
    await html?.close().catch(() => {});
    await impairRelay?.close().catch(() => {});
    await proxy?.close().catch(() => {});
  }
  return record;
}

/**
 * After its deadline a call gets this long to unwind (its pages are closed) before it is given
 * up: on a host at a load of 15 a closed page's pending calls took ~25 s to fail.
 */
const UNWIND_MS = 30_000;

/**
 * Runs one call under its own deadline (`options.callDeadlineMs`, by default what its steps can
 * take at most, as `jobDeadlineMs()` counts a job of one repetition): past it the call's pages
 * close, it fails naming the deadline, and what it measured before stays. A call that does not
 * unwind within UNWIND_MS after that is given up, so a run on a host too busy to finish its
 * calls still ends (issue 19: at 16 calls on 2 cores a run never did).
 */
export async function withDeadline(
  p: { app: LoadedConfig; suite: LoadedConfig; run: number; repetition: number },
  options: RunOptions,
  call: (signal: AbortSignal, onLive: (snapshot: () => RunRecord) => void) => Promise<RunRecord>,
): Promise<RunRecord> {
  const ms = options.callDeadlineMs ??
    jobDeadlineMs(p.app, { steps: p.suite.steps }, 1, Infinity, options.stepTimeoutMs ?? 30_000);
  const abort = new AbortController();
  const outer = options.signal;
  const follow = () => abort.abort(outer?.reason);
  if (outer?.aborted) follow();
  outer?.addEventListener("abort", follow, { once: true });
  let timer: ReturnType<typeof setTimeout> | undefined;
  let unwind: ReturnType<typeof setTimeout> | undefined;
  let snapshot: (() => RunRecord) | null = null;
  const running = call(abort.signal, (f) => (snapshot = f));
  const late = new Promise<RunRecord | null>((resolve) => {
    timer = setTimeout(() => {
      abort.abort(new CallDeadline(ms));
      unwind = setTimeout(() => resolve(null), UNWIND_MS);
      running.then(resolve, () => resolve(null));
    }, ms);
  });
  let rec: RunRecord | null;
  try {
    rec = await Promise.race([running, late]);
  } finally {
    clearTimeout(timer);
    clearTimeout(unwind);
    outer?.removeEventListener("abort", follow);
  }
  if (!(abort.signal.reason instanceof CallDeadline)) return rec!;
  rec ??= (snapshot as (() => RunRecord) | null)?.() ??
    newRunRecord(p.run, p.app.path, p.suite.path, p.repetition);
  rec.ok = false;
  rec.error = {
    message: (abort.signal.reason as CallDeadline).message,
    file: rec.error?.file ?? p.app.path,
    step: rec.error?.step ?? null,
    action: rec.error?.action ?? null,
  };
  return rec;
}
