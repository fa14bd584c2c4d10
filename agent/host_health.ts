/**
 * The daemon's view of its host (issue 19): how late its own event loop runs, how much CPU the
 * hypervisor steals, and how many calls the host can measure right now. Turns measured while
 * the host was overloaded come back `unreliable` (agent/measurement_health.ts); the governor
 * takes that, and a host whose loop stalls or whose CPU is stolen, as a sign to accept fewer
 * calls at once, and gives the slots back one at a time once the host has stayed healthy.
 */

/** Past these the host counts as degraded (the daemon's own process, and the machine). */
export const HOST_LIMITS = {
  /** The daemon's 100 ms timer fired this much late (ms): the process could not run. */
  loopLagMs: 250,
  /** CPU time stolen by the hypervisor over the last sample, % of all CPU time. */
  stealPct: 10,
};

/** One reading of the host. */
export interface HostSample {
  /** Worst lateness of the daemon's timer since the last reading, ms. */
  loopLagMs: number;
  /** Steal since the last reading, % (null: no /proc/stat, or the first reading). */
  stealPct: number | null;
  /** 1-minute load average (null without /proc/loadavg); reported, not judged. */
  load1: number | null;
}

/** Why a sample is degraded, or null when it is healthy. */
export function hostProblem(s: HostSample, limits = HOST_LIMITS): string | null {
  const out: string[] = [];
  if (s.loopLagMs > limits.loopLagMs) {
    out.push(`the agent's event loop stalled ${Math.round(s.loopLagMs)} ms`);
  }
  if (s.stealPct != null && s.stealPct > limits.stealPct) out.push(`${s.stealPct}% of CPU time was stolen`);
  return out.length ? out.join("; ") : null;
}

/** Samples the daemon's event-loop lag and the machine's CPU steal while started. */
export class HostMonitor {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #worst = 0;
  #cpu: { steal: number; total: number } | null = null;

  /** Starts the 100 ms lag timer. */
  start(): void {
    if (this.#timer) return;
    let expected = performance.now() + 100;
    const tick = () => {
      this.#worst = Math.max(this.#worst, performance.now() - expected);
      expected = performance.now() + 100;
      this.#timer = setTimeout(tick, 100);
    };
    this.#timer = setTimeout(tick, 100);
  }

  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** A reading since the last one (the worst lag is reset). */
  async read(): Promise<HostSample> {
    const loopLagMs = Math.round(this.#worst);
    this.#worst = 0;
    let stealPct: number | null = null;
    try {
      // cpu  user nice system idle iowait irq softirq steal …
      const line = (await Deno.readTextFile("/proc/stat")).split("\n")[0];
      const f = line.trim().split(/\s+/).slice(1, 9).map(Number);
      const now = { steal: f[7] ?? 0, total: f.reduce((a, b) => a + b, 0) };
      if (this.#cpu && now.total > this.#cpu.total) {
        stealPct = Math.round(((now.steal - this.#cpu.steal) / (now.total - this.#cpu.total)) * 1000) / 10;
      }
      this.#cpu = now;
    } catch { /* not Linux */ }
    let load1: number | null = null;
    try {
      load1 = Number((await Deno.readTextFile("/proc/loadavg")).split(" ")[0]);
    } catch { /* not Linux */ }
    return { loopLagMs, stealPct, load1 };
  }
}

/** A change of the accepted concurrency and why. */
export interface CapacityChange {
  from: number;
  to: number;
  reason: string;
}

/**
 * The concurrency the daemon accepts: `max` while healthy; halved (not below 1) on each sign
 * of degradation, at most once per `cooldownMs` (one overloaded moment reaches every running
 * call at once); one slot back after each `recoverMs` without any sign.
 */
export class CapacityGovernor {
  capacity: number;
  #lastSign = -Infinity;
  #lastChange = -Infinity;

  constructor(
    readonly max: number,
    readonly opts: { cooldownMs: number; recoverMs: number } = { cooldownMs: 10_000, recoverMs: 60_000 },
  ) {
    this.capacity = max;
  }

  /** A sign of degradation at `now`; returns the change it made, if any. */
  degraded(reason: string, now = Date.now()): CapacityChange | null {
    this.#lastSign = now;
    if (this.capacity <= 1 || now - this.#lastChange < this.opts.cooldownMs) return null;
    const from = this.capacity;
    this.capacity = Math.max(1, Math.floor(from / 2));
    this.#lastChange = now;
    return { from, to: this.capacity, reason };
  }

  /** Called periodically: a slot back once the host has been healthy for `recoverMs`. */
  tick(now = Date.now()): CapacityChange | null {
    if (this.capacity >= this.max) return null;
    if (now - this.#lastSign < this.opts.recoverMs || now - this.#lastChange < this.opts.recoverMs) {
      return null;
    }
    const from = this.capacity;
    this.capacity++;
    this.#lastChange = now;
    return { from, to: this.capacity, reason: `healthy for ${Math.round(this.opts.recoverMs / 1000)} s` };
  }
}
