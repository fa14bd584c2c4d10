import { BlockedDestination, checkDestination, type EgressPolicy } from "./egress.ts";

/**
 * The page's events as the agent receives them: meters' voice onsets and ends, utterances
 * played into the microphone, audio clock ticks, all in frames of one audio context's clock.
 * Consumers take an event once (`consumed`); nothing is dropped.
 */

/** One event from the page hooks (`agent/page/hooks.js`); frames count on the context `ctx`. */
export interface VoxEvent {
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
  host?: string;
  /** health: worst lateness of the page thread's timer since the last sample, ms. */
  lag?: number;
  /** health: real time minus audio time at the context's output, ms (constant while healthy). */
  slip?: number;
  /** tick: worst lateness of rendering against real time since the last tick, ms (the meter's). */
  late?: number;
  /** health (from a tick): the same, as a health sample. */
  render?: number;
  /** health: the context's playback underruns so far (count, and their total in ms). */
  underruns?: number;
  underrunMs?: number;
  consumed?: boolean;
}

const KINDS = new Set([
  "meter",
  "primary",
  "error",
  "tick",
  "voice_start",
  "voice_end",
  "utt_start",
  "utt_end",
  "getUserMedia",
  "tap",
  "ice",
  "health",
]);
const NUMBERS = [
  "ctx",
  "frame",
  "id",
  "voicedStart",
  "voicedEnd",
  "startFrame",
  "endFrame",
  "sampleRate",
  "lag",
  "slip",
  "underruns",
  "underrunMs",
  "late",
  "render",
] as const;
// Events on a context's clock may not be ahead of its latest tick by more than this (seconds).
const AHEAD_S = 1;

/**
 * Whether `e` is an event the hooks could have sent: a known type, numbers where numbers go,
 * and for events on a clock, a context whose meter started and a frame no further ahead of
 * that meter's own ticks than one tick batch. A page that got hold of the channel anyway
 * cannot announce a voice onset in the future of the audio that has actually played.
 */
export function plausibleEvent(
  e: unknown,
  q: { rates: Map<number, number>; ticks: Map<number, number> },
): boolean {
  if (typeof e !== "object" || e === null || Array.isArray(e)) return false;
  const ev = e as Record<string, unknown>;
  if (typeof ev.type !== "string" || !KINDS.has(ev.type)) return false;
  for (const k of NUMBERS) {
    if (ev[k] !== undefined && (typeof ev[k] !== "number" || !Number.isFinite(ev[k]))) return false;
  }
  // A page thread that stalled may read its context's clock ahead of the ticks still queued
  // behind it, so a health sample's frame is not held to the latest tick.
  if (ev.type === "health") {
    return typeof ev.ctx === "number" && q.rates.has(ev.ctx) && typeof ev.frame === "number" &&
      typeof ev.lag === "number";
  }
  if (["tick", "voice_start", "voice_end", "utt_start", "utt_end"].includes(ev.type)) {
    const ctx = ev.ctx as number | undefined;
    if (ctx === undefined || !q.rates.has(ctx)) return false;
    const frames = [ev.frame, ev.endFrame].filter((f): f is number => typeof f === "number");
    if (frames.some((f) => f < 0)) return false;
    if (ev.type !== "tick") {
      const tick = q.ticks.get(ctx) ?? 0;
      if (frames.some((f) => f > tick + AHEAD_S * q.rates.get(ctx)!)) return false;
    }
  }
  return true;
}

/** Events from the page, in arrival order, with the latest clock tick and sample rate per context. */
export class EventQueue {
  events: VoxEvent[] = [];
  rates = new Map<number, number>();
  ticks = new Map<number, number>();
  primary: number | null = null;
  signal?: AbortSignal;
  onPageError?: (message: string) => void;
  /** The strict egress policy the page's ICE servers and candidates are checked against. */
  egress?: EgressPolicy;
  /** Destinations the page's WebRTC named that the policy refuses. */
  blocked: BlockedDestination[] = [];
  /** Measurement-health samples from the page, in arrival order (agent/measurement_health.ts). */
  health: VoxEvent[] = [];
  /** Events dropped as implausible (see plausibleEvent). */
  rejected = 0;
  private checkedHosts = new Set<string>();
  private waiters: (() => void)[] = [];

  /** Wakes every waiter (new events, or cancellation). */
  wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Takes a batch as the page hooks send it (JSON text), dropping what is not plausible. */
  pushFromPage(json: string) {
    let batch: unknown;
    try {
      batch = JSON.parse(json);
    } catch {
      this.rejected++;
      return;
    }
    if (!Array.isArray(batch)) return void this.rejected++;
    // One at a time: a meter announced early in a batch makes its context's later events valid.
    for (const e of batch) {
      if (!plausibleEvent(e, this)) {
        this.rejected++;
        continue;
      }
      if ((e as VoxEvent).type === "ice") this.checkIce(String((e as VoxEvent).host ?? ""));
      else this.push([e as VoxEvent]);
    }
  }

  private checkIce(host: string) {
    if (!this.egress || this.checkedHosts.has(host) || this.checkedHosts.size > 100) return;
    this.checkedHosts.add(host);
    checkDestination(this.egress, host, 0).catch((err) => {
      if (err instanceof BlockedDestination && !err.uncounted) {
        this.blocked.push(err);
        this.wake();
      }
    });
  }

  /** Takes a batch from the page: ticks update the clocks, everything else is queued. */
  push(batch: VoxEvent[]) {
    for (const e of batch) {
      if (e.type === "tick") {
        this.ticks.set(e.ctx!, e.frame!);
        if (typeof e.late === "number") {
          this.#health({ type: "health", ctx: e.ctx, frame: e.frame, render: e.late });
        }
      } else if (e.type === "health") {
        this.#health(e);
      } else {
        if (e.type === "meter") this.rates.set(e.ctx!, e.sampleRate!);
        if (e.type === "primary") this.primary = e.ctx!;
        if (e.type === "error") this.onPageError?.(e.message ?? "unknown error");
        this.events.push(e);
      }
    }
    this.wake();
  }

  // Thirty a second per context (ticks and the page thread's samples): the last half hour or more.
  #health(e: VoxEvent) {
    if (this.health.length >= 60_000) this.health.splice(0, 15_000);
    this.health.push(e);
  }

  /** The first event not yet consumed that matches. */
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
