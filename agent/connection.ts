/**
 * The daemon's side of the agent socket (agent/protocol.ts): connect with the token, say
 * hello, heartbeat at the interval the server gives, and reconnect with jittered
 * exponential backoff whenever the socket goes away — except after a close that says
 * reconnecting with this token cannot help (revoked token, wrong region, replaced).
 */
import {
  AGENT_WS_PATH,
  type AgentMessageInput,
  CloseCode,
  parseServerMessage,
  PROTOCOL_VERSION,
  type ServerMessage,
} from "./protocol.ts";

export type Registered = Extract<ServerMessage, { type: "registered" }>;

/** Closes after which the same token and name would be refused again. */
const FINAL_CLOSES = new Set<number>([
  CloseCode.unauthorized,
  CloseCode.tokenInvalid,
  CloseCode.wrongRegion,
  CloseCode.replaced,
  CloseCode.badMessage,
  CloseCode.unknownType,
  CloseCode.tooLarge,
]);

/** Backoff before reconnect attempt `attempt` (0-based): "full jitter", uniform in [base, min(cap, base·2^n)]. */
export function backoffDelay(attempt: number, baseMs: number, capMs: number, random = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(baseMs + random() * Math.max(0, ceiling - baseMs));
}

export interface ConnectionOptions {
  /** http(s):// or ws(s):// base URL of the Vox server. */
  serverUrl: string;
  token: string;
  name: string;
  region: string;
  /** Jobs the agent accepts at once; read for hello and every heartbeat (it may change). */
  capacity: number | (() => number);
  version: string;
  /** Jobs the agent holds right now, for hello and every heartbeat. */
  activeJobs: () => number[];
  /** Every valid frame from the server, registered included. */
  onMessage: (message: ServerMessage) => void;
  /** The socket closed (the connection reconnects by itself unless `final`). */
  onClose?: (info: { code: number; reason: string; final: boolean }) => void;
  /** Diagnostics. */
  log?: (level: "info" | "warn" | "error", message: string, fields?: Record<string, unknown>) => void;
  backoffBaseMs?: number;
  backoffCapMs?: number;
}

/**
 * One logical connection to the server that survives restarts and network drops. Frames
 * are sent only while registered; `send()` says whether a frame left, so callers keep
 * what they could not send and retry after the next `registered`.
 */
export class AgentConnection {
  #socket: WebSocket | null = null;
  #registered: Registered | null = null;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #attempt = 0;
  #stopped = false;
  #stalledSince = 0;
  #final: { code: number; reason: string } | null = null;
  #finalWaiters: ((info: { code: number; reason: string }) => void)[] = [];

  constructor(readonly opts: ConnectionOptions) {}

  /** The current registration, or null while (re)connecting. */
  get registered(): Registered | null {
    return this.#registered;
  }

  /** Set when the server refused the agent for good (bad or revoked token, wrong region…). */
  get finalClose(): { code: number; reason: string } | null {
    return this.#final;
  }

  /** Resolves when the connection gives up for good (a final close), never after stop(). */
  untilFinal(): Promise<{ code: number; reason: string }> {
    if (this.#final) return Promise.resolve(this.#final);
    return new Promise((resolve) => this.#finalWaiters.push(resolve));
  }

  /** Opens the first socket; later ones open by themselves. */
  start(): void {
    this.#stopped = false;
    this.#open();
  }

  /** Sends a frame if registered; false when it could not leave (keep it and retry later). */
  send(message: AgentMessageInput): boolean {
    const ws = this.#socket;
    if (!ws || !this.#registered || ws.readyState !== WebSocket.OPEN) return false;
    try {
      ws.send(JSON.stringify(message));
      return true;
    } catch {
      return false;
    }
  }

  /** Closes the socket for good (normal close); no reconnect. */
  stop(reason = "agent shutting down"): void {
    this.#stopped = true;
    clearTimeout(this.#retry);
    clearInterval(this.#heartbeat);
    this.#registered = null;
    try {
      this.#socket?.close(CloseCode.normal, reason);
    } catch { /* already closed */ }
    this.#socket = null;
  }

  /**
   * Gives up the current socket and reconnects at once. The old socket is abandoned rather
   * than closed politely: on a dead network its close handshake would never finish, and
   * its close event might come only when TCP gives up, many minutes later.
   */
  drop(): void {
    const ws = this.#socket;
    if (!ws || this.#stopped) return;
    this.#socket = null;
    this.#registered = null;
    clearInterval(this.#heartbeat);
    try {
      ws.close(4000, "agent dropped the connection");
    } catch { /* already closed */ }
    this.opts.onClose?.({ code: 4000, reason: "dropped by the agent", final: false });
    this.#attempt = 0;
    this.#open();
  }

  #log(level: "info" | "warn" | "error", message: string, fields?: Record<string, unknown>) {
    this.opts.log?.(level, message, fields);
  }

  #url(): string {
    const base = this.opts.serverUrl.replace(/\/+$/, "").replace(/^http/, "ws");
    return base + AGENT_WS_PATH;
  }

  #open(): void {
    if (this.#stopped) return;
    const o = this.opts;
    let ws: WebSocket;
    // The token travels on the upgrade (Deno's WebSocket takes headers); the server opens no
    // socket without it. A refused upgrade (HTTP 401) looks here like a server that is down,
    // so a connect that never opened is followed by one plain request with the token
    // (#refusal()): its 401 body says why, which ends the daemon with that reason instead of
    // retrying a dead token forever.
    let opened = false;
    try {
      ws = new WebSocket(
        this.#url(),
        { headers: { authorization: `Bearer ${o.token}` } } as unknown as string[],
      );
    } catch (err) {
      this.#log("error", "cannot open the agent socket", { error: (err as Error).message });
      this.#scheduleReconnect();
      return;
    }
    this.#socket = ws;
    ws.onopen = () => {
      opened = true;
      ws.send(JSON.stringify(
        {
          type: "hello",
          protocol: PROTOCOL_VERSION,
          name: o.name,
          region: o.region,
          version: o.version,
          capacity: this.#capacity(),
          activeJobs: o.activeJobs(),
        } satisfies AgentMessageInput,
      ));
    };
    ws.onmessage = (e) => {
      if (ws !== this.#socket) return;
      const parsed = parseServerMessage(e.data);
      if (!parsed.ok) {
        this.#log("warn", "ignored an invalid frame from the server", { reason: parsed.reason });
        return;
      }
      const m = parsed.message;
      if (m.type === "registered") {
        this.#registered = m;
        this.#attempt = 0;
        this.#stalledSince = 0;
        clearInterval(this.#heartbeat);
        this.#heartbeat = setInterval(() => this.#beat(ws), m.heartbeatIntervalMs);
        this.#log("info", "registered", {
          agentId: m.agentId,
          region: m.region,
          resumed: m.resumed,
          dropped: m.dropped,
        });
      }
      o.onMessage(m);
    };
    ws.onerror = () => {};
    ws.onclose = (e) => {
      if (ws !== this.#socket) return;
      this.#socket = null;
      this.#registered = null;
      clearInterval(this.#heartbeat);
      if (opened || this.#stopped) return this.#ended(e.code, e.reason, opened);
      // Never opened: a refused token or a server that is not there. Ask which.
      this.#refusal().then((refused) => {
        if (this.#socket !== null) return;
        if (refused) this.#ended(refused.code, refused.reason, false);
        else this.#ended(e.code, e.reason, false);
      });
    };
  }

  /** After a socket ended: give up for good on a final close, else reconnect with backoff. */
  #ended(code: number, reason: string, opened: boolean): void {
    const final = FINAL_CLOSES.has(code);
    this.opts.onClose?.({ code, reason, final });
    if (this.#stopped) return;
    if (final) {
      this.#final = { code, reason };
      this.#log("error", "the server refused this agent; not reconnecting", { code, reason });
      for (const w of this.#finalWaiters.splice(0)) w(this.#final);
      return;
    }
    const inMs = this.#scheduleReconnect();
    this.#log("warn", opened ? "connection lost; reconnecting" : "cannot reach the server; retrying", {
      code,
      reason,
      inMs,
    });
  }

  /**
   * Whether the server refuses this agent's token, and why: a plain GET of the socket path with
   * the token answers 401 with the reason (`details.closeCode`, the message) when it does, 426
   * when the token is good; anything else (down, a proxy's 502) is not a refusal.
   */
  async #refusal(): Promise<{ code: number; reason: string } | null> {
    try {
      const res = await fetch(this.#url().replace(/^ws/, "http"), {
        headers: { authorization: `Bearer ${this.opts.token}` },
        signal: AbortSignal.timeout(10_000),
      });
      const body = await res.json().catch(() => null) as
        | { error?: { message?: string; details?: { closeCode?: number } } }
        | null;
      if (res.status !== 401) return null;
      const code = body?.error?.details?.closeCode;
      return {
        code: code === CloseCode.tokenInvalid ? CloseCode.tokenInvalid : CloseCode.unauthorized,
        reason: (body?.error?.message ?? "agent token refused").replace(/^Cannot connect: /, ""),
      };
    } catch {
      return null;
    }
  }

  #beat(ws: WebSocket): void {
    if (ws !== this.#socket || ws.readyState !== WebSocket.OPEN) return;
    // A socket whose frames stop leaving (a silent network drop) never closes by itself:
    // when the send buffer has not drained for two intervals, give it up and reconnect.
    if (ws.bufferedAmount > 0) {
      this.#stalledSince ||= Date.now();
      if (Date.now() - this.#stalledSince > 2 * (this.#registered?.heartbeatIntervalMs ?? 10_000)) {
        this.#log("warn", "socket stalled; reconnecting");
        this.drop();
        return;
      }
    } else this.#stalledSince = 0;
    this.send({ type: "heartbeat", activeJobs: this.opts.activeJobs(), capacity: this.#capacity() });
  }

  #capacity(): number {
    const c = this.opts.capacity;
    return typeof c === "function" ? c() : c;
  }

  #scheduleReconnect(): number {
    if (this.#stopped) return 0;
    const delay = backoffDelay(
      this.#attempt++,
      this.opts.backoffBaseMs ?? 500,
      this.opts.backoffCapMs ?? 30_000,
    );
    clearTimeout(this.#retry);
    this.#retry = setTimeout(() => this.#open(), delay);
    return delay;
  }
}
