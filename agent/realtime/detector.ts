/**
 * The browser path's voice detector (agent/page/meter_worklet.js), sample by sample, for
 * Realtime calls: a voiced segment starts at the first sample with |x| >= theta when a quarter
 * of the next 30 ms is above theta, and ends at the last such sample once `hold` ms below it
 * have passed. Same parameters (`DETECTOR`), so both paths call the same sound voiced.
 */
import { DETECTOR } from "../page_hooks.ts";

/** A voice onset or end at a sample index. */
export type VoiceEdge = { type: "voice_start" | "voice_end"; frame: number };

/** Incremental detector over one channel; feed samples in order with their absolute index. */
export class Detector {
  readonly theta = DETECTOR.theta;
  readonly confirm: number;
  readonly minCount: number;
  hold: number;
  voiced = false;
  #cand = -1;
  #count = 0;
  #candLast = -1;
  #lastAbove = -1;

  constructor(readonly rate: number, holdMs = DETECTOR.holdMs) {
    this.confirm = Math.max(1, Math.round((DETECTOR.confirmMs * rate) / 1000));
    this.minCount = Math.round(this.confirm * DETECTOR.minFraction);
    this.hold = Math.max(1, Math.round((holdMs * rate) / 1000));
  }

  /** The last sample at or above theta in the current (or last) segment. */
  get lastAbove(): number {
    return this.#lastAbove;
  }

  /** Feeds sample `x` at index `f`; returns an edge when one is decided. */
  step(x: number, f: number): VoiceEdge | null {
    const a = x < 0 ? -x : x;
    if (!this.voiced) {
      if (a >= this.theta) {
        if (this.#cand < 0) {
          this.#cand = f;
          this.#count = 0;
        }
        this.#count++;
        this.#candLast = f;
      }
      if (this.#cand >= 0 && f - this.#cand + 1 >= this.confirm) {
        if (this.#count >= this.minCount) {
          this.voiced = true;
          this.#lastAbove = this.#candLast;
          return { type: "voice_start", frame: this.#cand };
        }
        this.#cand = -1;
      }
      return null;
    }
    if (a >= this.theta) this.#lastAbove = f;
    else if (f - this.#lastAbove >= this.hold) {
      this.voiced = false;
      this.#cand = -1;
      return { type: "voice_end", frame: this.#lastAbove };
    }
    return null;
  }
}

/** First and last voiced sample of a buffer (hooks.js `segments`), −1 when none. */
export function voicedSpan(samples: Float32Array, rate: number): { first: number; last: number } {
  const d = new Detector(rate);
  let first = -1;
  let last = -1;
  for (let f = 0; f < samples.length; f++) {
    const e = d.step(samples[f], f);
    if (e?.type === "voice_start" && first < 0) first = e.frame;
    if (d.voiced) last = d.lastAbove;
  }
  return { first, last };
}
