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
  consumed?: boolean;
}

/** Events from the page, in arrival order, with the latest clock tick and sample rate per context. */
export class EventQueue {
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

  /** Takes a batch from the page: ticks update the clocks, everything else is queued. */
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
