// One eval agent's socket from hello to close: registration, then the job messages of
// agent/protocol.ts, handled in order. The HTTP side (upgrade, token check) is
// routes/api/agent_gateway.ts.
import {
  type AgentMessage,
  CloseCode,
  HELLO_TIMEOUT_MS,
  parseAgentMessage,
  PROTOCOL_VERSION,
} from "../agent/protocol.ts";
import type { AgentTokenAuth, TokenCheck } from "./agent_tokens.ts";
import { markAgentDisconnected, registerAgent } from "./agents.ts";
import type { AgentConn, AgentSocket, Orchestrator } from "./orchestrator.ts";
import { retrying } from "./db.ts";
import { failJob, recordProgress, releaseJob } from "./queue.ts";

/** Why an agent token is refused: the close code for the socket and the message for people. */
export const REFUSAL: Record<Exclude<TokenCheck, { ok: true }>["reason"], { code: number; message: string }> =
  {
    malformed: { code: CloseCode.unauthorized, message: "agent token is missing or malformed" },
    unknown: { code: CloseCode.unauthorized, message: "agent token is not known" },
    revoked: { code: CloseCode.tokenInvalid, message: "agent token was revoked" },
    expired: { code: CloseCode.tokenInvalid, message: "agent token has expired" },
  };

/** One agent socket from open to close: hello, then jobs. Frames are handled in order. */
export class AgentSession {
  #conn: AgentConn | null = null;
  #queue: Promise<void> = Promise.resolve();
  #helloTimer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(
    readonly orch: Orchestrator,
    /** Open already (the ws library hands sockets over after the handshake). */
    readonly socket: AgentSocket,
    /** Checked at the upgrade (routes/api/agent_gateway.ts): no socket opens without one. */
    readonly token: AgentTokenAuth,
    helloTimeoutMs = HELLO_TIMEOUT_MS,
  ) {
    this.#helloTimer = setTimeout(
      () => this.close(CloseCode.badMessage, "no hello within the timeout"),
      helloTimeoutMs,
    );
    socket.onmessage = (e) => {
      if (this.#closed) return;
      // A message over MAX_FRAME_BYTES never gets here: the ws library closes the socket with
      // 1009 from the frame header (routes/api/agent_gateway.ts). parseAgentMessage() checks
      // the size again so the rule holds whatever delivers the frame.
      const parsed = parseAgentMessage(e.data);
      if (!parsed.ok) return this.close(parsed.code, parsed.reason);
      if (this.#conn) orch.touch(this.#conn);
      this.#queue = this.#queue.then(() => this.#closed ? undefined : this.#handle(parsed.message)).catch(
        (err) => {
          orch.log.error("agent message failed", { agentId: this.#conn?.agentId, error: err });
          this.close(1011, "internal error");
        },
      );
    };
    socket.onclose = () => {
      this.#closed = true;
      clearTimeout(this.#helloTimer);
      const conn = this.#conn;
      if (conn && orch.unregister(conn)) {
        markAgentDisconnected(orch.sql, conn.agentId, conn.connectionId).catch((err) =>
          orch.log.warn("could not mark agent offline", { agentId: conn.agentId, error: err })
        );
      }
    };
    socket.onerror = () => {};
  }

  close(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.socket.close(code, reason);
    } catch { /* already closing */ }
  }

  #error(code: string, message: string, jobId?: number): void {
    if (this.#conn) this.orch.send(this.#conn, { type: "error", code, message, jobId, fatal: false });
  }

  async #handle(msg: AgentMessage): Promise<void> {
    if (msg.type === "hello") return await this.#hello(msg);
    const conn = this.#conn;
    if (!conn) return this.close(CloseCode.badMessage, "the first message must be hello");
    const sql = this.orch.sql;
    switch (msg.type) {
      case "heartbeat":
        // An agent on an overloaded host lowers the jobs it accepts, and raises them again.
        if (msg.capacity !== undefined && msg.capacity !== conn.capacity) {
          const more = msg.capacity > conn.capacity;
          conn.capacity = msg.capacity;
          if (more) this.orch.freed(conn);
        }
        return;
      case "job.accepted":
        if (conn.jobs.has(msg.jobId)) this.orch.accepted(conn, msg.jobId);
        else this.#error("job_not_held", `job ${msg.jobId} is not assigned to this agent`, msg.jobId);
        return;
      case "job.rejected":
        conn.jobs.delete(msg.jobId);
        // Paused before the release announces the job, so the decliner is not offered it again.
        conn.pausedUntil = Date.now() + 2000;
        await releaseJob(sql, msg.jobId, conn.agentId);
        this.orch.freed(conn, 2000);
        return;
      case "job.progress":
        if (
          !(await recordProgress(sql, msg.jobId, conn.agentId, {
            step: msg.step,
            totalSteps: msg.totalSteps,
            message: msg.message,
            ...(msg.turn ? { turn: msg.turn } : {}),
          }))
        ) this.#error("job_not_held", `job ${msg.jobId} is not running on this agent`, msg.jobId);
        return;
      case "job.result": {
        // The ack goes out after the next offer: the agent learns of both at once anyway.
        const outcome = await this.orch.completeAndNext(conn, msg.jobId, msg.report);
        if (outcome.ok) {
          this.orch.send(conn, {
            type: "job.ack",
            jobId: msg.jobId,
            status: "completed",
            duplicate: outcome.duplicate,
          });
        } else {
          this.#error(
            "job_not_held",
            `result for job ${msg.jobId} refused: the job is ${
              outcome.status ?? "unknown"
            } and not held by this agent`,
            msg.jobId,
          );
        }
        return;
      }
      case "job.failed": {
        conn.jobs.delete(msg.jobId);
        const status = await retrying(() => failJob(sql, msg.jobId, conn.agentId, msg.reason, msg.retryable));
        if (status === "pending" || status === "failed") {
          this.orch.send(conn, { type: "job.ack", jobId: msg.jobId, status, duplicate: false });
        } else this.#error("job_not_held", `job ${msg.jobId} is not running on this agent`, msg.jobId);
        this.orch.freed(conn);
        return;
      }
    }
  }

  async #hello(msg: Extract<AgentMessage, { type: "hello" }>): Promise<void> {
    if (this.#conn) return this.close(CloseCode.badMessage, "hello sent twice");
    clearTimeout(this.#helloTimer);
    // The upgrade's token decides; a token in hello (older agents sent one) is not consulted.
    const token = this.token;
    if (msg.region !== token.region) {
      return this.close(CloseCode.wrongRegion, `token is for region ${token.region}, not ${msg.region}`);
    }
    if (msg.protocol !== PROTOCOL_VERSION) {
      return this.close(CloseCode.badMessage, "unsupported protocol version");
    }
    const connectionId = crypto.randomUUID();
    const reg = await registerAgent(this.orch.sql, {
      tokenId: token.id,
      name: msg.name,
      region: token.region,
      version: msg.version,
      capacity: msg.capacity,
      serverId: this.orch.serverId,
      connectionId,
      expiresAt: token.expiresAt,
      activeJobs: msg.activeJobs,
    });
    const conn: AgentConn = {
      agentId: reg.agentId,
      connectionId,
      tokenId: token.id,
      tokenExpiresAt: token.expiresAt ? token.expiresAt.getTime() : null,
      name: msg.name,
      region: token.region,
      capacity: msg.capacity,
      socket: this.socket,
      jobs: new Set(reg.resumed),
      lastSeen: Date.now(),
      pausedUntil: 0,
    };
    this.orch.notify(reg.notifications);
    if (this.#closed) {
      await markAgentDisconnected(this.orch.sql, conn.agentId, connectionId);
      return;
    }
    this.#conn = conn;
    this.orch.send(conn, {
      type: "registered",
      agentId: reg.agentId,
      region: token.region,
      serverId: this.orch.serverId,
      heartbeatIntervalMs: this.orch.heartbeatIntervalMs,
      resumed: reg.resumed,
      dropped: reg.dropped,
    });
    this.orch.register(conn);
  }
}
