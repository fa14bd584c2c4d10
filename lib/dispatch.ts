// Cross-process dispatch: the agents connected to this process, pushing jobs to them the
// moment one is free, and the background loops every server process runs (LISTEN/NOTIFY,
// heartbeat reaper, batched last-seen writes, metric rollups, polling fallback).
import { CloseCode, type ServerMessage } from "../agent/protocol.ts";
import { flushLastSeen, markServerAgentsOffline, markSilentAgentsOffline } from "./agents.ts";
import type { Sql } from "./db.ts";
import { EventHub } from "./events.ts";
import {
  type BatchOutcome,
  claimJobs,
  completeJob,
  completeJobs,
  type CompleteOutcome,
  JOB_EVENTS_CHANNEL,
  type JobEvent,
  type JobOffer,
  JOBS_CHANNEL,
  markAccepted,
  type Notification,
  notify,
  reapStaleJobs,
  releaseJob,
  RESULTS_CHANNEL,
  retrying,
  type RunReport,
} from "./jobs.ts";
import type { Logger } from "./log.ts";
import { rollUpResults } from "./metrics.ts";
import { readSettings } from "./settings.ts";

/** One registered agent socket on this process. */
export interface AgentConn {
  agentId: number;
  connectionId: string;
  tokenId: number;
  tokenExpiresAt: number | null;
  name: string;
  region: string;
  capacity: number;
  socket: WebSocket;
  /** Jobs this process handed to the agent that it has not finished. */
  jobs: Set<number>;
  /** Date.now() of the last frame from the agent. */
  lastSeen: number;
  /** No offers before this Date.now() (the agent just declined one). */
  pausedUntil: number;
}

export interface OrchestratorOptions {
  sql: Sql;
  serverId: string;
  log: Logger;
  /** Polling fallback when a notification was missed (default 5000 ms). */
  pollMs?: number;
  /** Heartbeat reaper period (default 2000 ms). */
  reapMs?: number;
  /** Batched last-seen writes (default 1000 ms). */
  flushMs?: number;
  /** Metric rollup period (default 1000 ms; 0 disables). */
  rollupMs?: number;
}

const MAX_CLAIM_BATCH = 50;
/** Results of one region written by one statement at most. */
const MAX_RESULT_BATCH = 64;
/** Result batches of one region in flight at once: others run while one waits for its commit. */
const MAX_RESULT_WRITERS = 4;

// A result waiting for its region's next batch.
interface PendingResult {
  conn: AgentConn;
  jobId: number;
  report: RunReport;
  /** The agent has a slot for its next job. */
  next: boolean;
  resolve: (outcome: CompleteOutcome) => void;
  reject: (err: unknown) => void;
}

/**
 * Owns this process's agent sockets and keeps jobs flowing to them. Jobs reach it through
 * NOTIFY (any process's insert), an agent becoming free, a re-scan after the LISTEN
 * connection comes back, and as a last resort a slow poll.
 */
export class Orchestrator {
  readonly events = new EventHub();
  readonly sql: Sql;
  readonly serverId: string;
  readonly log: Logger;
  /** From system_config, refreshed by the reaper loop. */
  heartbeatIntervalMs = 10_000;
  heartbeatTimeoutMs = 30_000;

  #opts: Required<Omit<OrchestratorOptions, "sql" | "serverId" | "log">>;
  #conns = new Map<number, AgentConn>();
  #regions = new Map<string, Set<AgentConn>>();
  #seen = new Map<number, Date>();
  #accepted: { jobId: number; agentId: number; at: Date }[] = [];
  #notifications: Notification[] = [];
  #notifying: Promise<void> | null = null;
  #dispatching = new Set<string>();
  #again = new Set<string>();
  #timers: ReturnType<typeof setInterval>[] = [];
  #unlisten: (() => Promise<void>)[] = [];
  #stopped = false;
  #busy = new Set<Promise<unknown>>();
  #results = new Map<string, { pending: PendingResult[]; running: number }>();

  constructor(opts: OrchestratorOptions) {
    this.sql = opts.sql;
    this.serverId = opts.serverId;
    this.log = opts.log.child({ component: "orchestrator" });
    this.#opts = {
      pollMs: opts.pollMs ?? 5000,
      reapMs: opts.reapMs ?? 2000,
      flushMs: opts.flushMs ?? 1000,
      rollupMs: opts.rollupMs ?? 1000,
    };
  }

  /** Subscribes to the channels and starts the loops. */
  async start(): Promise<void> {
    await this.loadSettings();
    const listen = async (channel: string, fn: (payload: string) => void, onListen?: () => void) => {
      const sub = await this.sql.listen(channel, (p) => {
        try {
          fn(p);
        } catch (err) {
          this.log.error("notification handler failed", { channel, error: err });
        }
      }, onListen);
      this.#unlisten.push(sub.unlisten);
    };
    // onListen runs on every (re)connection of the LISTEN socket: notifications sent while
    // it was down are lost, so re-scan every region this process serves.
    await listen(JOBS_CHANNEL, (region) => this.kick(region), () => this.kickAll());
    await listen(JOB_EVENTS_CHANNEL, (p) => this.#onJobEvent(JSON.parse(p) as JobEvent));
    await listen(RESULTS_CHANNEL, (p) => this.events.publish("metrics", "result", JSON.parse(p)));
    await listen("vox_agent_tokens", (id) => this.#closeToken(Number(id), "token revoked"));
    await listen("vox_agents", (p) => {
      const { agentId, connectionId } = JSON.parse(p) as { agentId: number; connectionId: string };
      const conn = this.#conns.get(agentId);
      if (conn && conn.connectionId !== connectionId) {
        this.#close(conn, CloseCode.replaced, "replaced by a newer connection of this agent");
      }
    });
    this.#every(this.#opts.pollMs, () => this.kickAll());
    this.#every(this.#opts.reapMs, () => this.reap());
    this.#every(this.#opts.flushMs, () => this.flush());
    if (this.#opts.rollupMs > 0) this.#every(this.#opts.rollupMs, () => rollUpResults(this.sql));
  }

  /** Closes every agent socket (agents reconnect elsewhere), stops the loops, writes what is pending. */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    for (const t of this.#timers) clearInterval(t);
    this.events.close();
    for (const conn of [...this.#conns.values()]) {
      this.#close(conn, CloseCode.serverRestart, "server restarting");
    }
    await Promise.allSettled([...this.#busy]);
    await Promise.allSettled(this.#unlisten.map((u) => u()));
    await this.flush().catch(() => {});
    await markServerAgentsOffline(this.sql, this.serverId).catch(() => {});
  }

  /** Re-reads the heartbeat settings from system_config. */
  async loadSettings(): Promise<void> {
    const s = await readSettings(this.sql, [
      "agents.heartbeat_interval_seconds",
      "jobs.heartbeat_timeout_seconds",
    ]);
    this.heartbeatIntervalMs = Math.round(s["agents.heartbeat_interval_seconds"] * 1000);
    this.heartbeatTimeoutMs = Math.round(s["jobs.heartbeat_timeout_seconds"] * 1000);
  }

  /** Agents connected to this process. */
  get connections(): ReadonlyMap<number, AgentConn> {
    return this.#conns;
  }

  /** Adds a registered agent; a previous socket of the same agent on this process is closed. */
  register(conn: AgentConn): void {
    const old = this.#conns.get(conn.agentId);
    if (old && old !== conn) {
      this.#close(old, CloseCode.replaced, "replaced by a newer connection of this agent");
    }
    this.#conns.set(conn.agentId, conn);
    let set = this.#regions.get(conn.region);
    if (!set) this.#regions.set(conn.region, set = new Set());
    set.add(conn);
    this.touch(conn);
    this.kick(conn.region);
  }

  /** Forgets a closed socket (only if it is still the agent's current one). */
  unregister(conn: AgentConn): boolean {
    if (this.#conns.get(conn.agentId) !== conn) return false;
    this.#conns.delete(conn.agentId);
    this.#regions.get(conn.region)?.delete(conn);
    this.#seen.delete(conn.agentId);
    return true;
  }

  /** Notes that an agent was heard from; written to Postgres by the next flush. */
  touch(conn: AgentConn): void {
    conn.lastSeen = Date.now();
    this.#seen.set(conn.agentId, new Date(conn.lastSeen));
  }

  /**
   * An agent finished or gave back a job: it goes to the back of its region's line and the
   * region gets a dispatch pass. `pauseMs` keeps offers away from it for a while (it
   * declined a job, so offering the next one at once would likely bounce too).
   */
  freed(conn: AgentConn, pauseMs = 0): void {
    const set = this.#regions.get(conn.region);
    if (set?.delete(conn)) set.add(conn);
    if (pauseMs > 0) {
      conn.pausedUntil = Date.now() + pauseMs;
      const t = setTimeout(() => this.kick(conn.region), pauseMs + 10);
      Deno.unrefTimer(t as unknown as number);
    }
    this.kick(conn.region);
  }

  /** Sends a message to an agent socket; false if it is not open. */
  send(conn: AgentConn, message: ServerMessage): boolean {
    if (conn.socket.readyState !== WebSocket.OPEN) return false;
    try {
      conn.socket.send(JSON.stringify(message));
      return true;
    } catch {
      return false;
    }
  }

  /** Starts a dispatch pass for `region` if this process has a free agent there. */
  kick(region: string): void {
    if (this.#stopped || !this.#hasFreeSlot(region)) return;
    if (this.#dispatching.has(region)) {
      this.#again.add(region);
      return;
    }
    this.#track(this.#dispatch(region));
  }

  /** Re-scans every region with a free local agent. */
  kickAll(): void {
    for (const region of this.#regions.keys()) this.kick(region);
  }

  /** One reaper pass: stale jobs requeued or failed, silent agents offline, dead local sockets closed. */
  async reap(): Promise<void> {
    await this.loadSettings();
    const reaped = await reapStaleJobs(this.sql);
    if (reaped.length > 0) this.log.warn("released jobs of silent agents", { jobs: reaped });
    await markSilentAgentsOffline(this.sql);
    const now = Date.now();
    for (const conn of [...this.#conns.values()]) {
      if (now - conn.lastSeen > this.heartbeatTimeoutMs) {
        this.#close(conn, CloseCode.heartbeatTimeout, "no heartbeat within the timeout");
      } else if (conn.tokenExpiresAt !== null && conn.tokenExpiresAt <= now) {
        this.#close(conn, CloseCode.tokenInvalid, "token expired");
      }
    }
  }

  /**
   * Queues live-event notifications; whatever queues up while one batch is being sent goes
   * out together in the next, so a busy process sends a few NOTIFY transactions a second
   * instead of one per result.
   */
  notify(events: Notification[]): void {
    this.#notifications.push(...events);
    if (this.#notifying) return;
    this.#notifying = this.#track((async () => {
      try {
        while (this.#notifications.length > 0) {
          const batch = this.#notifications;
          this.#notifications = [];
          await notify(this.sql, batch);
        }
      } catch (err) {
        this.log.error("could not send live events", { error: err });
      } finally {
        this.#notifying = null;
      }
    })());
  }

  /** Notes that an agent started a job it holds; written by the next flush. */
  accepted(conn: AgentConn, jobId: number): void {
    this.#accepted.push({ jobId, agentId: conn.agentId, at: new Date() });
  }

  /**
   * Writes the batched last-seen times and acceptances: one statement each for everything
   * heard since the last flush.
   */
  async flush(): Promise<void> {
    if (this.#accepted.length > 0) {
      const accepted = this.#accepted;
      this.#accepted = [];
      await markAccepted(this.sql, accepted);
    }
    if (this.#seen.size === 0) return;
    const seen = [...this.#seen].map(([id, at]) => ({ id, at }));
    this.#seen.clear();
    await flushLastSeen(this.sql, seen);
  }

  /**
   * Stores a job's result and hands the agent its next job of its region. Results that
   * arrive while a batch of their region is being written wait for the next one, and
   * each batch is one statement (completeJobs()): a lone result goes out at once, a busy
   * region pays one plan and one commit for many results. The finished job keeps its slot
   * until the batch is back, so no dispatch pass hands the agent a second job meanwhile.
   */
  completeAndNext(conn: AgentConn, jobId: number, report: RunReport): Promise<CompleteOutcome> {
    const free = conn.capacity - conn.jobs.size + (conn.jobs.has(jobId) ? 1 : 0);
    return new Promise((resolve, reject) => {
      let batcher = this.#results.get(conn.region);
      if (!batcher) this.#results.set(conn.region, batcher = { pending: [], running: 0 });
      batcher.pending.push({ conn, jobId, report, next: free > 0, resolve, reject });
      this.#writeResults(conn.region);
    });
  }

  // Starts a batch for `region` unless MAX_RESULT_WRITERS are already writing; each writer
  // takes everything pending (up to MAX_RESULT_BATCH) and looks again when it is done.
  #writeResults(region: string): void {
    const batcher = this.#results.get(region);
    if (!batcher || batcher.running >= MAX_RESULT_WRITERS || batcher.pending.length === 0) return;
    const batch = batcher.pending.splice(0, MAX_RESULT_BATCH);
    batcher.running++;
    this.#track((async () => {
      try {
        await this.#storeResults(region, batch);
      } finally {
        batcher.running--;
        this.#writeResults(region);
      }
    })());
  }

  async #storeResults(region: string, batch: PendingResult[]): Promise<void> {
    const events: Notification[] = [];
    let outcomes: BatchOutcome[] | null = null;
    try {
      outcomes = await retrying(() =>
        completeJobs(
          this.sql,
          region,
          batch.map((p) => ({
            jobId: p.jobId,
            agentId: p.conn.agentId,
            report: p.report,
            next: p.next && !this.#stopped,
          })),
          (e) => events.push(...e),
        )
      );
    } catch (err) {
      // One bad item must not fail the others: store them one by one, as before batching.
      this.log.warn("batched result write failed; storing one by one", { region, error: err });
    }
    this.notify(events);
    await Promise.all(batch.map(async (p, i) => {
      try {
        const o = outcomes?.[i];
        const outcome = o ? await this.#afterBatch(p, o) : await this.#completeOne(p);
        p.resolve(outcome);
      } catch (err) {
        p.reject(err);
      }
    }));
  }

  // The agent's part once its result is in: the next offer sent, or the agent freed.
  async #afterBatch(p: PendingResult, o: BatchOutcome): Promise<CompleteOutcome> {
    if (!o.stored) {
      // Duplicate or not held: completeJob() stores nothing new and says which.
      const outcome = await completeJob(this.sql, p.jobId, p.conn.agentId, p.report, {
        deferNotify: (e) => this.notify(e),
      });
      p.conn.jobs.delete(p.jobId);
      this.freed(p.conn);
      return outcome;
    }
    await this.#handOver(p.conn, p.jobId, o.offer);
    return { ok: true, duplicate: false, resultId: o.resultId };
  }

  // Without batching: completeJob() then claimJobs(), two autocommit statements.
  async #completeOne(p: PendingResult): Promise<CompleteOutcome> {
    const { conn, jobId } = p;
    const events: Notification[] = [];
    const outcome = await retrying(() =>
      completeJob(this.sql, jobId, conn.agentId, p.report, { deferNotify: (e) => events.push(...e) })
    );
    const offers = outcome.ok && !outcome.duplicate && p.next && !this.#stopped
      ? await retrying(() => claimJobs(this.sql, conn.region, [{ agentId: conn.agentId }]))
      : [];
    this.notify(events);
    await this.#handOver(conn, jobId, offers[0] ?? null);
    return outcome;
  }

  async #handOver(conn: AgentConn, doneJobId: number, next: JobOffer | null): Promise<void> {
    conn.jobs.delete(doneJobId);
    if (next) {
      if (this.send(conn, next.message)) conn.jobs.add(next.message.jobId);
      else await releaseJob(this.sql, next.message.jobId, conn.agentId);
    } else {
      this.freed(conn);
    }
  }

  #every(ms: number, fn: () => unknown): void {
    let running = false;
    const t = setInterval(async () => {
      if (running || this.#stopped) return;
      running = true;
      try {
        await this.#track(Promise.resolve(fn()));
      } catch (err) {
        this.log.error("background loop failed", { error: err });
      } finally {
        running = false;
      }
    }, ms);
    Deno.unrefTimer(t as unknown as number);
    this.#timers.push(t);
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#busy.add(p);
    p.finally(() => this.#busy.delete(p)).catch(() => {});
    return p;
  }

  #hasFreeSlot(region: string): boolean {
    const now = Date.now();
    for (const c of this.#regions.get(region) ?? []) {
      if (c.jobs.size < c.capacity && c.pausedUntil <= now && c.socket.readyState === WebSocket.OPEN) {
        return true;
      }
    }
    return false;
  }

  // Claims for up to MAX_CLAIM_BATCH free slots per statement and loops while every slot
  // got a job. One pass per region at a time in this process; a kick during a pass makes
  // the pass run again instead of starting a second one.
  async #dispatch(region: string): Promise<void> {
    this.#dispatching.add(region);
    try {
      do {
        this.#again.delete(region);
        for (;;) {
          if (this.#stopped) return;
          const slots: AgentConn[] = [];
          const now = Date.now();
          for (const c of this.#regions.get(region) ?? []) {
            if (c.socket.readyState !== WebSocket.OPEN || c.pausedUntil > now) continue;
            for (let i = c.jobs.size; i < c.capacity && slots.length < MAX_CLAIM_BATCH; i++) slots.push(c);
            if (slots.length >= MAX_CLAIM_BATCH) break;
          }
          if (slots.length === 0) break;
          const offers = await retrying(() =>
            claimJobs(this.sql, region, slots.map((c) => ({ agentId: c.agentId })))
          );
          for (const offer of offers) {
            const conn = this.#conns.get(offer.agentId);
            if (conn && conn.jobs.size < conn.capacity && this.send(conn, offer.message)) {
              conn.jobs.add(offer.message.jobId);
              // The job's watchers learn it left the queue. Batched outside the claim, which
              // would otherwise become a notifying transaction and serialise its commit.
              const event: JobEvent = {
                jobId: offer.message.jobId,
                status: "running",
                agentId: offer.agentId,
              };
              this.notify([{ channel: JOB_EVENTS_CHANNEL, payload: JSON.stringify(event) }]);
              const set = this.#regions.get(region);
              if (set?.delete(conn)) set.add(conn);
            } else {
              await releaseJob(this.sql, offer.message.jobId, offer.agentId);
            }
          }
          if (offers.length < slots.length) break;
        }
      } while (this.#again.has(region));
    } catch (err) {
      this.log.error("dispatch failed", { region, error: err });
    } finally {
      this.#dispatching.delete(region);
    }
  }

  #onJobEvent(event: JobEvent): void {
    this.events.publish(`job:${event.jobId}`, event.progress !== undefined ? "progress" : "status", event);
    if (event.status === "running" || event.status === "completed" || !event.agentId) return;
    // The job was taken from an agent (heartbeat lost, cancelled): if this process holds
    // the agent and it still believes it runs the job, tell it to stop.
    const conn = this.#conns.get(event.agentId);
    if (conn?.jobs.delete(event.jobId)) {
      this.send(conn, {
        type: "job.cancel",
        jobId: event.jobId,
        reason: event.error ?? `job is ${event.status}`,
      });
      this.freed(conn);
    }
  }

  #closeToken(tokenId: number, reason: string): void {
    for (const conn of [...this.#conns.values()]) {
      if (conn.tokenId === tokenId) this.#close(conn, CloseCode.tokenInvalid, reason);
    }
  }

  #close(conn: AgentConn, code: number, reason: string): void {
    try {
      conn.socket.close(code, reason);
    } catch { /* already closed */ }
  }
}
