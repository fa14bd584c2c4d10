/**
 * One repetition in progress: its page, the page's events, the caller's last utterance, the
 * turns measured so far, and what the events say about the agent's voice. The steps
 * (`steps.ts`), audio injection (`injection.ts`), turn timing (`turns.ts`) and the recording
 * (`recording.ts`) act on this state.
 */
import type { Frame, Page } from "puppeteer-core";
import { EventQueue, type VoxEvent } from "./event_queue.ts";
import { DETECTOR } from "./page_hooks.ts";
import type { NoiseCheck, StepRecord, Turn } from "./report.ts";
import type { Step } from "./format.ts";

/** Where an utterance lies on one context's clock (voiced part and whole file), in frames. */
export interface Frames {
  voicedStart: number;
  voicedEnd: number;
  startFrame: number;
  endFrame: number;
}

/** An utterance played into the microphone, on the context it is measured in. */
export interface Utterance extends Frames {
  ctx: number;
  id: number;
  /** The same utterance on every context of the page, each on its own clock. */
  others: Map<number, Frames>;
  agentVoicedAtStart: boolean;
  responded: boolean;
  noisy: boolean;
  file: string;
  step: number;
}

/** An utterance queued in the page's microphone (every frame), not yet followed (injection.ts). */
export interface Posted {
  id: number;
  res: { primary: number | null; ctxs: number[] };
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
  /** How long the agent's voice may pause within one segment (the page's detector hold). */
  holdMs = DETECTOR.holdMs;
  /** A `pause` step waiting for the caller to resume (agent/turn_taking.ts). */
  pendingPause: {
    prev: Utterance;
    ms: number;
    file: string;
    step: number;
    /** The resuming speak's utterance, queued behind the one before the pause. */
    queued?: { step: Step; posted: Posted; noisy: boolean };
  } | null = null;
  /** An utterance queued to resume after the coming `pause` (set by the speak before it). */
  queuedResume: { step: Step; posted: Posted; noisy: boolean } | null = null;
  /** The audio context each turn was measured on, for its health check (agent/measurement_health.ts). */
  turnCtx = new Map<Turn, number>();
  /** Frame of the page (main document or iframe) that owns each audio context. */
  frameOf = new Map<number, Frame>();

  constructor(
    readonly page: Page,
    readonly run: number,
    /** Default timeout of waiting steps, wall-clock ms. */
    readonly stepTimeoutMs: number,
    /** Folder for screenshots. */
    readonly outDir: string,
    readonly progress: (line: string) => void,
  ) {}

  /** Sample rate of context `ctx` (48 kHz until its meter reports). */
  rate(ctx: number): number {
    return this.queue.rates.get(ctx) ?? 48000;
  }

  /** `frames` of context `ctx` in milliseconds, to 0.01 ms. */
  ms(ctx: number, frames: number): number {
    return Math.round((frames / this.rate(ctx)) * 1000 * 100) / 100;
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

  /** Whether the agent's latest voiced segment has not ended yet, as far as events tell. */
  agentTalking(ctx: number): boolean {
    let start: VoxEvent | undefined;
    for (const e of this.queue.events) if (e.type === "voice_start" && e.ctx === ctx) start = e;
    if (!start) return false;
    return !this.queue.events.some((e) =>
      e.type === "voice_end" && e.ctx === ctx && e.frame! >= start!.frame!
    );
  }
}
