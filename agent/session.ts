/**
 * One run in progress: the page's events on its audio clock, and what each step does with
 * them (utterances in, the agent's voice out, turns measured).
 */
import type { Frame, Page } from "puppeteer-core";
import { join, resolve } from "node:path";
import { type LoadedConfig, resolveAudio } from "./config.ts";
import type { NoiseSpec, Step } from "./format.ts";
import { encodeWav, fromBase64, synthesize, toBase64 } from "./audio.ts";
import type { NoiseCheck, StepRecord, Turn } from "./report.ts";
import type { RunOptions } from "./runner.ts";

/** Voice detection parameters shared by the meter and the offline segmentation of utterances. */
export const DETECTOR = {
  theta: 0.01, // -40 dBFS
  // A voiced onset needs a quarter of the next 30 ms above theta: speech passes at its first
  // voiced sample, while codec clicks (a WebRTC loopback emits ~9 ms ones) do not.
  confirmMs: 30,
  minFraction: 0.25,
  holdMs: 400,
};

/** A step (or opening the page) failed; names the file, step and action. */
export class StepFailure extends Error {
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
/** The page hooks with the worklet and the detector settings filled in. */
export async function pageHooks(verbose: boolean): Promise<string> {
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

/** State of one repetition while its steps run. */
export class Session {
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
