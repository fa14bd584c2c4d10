// Cross-process dispatch: the agents connected to this process, pushing jobs to them the
// moment one is free, and the background loops every server process runs (LISTEN/NOTIFY,
// heartbeat reaper, batched last-seen writes, metric rollups, polling fallback). Results
// are stored by lib/job_completer.ts; the Orchestrator hands each agent its next job.
// One class because every loop acts on the same socket registry (its maps, its stopping).
import { CloseCode, type RunReport, type ServerMessage } from "../agent/protocol.ts";
import {
  currentConnectionId,
  flushLastSeen,
  markServerAgentsOffline,
  markSilentAgentsOffline,
} from "./agents.ts";
import { retrying, type Sql } from "./db.ts";
import { EventHub } from "./event_hub.ts";
import { type CompleteOutcome, JobCompleter } from "./job_completer.ts";
import { ListenerProbe, PROBE_CHANNEL } from "./listener_probe.ts";
import type { Logger } from "./log.ts";
import { rollUpResults } from "./metrics.ts";
import {
  AGENT_TOKENS_CHANNEL,
  AGENTS_CHANNEL,
  JOB_EVENTS_CHANNEL,
  type JobEvent,
  jobEventNotification,
  JOBS_CHANNEL,
  type Notification,
  Notifier,
  RESULTS_CHANNEL,
} from "./notify.ts";
import {
  claimJobs,
  failOverrunJobs,
  type JobOffer,
  markAccepted,
  reapStaleJobs,
  releaseJob,
} from "./queue.ts";
import { Counter, Histogram } from "./prometheus.ts";
import { openSecrets } from "./workflow_secrets.ts";
import { defaultSetting, readSettings } from "./settings.ts";

/**
 * What the server uses of an agent's WebSocket: the server-side socket of the ws library
 * (routes/api/agent_gateway.ts), already open when it is handed over.
 */
export interface AgentSocket {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onmessage: ((e: { data: unknown }) => void) | null;
  onclose: ((e: { code: number; reason: string }) => void) | null;
  onerror: ((e: unknown) => void) | null;
}

/** One registered agent socket on this process. */
export interface AgentConn {
  agentId: number;
  connectionId: string;
  tokenId: number;
  tokenExpiresAt: number | null;
  name: string;
  region: string;
  capacity: number;
  socket: AgentSocket;
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
  /** Self-NOTIFY probe of the LISTEN connection (default 10000 ms; 0 disables; lib/listener_probe.ts). */
  probeMs?: number;
  /**
   * The pool LISTEN runs on (postgres.js opens one dedicated connection from it); default
   * `sql`. Separate when `sql` goes through a transaction pooler (DATABASE_LISTEN_URL).
   */
  listenSql?: Sql;
}

/**
 * Upper bounds (seconds) of the dispatch latency histogram: from about the NOTIFY path's
 * milliseconds (bench: p50 1.3 ms, p99 8 ms) up to the minutes a job can wait for a free agent.
 */
const DISPATCH_BUCKETS = [
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
  30,
  60,
  300,
];

const MAX_CLAIM_BATCH = 50;

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
  /** Whether LISTEN delivers (null when the probe is disabled). */
  readonly listener: ListenerProbe | null;
  /** Job claimable (created, or released for a retry) → offered to an agent, on this process. */
  readonly dispatchLatency = new Histogram(
    "vox_dispatch_latency_seconds",
    "Time from a job becoming claimable to its offer being sent to an agent by this process.",
    DISPATCH_BUCKETS,
  );
  /**
   * Job state changes heard on JOB_EVENTS_CHANNEL, every process's jobs included: the rate of
   * completions and failures without counting a table that grows with history.
   */
  readonly jobTransitions = new Counter(
    "vox_job_transitions_total",
    "Job state changes this process heard on vox_job_events (all processes' jobs), by new status.",
  );
  /** From system_config, refreshed by the reaper loop. */
  heartbeatIntervalMs = defaultSetting("agents.heartbeat_interval_seconds") * 1000;
  heartbeatTimeoutMs = defaultSetting("jobs.heartbeat_timeout_seconds") * 1000;

  #opts: Required<Omit<OrchestratorOptions, "sql" | "serverId" | "log" | "listenSql">>;
  #listenSql: Sql;
  #conns = new Map<number, AgentConn>();
  #regions = new Map<string, Set<AgentConn>>();
  #seen = new Map<number, Date>();
  #accepted: { jobId: number; agentId: number; at: Date }[] = [];
  #notifier: Notifier;
  #completer: JobCompleter;
  #dispatching = new Set<string>();
  #again = new Set<string>();
  #timers: ReturnType<typeof setInterval>[] = [];
  #secretKey: CryptoKey | null = null;
  #unlisten: (() => Promise<void>)[] = [];
  #stopped = false;
  #busy = new Set<Promise<unknown>>();

  constructor(opts: OrchestratorOptions) {
    this.sql = opts.sql;
    this.serverId = opts.serverId;
    this.log = opts.log.child({ component: "orchestrator" });
    this.#opts = {
      pollMs: opts.pollMs ?? 5000,
      reapMs: opts.reapMs ?? 2000,
      flushMs: opts.flushMs ?? 1000,
      rollupMs: opts.rollupMs ?? 1000,
      probeMs: opts.probeMs ?? 10_000,
    };
    this.#listenSql = opts.listenSql ?? opts.sql;
    this.listener = this.#opts.probeMs > 0
      ? new ListenerProbe(this.sql, this.serverId, this.#opts.probeMs, this.log)
      : null;
    const track = <T>(p: Promise<T>) => this.#track(p);
    this.#notifier = new Notifier(this.sql, this.log, track);
    this.#completer = new JobCompleter({
      sql: this.sql,
      log: this.log,
      notify: (events) => this.notify(events),
      track,
      claiming: () => !this.#stopped,
    });
  }

  /** Subscribes to the channels and starts the loops. */
  async start(): Promise<void> {
    await this.loadSettings();
    const listen = async (channel: string, fn: (payload: string) => void, onListen?: () => void) => {
      const sub = await this.#listenSql.listen(channel, (p) => {
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
    await listen(AGENT_TOKENS_CHANNEL, (id) => this.#closeToken(Number(id), "token revoked"));
    await listen(AGENTS_CHANNEL, (p) => {
      const { agentId, connectionId } = JSON.parse(p) as { agentId: number; connectionId: string };
      const conn = this.#conns.get(agentId);
      if (conn && conn.connectionId !== connectionId) this.#track(this.#closeIfReplaced(conn));
    });
    const probe = this.listener;
    if (probe) {
      await listen(PROBE_CHANNEL, (p) => probe.received(p));
      await probe.tick();
      this.#every(this.#opts.probeMs, () => probe.tick());
    }
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
    const overrun = await failOverrunJobs(this.sql);
    if (overrun.length > 0) this.log.warn("failed jobs past jobs.max_runtime_seconds", { jobs: overrun });
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
   * out together in the next (see Notifier).
   */
  notify(events: Notification[]): void {
    this.#notifier.send(events);
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
   * Stores a job's result (batched with others of its region, see JobCompleter) and hands
   * the agent its next job of its region. The finished job keeps its slot until the batch
   * is back, so no dispatch pass hands the agent a second job meanwhile.
   */
  completeAndNext(conn: AgentConn, jobId: number, report: RunReport): Promise<CompleteOutcome> {
    const free = conn.capacity - conn.jobs.size + (conn.jobs.has(jobId) ? 1 : 0);
    const completed = this.#completer.complete({
      jobId,
      agentId: conn.agentId,
      region: conn.region,
      report,
      next: free > 0,
    });
    return this.#track((async () => {
      const { outcome, offer } = await completed;
      await this.#handOver(conn, jobId, offer);
      return outcome;
    })());
  }

  // The agent's part once its result is in (stored or refused): its next job sent, or the agent freed.
  async #handOver(conn: AgentConn, doneJobId: number, next: JobOffer | null): Promise<void> {
    conn.jobs.delete(doneJobId);
    if (next) {
      next = await this.#withSecrets(next);
      if (this.send(conn, next.message)) {
        conn.jobs.add(next.message.jobId);
        this.#dispatched(next);
      } else await releaseJob(this.sql, next.message.jobId, conn.agentId);
    } else {
      this.freed(conn);
    }
  }

  /** The key that opens workflows' sealed secrets for job offers (createApp() passes its own). */
  useSecretKey(key: CryptoKey): void {
    this.#secretKey = key;
  }

  // A workflow's secrets travel in its offer only, over the agent's authenticated socket. If they
  // cannot be opened (no key here, or a value sealed under another key) the offer goes without
  // them and the agent names the missing secret; the reason is logged without any value.
  async #withSecrets(offer: JobOffer): Promise<JobOffer> {
    if (!offer.sealedSecrets) return offer;
    const workflow = offer.message.workflow;
    try {
      if (!this.#secretKey) throw new Error("this process has no secret key");
      const secrets = await openSecrets(this.#secretKey, workflow.id, offer.sealedSecrets);
      return { ...offer, message: { ...offer.message, workflow: { ...workflow, secrets } } };
    } catch (err) {
      this.log.warn("a workflow's secrets could not be opened; the job runs without them", {
        jobId: offer.message.jobId,
        workflowId: workflow.id,
        reason: err instanceof Error ? err.name : "unknown",
      });
      return offer;
    }
  }

  #dispatched(offer: JobOffer): void {
    if (offer.waitedMs !== undefined) this.dispatchLatency.observe(offer.waitedMs / 1000);
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
          for (const claimed of offers) {
            const offer = await this.#withSecrets(claimed);
            const conn = this.#conns.get(offer.agentId);
            if (conn && conn.jobs.size < conn.capacity && this.send(conn, offer.message)) {
              conn.jobs.add(offer.message.jobId);
              this.#dispatched(offer);
              // The job's watchers learn it left the queue. Batched outside the claim, which
              // would otherwise become a notifying transaction and serialise its commit.
              this.notify([
                jobEventNotification({
                  jobId: offer.message.jobId,
                  status: "running",
                  agentId: offer.agentId,
                }),
              ]);
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
    if (event.progress === undefined) this.jobTransitions.inc({ status: event.status });
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

  /** Closes `conn` when its agent's row names a newer connection (registered anywhere). */
  async #closeIfReplaced(conn: AgentConn): Promise<void> {
    try {
      const current = await currentConnectionId(this.sql, conn.agentId);
      if (current !== conn.connectionId && this.#conns.get(conn.agentId) === conn) {
        this.#close(conn, CloseCode.replaced, "replaced by a newer connection of this agent");
      }
    } catch (err) {
      this.log.error("checking an agent's current connection failed", { agentId: conn.agentId, error: err });
    }
  }

  #close(conn: AgentConn, code: number, reason: string): void {
    try {
      conn.socket.close(code, reason);
    } catch { /* already closed */ }
  }
}
