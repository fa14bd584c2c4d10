/**
 * The runner: one application × scenario in a real browser, measured on the page's audio clock.
 * `runJob()` is what run mode and the daemon both call: configs in, report and recordings out.
 */
import type { Browser, BrowserContext, Frame, Page } from "puppeteer-core";
import { join, resolve } from "node:path";
import { ConfigError, type LoadedConfig, type NoiseSpec, resolveAudio, type Step } from "./config.ts";
import { encodeWav, fromBase64, synthesize, toBase64 } from "./audio.ts";
import { launchChromium } from "./browser.ts";
import { summarize, type Summary } from "./stats.ts";
import { naturalness, NATURALNESS_METHOD } from "./naturalness.ts";
import { impairedNetwork, probeNetem } from "./network.ts";
import type { NetworkProfile } from "./config.ts";

/** Method versions recorded with every result. */
export const METHODS = {
  response_latency: "vox-audioclock-response/1",
  interrupt_latency: "vox-audioclock-interrupt/1",
  noise_reduction: "vox-noise/1",
  network_resilience: "vox-netem/1",
  naturalness: NATURALNESS_METHOD,
} as const;

/** Voice detection parameters shared by the meter and the offline segmentation of utterances. */
export const DETECTOR = {
  theta: 0.01, // -40 dBFS
  // A voiced onset needs a quarter of the next 30 ms above theta: speech passes at its first
  // voiced sample, while codec clicks (a WebRTC loopback emits ~9 ms ones) do not.
  confirmMs: 30,
  minFraction: 0.25,
  holdMs: 400,
};

/** One measured turn; the first three keys are the run-mode contract. */
export interface Turn {
  kind: "response" | "interrupt";
  latency_ms: number | null;
  ok: boolean;
  run: number;
  file: string;
  step: number;
  noisy?: boolean;
  note?: string;
  caller_voiced_start_frame?: number;
  caller_voiced_end_frame?: number;
  caller_file_end_frame?: number;
  agent_frame?: number;
  sample_rate?: number;
}

/** A noise-only segment and whether the agent answered it. */
export interface NoiseCheck {
  run: number;
  file: string;
  step: number;
  triggered: boolean;
  stopped_agent?: boolean;
}

/** What happened to one step. */
export interface StepRecord {
  file: string;
  step: number;
  action: string;
  ok: boolean;
  elapsed_ms: number;
  metrics?: Record<string, number>;
  error?: string;
}

/** One repetition of an application × scenario. */
export interface RunRecord {
  run: number;
  app: string;
  suite: string;
  repetition: number;
  ok: boolean;
  error: RunErrorInfo | null;
  steps: StepRecord[];
  turns: Turn[];
  noise_checks: NoiseCheck[];
  recording: string | null;
  sample_rate: number | null;
  /** Audio-clock frame of the recording's first sample (turn frames minus this index the WAV). */
  recording_first_frame?: number;
  naturalness: number | null;
  collected?: unknown;
}

/** Where a run failed. */
export interface RunErrorInfo {
  message: string;
  file: string;
  step: number | null;
  action: string | null;
}

/** The JSON report (SPEC §7 run-mode contract at the top level). */
export interface Report {
  metrics: {
    response_latency: Summary;
    interrupt_latency: Summary;
    network_resilience: number | null;
    noise_reduction: number | null;
    naturalness: number | null;
  };
  turns: Turn[];
  methods: Record<string, string>;
  notes: Record<string, string>;
  ok: boolean;
  errors: RunErrorInfo[];
  noise_checks: NoiseCheck[];
  runs: Omit<RunRecord, "turns" | "noise_checks">[];
  /** Per network profile: its score and the latency under it (present when profiles ran). */
  network?: NetworkResult[];
  started_at: string;
  finished_at: string;
  version: 1;
}

/** One network profile's outcome. */
export interface NetworkResult {
  profile: string;
  score: number | null;
  response_latency: Summary;
  turns_ok: number;
  turns: number;
  error?: string;
}

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

interface VoxEvent {
  type: string;
  ctx?: number;
  frame?: number;
  id?: number;
  voicedStart?: number;
  voicedEnd?: number;
  startFrame?: number;
  endFrame?: number;
  agentVoicedAtStart?: boolean;
  sampleRate?: number;
  voiced?: boolean;
  message?: string;
  kind?: string;
  role?: string;
  consumed?: boolean;
}

// Events from the page, in arrival order; consumers take them once, nothing is dropped.
class EventQueue {
  events: VoxEvent[] = [];
  rates = new Map<number, number>();
  ticks = new Map<number, number>();
  primary: number | null = null;
  signal?: AbortSignal;
  onPageError?: (message: string) => void;
  private waiters: (() => void)[] = [];

  /** Wakes every waiter (new events, or cancellation). */
  wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  push(batch: VoxEvent[]) {
    for (const e of batch) {
      if (e.type === "tick") {
        this.ticks.set(e.ctx!, e.frame!);
      } else {
        if (e.type === "meter") this.rates.set(e.ctx!, e.sampleRate!);
        if (e.type === "primary") this.primary = e.ctx!;
        if (e.type === "error") this.onPageError?.(e.message ?? "unknown error");
        this.events.push(e);
      }
    }
    this.wake();
  }

  find(pred: (e: VoxEvent) => boolean): VoxEvent | undefined {
    return this.events.find((e) => !e.consumed && pred(e));
  }

  /** Waits until `check` returns a value, re-checking on every event batch. */
  async until<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      if (this.signal?.aborted) throw new Error(`cancelled while waiting for ${what}`);
      const v = check();
      if (v !== undefined) return v;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 250));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }
}

let hooksSource: Promise<string> | null = null;
async function pageHooks(verbose: boolean): Promise<string> {
  hooksSource ??= (async () => {
    const [hooks, worklet] = await Promise.all([
      Deno.readTextFile(new URL("./page/hooks.js", import.meta.url)),
      Deno.readTextFile(new URL("./page/meter_worklet.js", import.meta.url)),
    ]);
    return hooks.replace("__VOX_WORKLET__", JSON.stringify(worklet));
  })();
  return (await hooksSource).replace("__VOX_CONFIG__", JSON.stringify({ detector: DETECTOR, verbose }));
}

interface Frames {
  voicedStart: number;
  voicedEnd: number;
  startFrame: number;
  endFrame: number;
}

interface Utterance extends Frames {
  ctx: number;
  id: number;
  others: Map<number, Frames>;
  agentVoicedAtStart: boolean;
  responded: boolean;
  noisy: boolean;
  file: string;
  step: number;
}

// State of one repetition while its steps run.
class Session {
  queue = new EventQueue();
  turns: Turn[] = [];
  noiseChecks: NoiseCheck[] = [];
  steps: StepRecord[] = [];
  last: Utterance | null = null;
  lastVoiceStart: VoxEvent | null = null;
  nextId = 1;
  backgroundActive = false;
  measureCtx: number | null = null;

  constructor(
    readonly page: Page,
    readonly run: number,
    readonly opts: Required<Pick<RunOptions, "stepTimeoutMs" | "verbose">> & RunOptions,
    readonly outDir: string,
    readonly progress: (line: string) => void,
  ) {}

  rate(ctx: number): number {
    return this.queue.rates.get(ctx) ?? 48000;
  }

  ms(ctx: number, frames: number): number {
    return Math.round((frames / this.rate(ctx)) * 1000 * 100) / 100;
  }

  async audioPayload(config: LoadedConfig, step: Step): Promise<{ b64: string }> {
    if (typeof step.text === "string") {
      return { b64: toBase64(await synthesize(step.text, (step.voice as string) ?? "en-us")) };
    }
    const path = await resolveAudio(config, step.file as string);
    if (!path) throw new Error(`audio file not found: ${step.file}`);
    return { b64: toBase64(await Deno.readFile(path)) };
  }

  async noisePayload(config: LoadedConfig, spec: NoiseSpec | undefined) {
    if (!spec) return undefined;
    const out: Record<string, unknown> = {
      type: spec.type,
      snrDb: spec.snr_db,
      levelDb: spec.level_db,
      seed: spec.seed,
    };
    if (spec.file) {
      const path = await resolveAudio(config, spec.file);
      if (!path) throw new Error(`noise file not found: ${spec.file}`);
      out.b64 = toBase64(await Deno.readFile(path));
    }
    return out;
  }

  /** Feeds one utterance into the microphone and waits until its last sample was delivered. */
  async inject(
    payload: Record<string, unknown>,
    file: string,
    stepNo: number,
    noisy: boolean,
  ): Promise<Utterance> {
    const id = this.nextId++;
    let res: { primary: number | null; ctxs: number[] };
    try {
      const frames = await this.micFrames();
      const results = await Promise.all(frames.map((f) =>
        f.evaluate(
          // deno-lint-ignore no-explicit-any
          (u) => (globalThis as any).__vox.speak(u) as Promise<{ primary: number | null; ctxs: number[] }>,
          { ...payload, id },
        )
      ));
      results.forEach((r, i) => r.ctxs.forEach((c) => this.frameOf.set(c, frames[i])));
      res = { primary: results[0].primary, ctxs: results.flatMap((r) => r.ctxs) };
    } catch (err) {
      const msg = (err as Error).message;
      if (/Unable to decode|decodeAudioData|EncodingError/i.test(msg)) {
        throw new Error(`audio could not be decoded (corrupt or unsupported file): ${msg.split("\n")[0]}`);
      }
      throw err;
    }
    const ctx = res.primary ?? this.queue.primary ?? 0;
    const ev = await this.queue.until(
      () => this.queue.find((e) => e.type === "utt_end" && e.id === id && e.ctx === ctx),
      this.opts.stepTimeoutMs + 60_000,
      "the utterance to be played into the microphone",
    );
    // Every context of the page played the same utterance on its own clock; the agent's voice
    // is paired with the copy in the context where the voice was observed.
    const others = new Map<number, Frames>();
    const framesOf = (e: VoxEvent): Frames => ({
      voicedStart: e.voicedStart!,
      voicedEnd: e.voicedEnd!,
      startFrame: e.startFrame!,
      endFrame: e.endFrame!,
    });
    others.set(ctx, framesOf(ev));
    await this.queue.until(
      () => {
        for (const c of res.ctxs) {
          if (others.has(c)) continue;
          const e = this.queue.find((e) => e.type === "utt_end" && e.id === id && e.ctx === c);
          if (e) others.set(c, framesOf(e));
        }
        return others.size >= res.ctxs.length ? true : undefined;
      },
      2000,
      "every audio context to play the utterance",
    ).catch(() => {});
    for (const e of this.queue.events) {
      if ((e.type === "utt_end" || e.type === "utt_start") && e.id === id) e.consumed = true;
    }
    this.measureCtx = ctx;
    // A meter has seen every frame of the utterance once its clock passed the end.
    await this.queue.until(
      () => [...others].every(([c, f]) => (this.queue.ticks.get(c) ?? 0) >= f.endFrame) ? true : undefined,
      this.opts.stepTimeoutMs,
      "the meters to pass the end of the utterance",
    ).catch(() => {});
    const u: Utterance = {
      ctx,
      id,
      ...framesOf(ev),
      others,
      agentVoicedAtStart: false,
      responded: false,
      noisy,
      file,
      step: stepNo,
    };
    for (const [c, f] of others) {
      if (f.voicedStart >= 0 && this.agentVoicedAt(c, f.voicedStart)) {
        u.agentVoicedAtStart = true;
        this.rebase(u, c);
        break;
      }
    }
    return u;
  }

  /** Switches an utterance's frames to its copy in context `ctx`. */
  rebase(u: Utterance, ctx: number) {
    const f = u.others.get(ctx);
    if (!f || u.ctx === ctx) return;
    Object.assign(u, f, { ctx });
    this.measureCtx = ctx;
  }

  /** Whether the agent's voice was on at `frame` (inside a segment or its hold), from the events. */
  agentVoicedAt(ctx: number, frame: number): boolean {
    let start: VoxEvent | undefined;
    for (const e of this.queue.events) {
      if (e.type === "voice_start" && e.ctx === ctx && e.frame! <= frame) start = e;
    }
    if (!start) return false;
    const end = this.queue.events.find((e) =>
      e.type === "voice_end" && e.ctx === ctx && e.frame! >= start!.frame!
    );
    return !end || frame <= end.frame! + Math.round((this.holdMs / 1000) * this.rate(ctx));
  }

  holdMs = DETECTOR.holdMs;

  /** Whether the agent's latest voiced segment has not ended yet, as far as events tell. */
  agentTalking(ctx: number): boolean {
    let start: VoxEvent | undefined;
    for (const e of this.queue.events) if (e.type === "voice_start" && e.ctx === ctx) start = e;
    if (!start) return false;
    return !this.queue.events.some((e) =>
      e.type === "voice_end" && e.ctx === ctx && e.frame! >= start!.frame!
    );
  }

  turnBase(u: Utterance) {
    return {
      run: this.run,
      file: u.file,
      step: u.step,
      caller_voiced_start_frame: u.voicedStart,
      caller_voiced_end_frame: u.voicedEnd,
      caller_file_end_frame: u.endFrame,
      sample_rate: this.rate(u.ctx),
      ...(u.noisy ? { noisy: true } : {}),
    };
  }

  /** After a barge-in: the agent's voice must stop; latency runs from the caller's first voiced sample. */
  async interruptTurn(u: Utterance, stopTimeoutMs: number): Promise<Turn> {
    const limit = u.voicedStart + Math.round((stopTimeoutMs / 1000) * this.rate(u.ctx));
    // The agent's segment that was on when the barge-in began; it may have been in a pause
    // that turns out to be where it stopped, which gives a latency at or below zero.
    let segment = 0;
    for (const e of this.queue.events) {
      if (e.type === "voice_start" && e.ctx === u.ctx && e.frame! <= u.voicedStart) segment = e.frame!;
    }
    const end = await this.queue.until(
      () => {
        const e = this.queue.find((e) => e.type === "voice_end" && e.ctx === u.ctx && e.frame! >= segment);
        if (e) return e;
        if ((this.queue.ticks.get(u.ctx) ?? 0) > limit + this.rate(u.ctx)) return null;
        return undefined;
      },
      stopTimeoutMs + this.opts.stepTimeoutMs,
      "the agent to stop talking after the barge-in",
    );
    if (end && end.frame! <= limit) {
      end.consumed = true;
      return {
        kind: "interrupt",
        latency_ms: this.ms(u.ctx, end.frame! - u.voicedStart),
        ok: true,
        agent_frame: end.frame,
        ...this.turnBase(u),
      };
    }
    return {
      kind: "interrupt",
      latency_ms: null,
      ok: false,
      note: `the agent did not stop within ${stopTimeoutMs} ms of the barge-in`,
      ...this.turnBase(u),
    };
  }

  async speak(config: LoadedConfig, step: Step, n: number, stopTimeoutMs = 2000): Promise<Utterance> {
    const payload: Record<string, unknown> = { ...(await this.audioPayload(config, step)) };
    if (typeof step.gain_db === "number") payload.gainDb = step.gain_db;
    const noise = await this.noisePayload(config, step.noise as NoiseSpec | undefined);
    if (noise) payload.noise = noise;
    const u = await this.inject(payload, config.path, n, !!noise || this.backgroundActive);
    if (u.voicedStart < 0) throw new Error("the utterance holds no voiced sample above -40 dBFS");
    this.last = u;
    if (u.agentVoicedAtStart) {
      const turn = await this.interruptTurn(u, stopTimeoutMs);
      this.turns.push(turn);
      this.progress(
        `    barge-in: ${turn.ok ? `agent stopped after ${turn.latency_ms} ms` : turn.note}`,
      );
    }
    return u;
  }

  async waitForVoice(timeoutMs: number): Promise<void> {
    const u = this.last && !this.last.responded ? this.last : null;
    if (!u) {
      const e = await this.queue.until(
        () =>
          this.queue.find((e) =>
            e.type === "voice_start" && (this.measureCtx == null || e.ctx === this.measureCtx)
          ),
        timeoutMs,
        "the agent's voice",
      );
      e.consumed = true;
      this.lastVoiceStart = e;
      this.measureCtx ??= e.ctx!;
      return;
    }
    u.responded = true;
    let e: VoxEvent;
    try {
      e = await this.queue.until(
        () =>
          this.queue.find((e) =>
            e.type === "voice_start" && u.others.has(e.ctx!) && e.frame! >= u.others.get(e.ctx!)!.voicedStart
          ),
        timeoutMs,
        "the agent's reply",
      );
    } catch (err) {
      // A cancelled job measured nothing about the agent; only a real timeout is a failed turn.
      if (this.queue.signal?.aborted) throw err;
      this.turns.push({
        kind: "response",
        latency_ms: null,
        ok: false,
        note: "no reply",
        ...this.turnBase(u),
      });
      throw err;
    }
    this.rebase(u, e.ctx!);
    // Agent speech that began before this utterance and was never waited for is stale.
    for (const s of this.queue.events) {
      if (s.type === "voice_start" && s.ctx === u.ctx && !s.consumed && s.frame! < e.frame!) {
        s.consumed = true;
      }
    }
    e.consumed = true;
    this.lastVoiceStart = e;
    const latency = this.ms(u.ctx, e.frame! - u.voicedEnd);
    const early = latency < 0;
    this.turns.push({
      kind: "response",
      latency_ms: latency,
      ok: !early,
      agent_frame: e.frame,
      ...(early ? { note: "the agent started talking before the caller had finished" } : {}),
      ...this.turnBase(u),
    });
    this.progress(`    response latency ${latency} ms`);
  }

  async waitForSilence(timeoutMs: number): Promise<VoxEvent> {
    const start = this.lastVoiceStart;
    const ctx = start?.ctx ?? this.measureCtx;
    const e = await this.queue.until(
      () =>
        this.queue.find((e) =>
          e.type === "voice_end" && (ctx == null || e.ctx === ctx) && (!start || e.frame! >= start.frame!)
        ),
      timeoutMs,
      "the agent to fall silent",
    );
    e.consumed = true;
    return e;
  }

  async bargeIn(config: LoadedConfig, step: Step, n: number, timeoutMs: number) {
    const ctx = this.measureCtx;
    const talking = ctx != null && this.agentTalking(ctx);
    if (!talking) {
      const e = await this.queue.until(
        () => this.queue.find((e) => e.type === "voice_start" && (ctx == null || e.ctx === ctx)),
        timeoutMs,
        "the agent to talk before the barge-in",
      );
      e.consumed = true;
      this.lastVoiceStart = e;
    }
    const after = typeof step.after_ms === "number" ? step.after_ms : 300;
    if (after > 0) await new Promise((r) => setTimeout(r, after));
    const stopTimeout = typeof step.stop_timeout_ms === "number" ? step.stop_timeout_ms : 2000;
    const u = await this.speak(config, step, n, stopTimeout);
    if (!u.agentVoicedAtStart) {
      this.turns.push({
        kind: "interrupt",
        latency_ms: null,
        ok: false,
        note: "the agent had already stopped when the barge-in speech began",
        ...this.turnBase(u),
      });
    }
  }

  async noiseOnly(config: LoadedConfig, step: Step, n: number) {
    const spec: NoiseSpec = { file: step.file as string | undefined, type: step.type as NoiseSpec["type"] };
    const noise = await this.noisePayload(config, spec);
    const payload = {
      durationMs: step.duration_ms as number,
      noise: { ...noise, levelDb: typeof step.level_db === "number" ? step.level_db : -30 },
    };
    const talkingBefore = [...this.queue.rates.keys()].filter((c) => this.agentTalking(c));
    const u = await this.inject(payload, config.path, n, true);
    const grace = typeof step.grace_ms === "number" ? step.grace_ms : 1500;
    const graceEnd = (c: number, f: Frames) => f.endFrame + Math.round((grace / 1000) * this.rate(c));
    await this.queue.until(
      () =>
        [...u.others].every(([c, f]) => (this.queue.ticks.get(c) ?? 0) >= graceEnd(c, f)) ? true : undefined,
      grace + this.opts.stepTimeoutMs,
      "the grace period after the noise",
    );
    const within = (e: VoxEvent, to: (c: number, f: Frames) => number) => {
      const f = u.others.get(e.ctx!);
      return !!f && e.frame! >= f.startFrame && e.frame! <= to(e.ctx!, f);
    };
    const replies = this.queue.events.filter((e) =>
      e.type === "voice_start" && !e.consumed && within(e, graceEnd)
    );
    for (const r of replies) r.consumed = true;
    const check: NoiseCheck = { run: this.run, file: config.path, step: n, triggered: replies.length > 0 };
    if (talkingBefore.length > 0) {
      check.stopped_agent = this.queue.events.some((e) =>
        e.type === "voice_end" && talkingBefore.includes(e.ctx!) && within(e, (_c, f) => f.endFrame)
      );
    }
    this.noiseChecks.push(check);
    this.progress(`    noise-only segment: ${check.triggered ? "the agent replied to noise" : "no reply"}`);
  }

  async execute(config: LoadedConfig, step: Step, n: number): Promise<Record<string, number> | undefined> {
    const page = this.page;
    const timeout = typeof step.timeout === "number" ? step.timeout : this.opts.stepTimeoutMs;
    const selector = step.selector as string;
    switch (step.action) {
      case "click":
        await page.waitForSelector(selector, { timeout });
        await page.click(selector);
        return;
      case "click_with_retry": {
        const retries = typeof step.retries === "number" ? step.retries : 3;
        const delay = typeof step.delay === "number" ? step.delay : 1000;
        let last: unknown;
        for (let i = 0; i < retries; i++) {
          try {
            await page.waitForSelector(selector, { timeout: Math.min(timeout, 5000) });
            await page.click(selector);
            return;
          } catch (err) {
            last = err;
            await new Promise((r) => setTimeout(r, delay));
          }
        }
        throw last;
      }
      case "wait":
      case "wait_for_element":
        await page.waitForSelector(selector, { timeout });
        return;
      case "type":
        await page.waitForSelector(selector, { timeout });
        await page.focus(selector);
        await page.type(selector, step.text as string);
        return;
      case "fill":
        await page.waitForSelector(selector, { timeout });
        await page.$eval(selector, (el, value) => {
          const input = el as HTMLInputElement;
          if (input.tagName !== "INPUT" && input.tagName !== "TEXTAREA") {
            throw new Error(`fill needs an input or textarea, found ${input.tagName}`);
          }
          input.value = value;
          input.dispatchEvent(new Event("input", { bubbles: true }));
          input.dispatchEvent(new Event("change", { bubbles: true }));
        }, String(step.text));
        return;
      case "select":
        await this.select(step, timeout);
        return;
      case "sleep":
        await new Promise((r) => setTimeout(r, step.time as number));
        return;
      case "screenshot": {
        const dir = typeof step.outputDir === "string" ? resolve(config.dir, step.outputDir) : this.outDir;
        await Deno.mkdir(dir, { recursive: true });
        const name = typeof step.filename === "string"
          ? step.filename
          : `screenshot_run${this.run}_step${n}.png`;
        await page.screenshot({ path: join(dir, name) as `${string}.png` });
        return;
      }
      case "speak":
        await this.speak(config, step, n);
        return;
      case "barge_in":
        await this.bargeIn(config, step, n, timeout);
        return;
      case "noise":
        await this.noiseOnly(config, step, n);
        return;
      case "wait_for_voice":
        await this.waitForVoice(timeout);
        return;
      case "wait_for_silence":
        if (typeof step.silence_ms === "number") await this.setHold(step.silence_ms);
        await this.waitForSilence(timeout);
        if (typeof step.silence_ms === "number") await this.setHold(DETECTOR.holdMs);
        return;
      case "listen": {
        // Vox does not send audio to an external transcription service; it measures the
        // reply and keeps it in the recording. The step still waits for a whole reply.
        await this.waitForVoice(timeout);
        const end = await this.waitForSilence(timeout);
        const start = this.lastVoiceStart!;
        return { reply_ms: this.ms(end.ctx!, end.frame! - start.frame!) };
      }
    }
  }

  /** Frame of the page (main document or iframe) that owns each audio context. */
  frameOf = new Map<number, Frame>();

  /** Frames whose document has Vox hooks, main frame first. */
  async voxFrames(): Promise<Frame[]> {
    const out: Frame[] = [];
    for (const f of this.page.frames()) {
      // deno-lint-ignore no-explicit-any
      if (await f.evaluate(() => !!(globalThis as any).__vox).catch(() => false)) out.push(f);
    }
    return out;
  }

  /** Frames that opened the microphone (a voice widget may live in an iframe); waits for one. */
  async micFrames(): Promise<Frame[]> {
    const deadline = Date.now() + this.opts.stepTimeoutMs;
    while (true) {
      const frames: Frame[] = [];
      for (const f of await this.voxFrames()) {
        // deno-lint-ignore no-explicit-any
        if (await f.evaluate(() => (globalThis as any).__vox.hasMicrophone()).catch(() => false)) {
          frames.push(f);
        }
      }
      if (frames.length > 0) return frames;
      if (this.queue.signal?.aborted) {
        throw new Error("cancelled while waiting for the page to open the microphone");
      }
      if (Date.now() > deadline) {
        throw new Error(`the page never opened the microphone (waited ${this.opts.stepTimeoutMs} ms)`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async setHold(ms: number) {
    this.holdMs = ms;
    for (const f of await this.voxFrames()) {
      // deno-lint-ignore no-explicit-any
      await f.evaluate((h) => (globalThis as any).__vox.setHold(h), ms);
    }
  }

  async background(spec: Record<string, unknown>) {
    for (const f of await this.micFrames()) {
      // deno-lint-ignore no-explicit-any
      await f.evaluate((b) => (globalThis as any).__vox.background(b), spec);
    }
  }

  async select(step: Step, timeout: number) {
    const page = this.page;
    const selector = step.selector as string;
    await page.waitForSelector(selector, { timeout });
    const info = await page.$eval(selector, (el) => ({
      tag: el.tagName,
      type: (el as HTMLInputElement).type ?? null,
      multiple: (el as HTMLSelectElement).multiple ?? false,
    }));
    if (info.tag === "SELECT") {
      if (Array.isArray(step.values)) await page.select(selector, ...(step.values as string[]));
      else if (typeof step.value === "string") await page.select(selector, step.value);
      else if (typeof step.text === "string") {
        await page.$eval(selector, (el, text) => {
          const sel = el as HTMLSelectElement;
          const opt = [...sel.options].find((o) => o.textContent?.trim() === text.trim());
          if (!opt) throw new Error(`no option with text "${text}"`);
          sel.value = opt.value;
          sel.dispatchEvent(new Event("change", { bubbles: true }));
          sel.dispatchEvent(new Event("input", { bubbles: true }));
        }, step.text);
      } else throw new Error("select needs value, values or text");
    } else if (info.tag === "INPUT" && info.type === "checkbox") {
      const checked = await page.$eval(selector, (el) => (el as HTMLInputElement).checked);
      const target = typeof step.checked === "boolean" ? step.checked : !checked;
      if (checked !== target) await page.click(selector);
    } else if (info.tag === "INPUT" && info.type === "radio") {
      await page.click(selector);
    } else if (typeof step.text === "string") {
      await page.evaluate(
        (sel, text) => {
          const parent = document.querySelector(sel);
          const opts = parent ? [...parent.querySelectorAll("[role=option], li, a, .option, div")] : [];
          const opt = opts.find((o) => o.textContent?.trim() === text.trim()) as HTMLElement | undefined;
          if (!opt) throw new Error(`no option with text "${text}" in ${sel}`);
          opt.click();
        },
        selector,
        step.text,
      );
    } else await page.click(selector);
  }

  /** Pulls the primary meter's recording (caller left, agent right) and writes a WAV. */
  async saveRecording(
    path: string,
  ): Promise<{ path: string; sampleRate: number; firstFrame: number } | null> {
    const ctx = this.measureCtx ?? this.queue.primary;
    if (ctx == null) return null;
    const parts: Uint8Array[] = [];
    let sampleRate = 0;
    let firstFrame = -1;
    let frame = this.frameOf.get(ctx);
    if (!frame) {
      for (const f of await this.voxFrames()) {
        // deno-lint-ignore no-explicit-any
        if (await f.evaluate((c) => (globalThis as any).__vox.recording(c, 0, 0) != null, ctx)) frame = f;
      }
    }
    if (!frame) return null;
    for (let from = 0;;) {
      const r = await frame.evaluate(
        // deno-lint-ignore no-explicit-any
        (c, f) => (globalThis as any).__vox?.recording(c, f, 50) ?? null,
        ctx,
        from,
      ) as { sampleRate: number; firstFrame: number; chunks: number; total: number; b64: string } | null;
      if (!r || r.chunks === 0) break;
      sampleRate = r.sampleRate;
      if (firstFrame < 0) firstFrame = r.firstFrame;
      parts.push(fromBase64(r.b64));
      from += r.chunks;
      if (from >= r.total) break;
    }
    if (parts.length === 0) return null;
    const pcm = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
    let o = 0;
    for (const p of parts) {
      pcm.set(p, o);
      o += p.length;
    }
    await Deno.writeFile(path, encodeWav(pcm, sampleRate, 2));
    return { path, sampleRate, firstFrame };
  }
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

/** Aggregates runs into the report. */
export function buildReport(runs: RunRecord[], startedAt: Date, extraErrors: RunErrorInfo[] = []): Report {
  const turns = runs.flatMap((r) => r.turns);
  const noiseChecks = runs.flatMap((r) => r.noise_checks);
  const latencies = (kind: Turn["kind"]) =>
    turns.filter((t) => t.kind === kind && t.ok && t.latency_ms != null).map((t) => t.latency_ms!);
  const notes: Record<string, string> = {};
  const nat = runs.map((r) => r.naturalness).filter((x): x is number => x != null);
  const naturalnessScore = nat.length
    ? Math.round((nat.reduce((a, b) => a + b, 0) / nat.length) * 10) / 10
    : null;
  if (naturalnessScore == null) notes.naturalness = "no agent speech was recorded";
  const noise = noiseReduction(turns, noiseChecks);
  if (noise == null) notes.noise_reduction = "the scenario has no noisy turns and no noise-only segments";
  notes.network_resilience = "the scenario defines no network profiles";
  const errors = [...extraErrors, ...runs.map((r) => r.error).filter((e): e is RunErrorInfo => e != null)];
  return {
    metrics: {
      response_latency: summarize(latencies("response")),
      interrupt_latency: summarize(latencies("interrupt")),
      network_resilience: null,
      noise_reduction: noise,
      naturalness: naturalnessScore,
    },
    turns,
    methods: { ...METHODS },
    notes,
    ok: errors.length === 0 && runs.length > 0,
    errors,
    noise_checks: noiseChecks,
    runs: runs.map(({ turns: _t, noise_checks: _n, ...rest }) => rest),
    started_at: startedAt.toISOString(),
    finished_at: new Date().toISOString(),
    version: 1,
  };
}

/**
 * Noise reduction (0–100), method vox-noise/1: the mean of one score per noisy response turn
 * (answered: the clean median latency divided by its latency, capped at 1; unanswered: 0) and
 * one per noise-only segment (1 when the agent neither replied nor stopped, else 0).
 */
export function noiseReduction(turns: Turn[], checks: NoiseCheck[]): number | null {
  const clean = turns.filter((t) => t.kind === "response" && !t.noisy && t.ok && t.latency_ms != null);
  const cleanMedian = summarize(clean.map((t) => t.latency_ms!)).median;
  const scores: number[] = [];
  for (const t of turns.filter((t) => t.kind === "response" && t.noisy)) {
    if (!t.ok || t.latency_ms == null) scores.push(0);
    else if (cleanMedian == null || t.latency_ms <= 0) scores.push(1);
    else scores.push(Math.min(1, cleanMedian / t.latency_ms));
  }
  for (const c of checks) scores.push(c.triggered || c.stopped_agent ? 0 : 1);
  if (scores.length === 0) return null;
  return Math.round((scores.reduce((a, b) => a + b, 0) / scores.length) * 1000) / 10;
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
