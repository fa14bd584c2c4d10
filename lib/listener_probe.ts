// Whether this process's LISTEN connection really receives notifications. A transaction
// pooler (PgBouncer pool_mode=transaction, most managed "pooled" endpoints) accepts LISTEN and
// then drops or misroutes what is sent to it, with no error anywhere; dispatch then only
// happens on the slow poll and live streams go quiet. So each process periodically NOTIFYs a
// channel of its own through the pool and expects to hear itself within the probe interval.
import type { Sql } from "./db.ts";
import type { Logger } from "./log.ts";

/** The channel probes travel on; each process ignores the probes of the others. */
export const PROBE_CHANNEL = "vox_listener_probe";

/** What /readyz and /metrics report about the LISTEN connection. */
export interface ListenerHealth {
  /** `checking` until the first probe is back or overdue. */
  state: "checking" | "ok" | "degraded";
  /** When the state last changed (ISO 8601). */
  since: string;
  /** Why the listener is degraded. */
  reason?: string;
  /** When a probe last came back (ISO 8601), if ever. */
  lastProbeAt: string | null;
  probesSent: number;
  probesReceived: number;
}

/**
 * Sends a probe every `intervalMs` through `sql` (the pool) and marks the listener degraded
 * when one is not back by the next; it is ok again as soon as one comes back. Transitions are
 * logged: a warning naming the likely cause, then an info line on recovery.
 */
export class ListenerProbe {
  #state: ListenerHealth["state"] = "checking";
  #since = new Date();
  #reason: string | undefined;
  #lastProbeAt: Date | null = null;
  #sent = 0;
  #received = 0;
  /** Sequence number of the newest probe sent, and of the newest heard back. */
  #seq = 0;
  #heard = 0;
  #outstanding: { seq: number; at: number } | null = null;

  constructor(
    readonly sql: Sql,
    readonly serverId: string,
    readonly intervalMs: number,
    readonly log: Logger,
    /** The clock probes are judged by (tests drive their own). */
    readonly now: () => number = Date.now,
  ) {}

  /** Called with every payload on PROBE_CHANNEL. */
  received(payload: string): void {
    let probe: { serverId?: unknown; seq?: unknown };
    try {
      probe = JSON.parse(payload);
    } catch {
      return;
    }
    if (probe.serverId !== this.serverId || typeof probe.seq !== "number") return;
    this.#received++;
    this.#heard = Math.max(this.#heard, probe.seq);
    this.#lastProbeAt = new Date();
    if (this.#outstanding && this.#heard >= this.#outstanding.seq) this.#outstanding = null;
    if (this.#state !== "ok") {
      if (this.#state === "degraded") {
        this.log.info("LISTEN connection delivers notifications again; dispatch is prompt again", {
          degradedSince: this.#since.toISOString(),
        });
      }
      this.#set("ok");
    }
  }

  /**
   * One probe tick: judges the previous probe (overdue → degraded), then sends the next.
   * A failing send is thrown to the caller's loop; it says nothing about the listener.
   */
  async tick(): Promise<void> {
    const now = this.now();
    if (this.#outstanding && now - this.#outstanding.at >= this.intervalMs && this.#state !== "degraded") {
      const reason = `a NOTIFY this process sent was not delivered to its LISTEN connection within ` +
        `${this.intervalMs} ms`;
      this.log.warn(
        "LISTEN connection does not deliver notifications: dispatch falls back to polling " +
          "(VOX_DISPATCH_POLL_MS) and live streams miss events. Is the listener behind a " +
          "transaction pooler? Point DATABASE_LISTEN_URL at a direct or session-pooled connection.",
        { reason },
      );
      this.#set("degraded", reason);
    }
    const seq = ++this.#seq;
    // A probe still outstanding stays the one judged: a listener that never answers must
    // not look fresh because a newer probe was just sent.
    this.#outstanding ??= { seq, at: now };
    this.#sent++;
    await this.sql`SELECT pg_notify(${PROBE_CHANNEL}, ${JSON.stringify({ serverId: this.serverId, seq })})`;
  }

  /** The current state, for /readyz and /metrics. */
  health(): ListenerHealth {
    return {
      state: this.#state,
      since: this.#since.toISOString(),
      ...(this.#reason ? { reason: this.#reason } : {}),
      lastProbeAt: this.#lastProbeAt?.toISOString() ?? null,
      probesSent: this.#sent,
      probesReceived: this.#received,
    };
  }

  #set(state: ListenerHealth["state"], reason?: string): void {
    this.#state = state;
    this.#since = new Date();
    this.#reason = reason;
  }
}
