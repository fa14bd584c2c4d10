// Simulated eval agents: real WebSocket clients speaking agent/protocol.ts, running no
// browser. The bench drives thousands of them; the orchestration tests import them from here
// (tests/ may import bench/, never the other way round).
import {
  AGENT_WS_PATH,
  type AgentMessageInput,
  parseServerMessage,
  PROTOCOL_VERSION,
  type RunReport,
  type ServerMessage,
} from "../agent/protocol.ts";
// ws (already in deno.lock through puppeteer-core) sets TCP_NODELAY on its sockets; Deno's
// WebSocket client does not, so two frames sent back to back (job.accepted, then an
// instant job.result) wait for the server's delayed ACK: ~40 ms per job in the bench.
import NodeWebSocket from "ws";

export type Offer = Extract<ServerMessage, { type: "job.offer" }>;
export type Registered = Extract<ServerMessage, { type: "registered" }>;

export interface SimOptions {
  /** Server base URL, http://host:port. */
  baseUrl: string;
  token: string;
  name: string;
  region: string;
  capacity?: number;
  /** Jobs to report as still running (after a reconnect). */
  activeJobs?: number[];
  /** Answer offers by itself: accept, then send a result after `resultDelayMs` (default true). */
  auto?: boolean;
  resultDelayMs?: number;
  /** Called for each offer before the automatic handling (e.g. to record timing). */
  onOffer?: (offer: Offer, agent: SimAgent) => void;
  /** Send heartbeats at the interval the server asks for (default true). */
  heartbeat?: boolean;
  /** Reconnect after the server closes with 1012/1006 (default false). */
  reconnect?: boolean;
  /**
   * The WebSocket client: Deno's (default) or `ws`, which sets TCP_NODELAY. The bench's
   * agents answer an offer with two frames at once, which Deno's client holds back for the
   * peer's delayed ACK (Nagle): ~40 ms a job, a limit of the simulation, not of the server.
   */
  client?: "deno" | "ws";
}

/** A result report in the run-mode format with one response turn of `latency` ms. */
export function sampleReport(latency = 800): RunReport {
  return {
    metrics: {
      response_latency: { median: latency, sd: 12.5, p90: latency + 40, n: 3 },
      interrupt_latency: { median: latency / 2, sd: 8, p90: latency / 2 + 20, n: 2 },
      network_resilience: 90,
      noise_reduction: 80,
      naturalness: 70,
    },
    turns: [{ kind: "response", latency_ms: latency, ok: true }],
    methods: { response_latency: "sim/1" },
  };
}

/** The close of a socket: code and reason. */
export interface CloseInfo {
  code: number;
  reason: string;
}

// Closes after which reconnecting with the same token and name cannot help.
const FINAL_CLOSE_CODES = new Set([4001, 4002, 4003, 4009, 4400, 4404, 1009]);

export class SimAgent {
  socket!: WebSocket;
  registered: Registered | null = null;
  readonly offers: Offer[] = [];
  readonly messages: ServerMessage[] = [];
  /** Jobs offered and not finished, as the agent would list them in heartbeats. */
  readonly active = new Set<number>();
  readonly completed: number[] = [];
  closeInfo: CloseInfo | null = null;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #waiters: { pred: (m: ServerMessage) => boolean; resolve: (m: ServerMessage) => void }[] = [];
  #killed = false;
  #closed: Promise<CloseInfo> = Promise.resolve({ code: 0, reason: "" });

  constructor(readonly opts: SimOptions) {}

  /** Connects and resolves once registered; rejects with the close info when refused. */
  static async connect(opts: SimOptions): Promise<SimAgent> {
    const agent = new SimAgent(opts);
    await agent.open();
    return agent;
  }

  /** Resolves when the socket closes. */
  get closed(): Promise<CloseInfo> {
    return this.#closed;
  }

  async open(): Promise<void> {
    const o = this.opts;
    const url = o.baseUrl.replace(/^http/, "ws") + AGENT_WS_PATH;
    // Deno's WebSocket accepts headers (not part of the browser API).
    // The token travels on the upgrade: the server opens no socket without it.
    const init = { headers: { authorization: `Bearer ${o.token}` } };
    const ws = o.client === "ws"
      ? new NodeWebSocket(url, init) as unknown as WebSocket
      : new WebSocket(url, init as unknown as string[]);
    this.socket = ws;
    let settle!: { resolve: () => void; reject: (e: Error) => void };
    const ready = new Promise<void>((resolve, reject) => settle = { resolve, reject });
    this.#closed = new Promise<CloseInfo>((resolve) => {
      ws.onclose = (e) => {
        clearInterval(this.#heartbeat);
        this.closeInfo = { code: e.code, reason: e.reason };
        settle.reject(new Error(`closed ${e.code} ${e.reason}`));
        resolve(this.closeInfo);
        if (o.reconnect && !this.#killed && !FINAL_CLOSE_CODES.has(e.code)) this.#reconnectLater();
      };
    });
    ws.onerror = () => {};
    ws.onopen = () => {
      this.send({
        type: "hello",
        protocol: PROTOCOL_VERSION,
        name: o.name,
        region: o.region,
        version: "sim",
        capacity: o.capacity ?? 1,
        activeJobs: [...(o.activeJobs ?? this.active)],
      });
    };
    ws.onmessage = (e) => {
      const parsed = parseServerMessage(e.data);
      if (!parsed.ok) throw new Error(`server sent an invalid frame: ${parsed.reason}`);
      const m = parsed.message;
      this.messages.push(m);
      if (m.type === "registered") {
        this.registered = m;
        for (const id of m.dropped) this.active.delete(id);
        if (o.heartbeat ?? true) {
          this.#heartbeat = setInterval(
            () => this.send({ type: "heartbeat", activeJobs: [...this.active] }),
            m.heartbeatIntervalMs,
          );
        }
        settle.resolve();
        for (const id of m.resumed) if (o.auto ?? true) this.#finishLater(id);
      } else if (m.type === "job.offer") {
        this.offers.push(m);
        this.active.add(m.jobId);
        o.onOffer?.(m, this);
        if (o.auto ?? true) {
          this.send({ type: "job.accepted", jobId: m.jobId });
          this.#finishLater(m.jobId);
        }
      } else if (m.type === "job.cancel") {
        this.active.delete(m.jobId);
      } else if (m.type === "job.ack") {
        this.active.delete(m.jobId);
        if (m.status === "completed") this.completed.push(m.jobId);
      } else if (m.type === "error" && m.jobId) {
        this.active.delete(m.jobId);
      }
      this.#waiters = this.#waiters.filter((w) => {
        if (!w.pred(m)) return true;
        w.resolve(m);
        return false;
      });
    };
    await ready;
  }

  #finishLater(jobId: number): void {
    const delay = this.opts.resultDelayMs ?? 0;
    const finish = () => {
      if (this.#killed || !this.active.has(jobId)) return;
      this.result(jobId);
    };
    if (delay > 0) setTimeout(finish, delay);
    else queueMicrotask(finish);
  }

  // One reconnect loop at a time: a failed attempt also fires onclose, which must not start a
  // second loop (that doubled the attempts every 100 ms and flooded a restarting server).
  #reconnecting = false;

  #reconnectLater(): void {
    if (this.#reconnecting) return;
    this.#reconnecting = true;
    const loop = async () => {
      // Bounded (60 s) so a forgotten agent cannot keep a test process busy forever.
      for (let n = 0; n < 600 && !this.#killed; n++) {
        try {
          await this.open();
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      this.#reconnecting = false;
    };
    setTimeout(loop, 50);
  }

  send(message: AgentMessageInput | Record<string, unknown>): void {
    if (this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  /**
   * Sends a result for a job (the sample report unless given). The job stays in `active`
   * until the server acknowledges it, so after a reconnect it is resumed and sent again.
   */
  result(jobId: number, report: RunReport = sampleReport()): void {
    this.send({ type: "job.result", jobId, report, artifacts: [] });
  }

  /** Resolves with the first later message matching `pred`, or rejects after `timeoutMs`. */
  waitFor(pred: (m: ServerMessage) => boolean, timeoutMs = 10_000): Promise<ServerMessage> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no matching message within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.#waiters.push({
        pred,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
    });
  }

  /** The first message matching `pred`, already received or still to come. */
  seen(pred: (m: ServerMessage) => boolean, timeoutMs = 10_000): Promise<ServerMessage> {
    const past = this.messages.find(pred);
    return past ? Promise.resolve(past) : this.waitFor(pred, timeoutMs);
  }

  /** Like a killed process: heartbeats stop, nothing more is sent, the socket drops. */
  kill(): Promise<CloseInfo> {
    this.#killed = true;
    clearInterval(this.#heartbeat);
    try {
      this.socket.close();
    } catch { /* gone */ }
    return this.#closed;
  }
}
