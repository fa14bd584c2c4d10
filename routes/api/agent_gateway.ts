// The eval agent endpoint: one WebSocket per agent (agent/protocol.ts) and the artifact
// upload. Authentication comes before anything else; frames are bounded before they are
// buffered (agentUpgrade()); what happens on an open socket is lib/agent_session.ts, where a
// bad frame closes only its own socket.
import { Hono } from "hono";
import { setImmediate } from "node:timers";
import { WebSocketServer } from "ws";
import { CloseCode, HELLO_TIMEOUT_MS, MAX_FRAME_BYTES } from "../../agent/protocol.ts";
import { type AgentTokenAuth, verifyAgentToken } from "../../lib/agent_tokens.ts";
import { AgentSession, REFUSAL } from "../../lib/agent_session.ts";
import type { AppEnv } from "../../lib/context.ts";
import type { AgentSocket, Orchestrator } from "../../lib/orchestrator.ts";
import { type UpgradeHandler, writeRawResponse } from "../../lib/http_server.ts";
import { errorBody, HttpError } from "../../lib/errors.ts";
import { type ArtifactLimits, storeArtifact } from "../../lib/artifacts.ts";
import { type ArtifactStore, audioStoreOf } from "../../lib/artifact_store.ts";
import { jobClipBytes } from "../../lib/audio.ts";
import { doc } from "../../lib/openapi.ts";

doc({
  method: "get",
  path: "/api/agent/ws",
  summary:
    "The eval agent WebSocket (messages in agent/protocol.ts); the token in the Authorization header, " +
    "401 without it or for a bad one (details.reason says why), 426 without Upgrade",
  tag: "agents",
  auth: "agent",
  status: 101,
  errors: [426],
});
doc({
  method: "put",
  path: "/api/agent/jobs/{jobId}/artifacts/{name}",
  summary:
    "Upload a recording (recording-<n>.wav) of a job the agent holds, streamed to the artifact store; 201 stored, 200 already stored, 409 not held or too many, 413 over the size or job total",
  tag: "agents",
  auth: "agent",
  status: 201,
  errors: [409, 413, 503],
  produces: "application/json",
});

doc({
  method: "get",
  path: "/api/agent/jobs/{jobId}/audio/{sha256}",
  summary:
    "Fetch an audio clip by SHA-256 for a job the agent holds: only clips the job's offer carries; 409 when the job is not held",
  tag: "agents",
  auth: "agent",
  errors: [409],
  produces: "application/octet-stream",
});

/** Routes under /api/agent: the WebSocket, artifact uploads and the jobs' audio clips. */
export function agentGateway(orch: Orchestrator, store: ArtifactStore, limits: ArtifactLimits) {
  const app = new Hono<AppEnv>();
  const audioStore = audioStoreOf(store);

  app.get("/ws", (c) => {
    return answerAgentRequest(orch, c.req.raw);
  });

  // No body limit middleware: storeArtifact() reads the body as a stream and stops at the
  // per-artifact and per-job bounds, with the Content-Length checked first.
  app.put("/jobs/:jobId/artifacts/:name", async (c) => {
    const check = await verifyAgentToken(orch.sql, bearer(c.req.header("authorization") ?? ""));
    if (!check.ok) {
      throw new HttpError(401, "unauthorized", `Cannot upload: ${REFUSAL[check.reason].message}`);
    }
    const jobId = Number(c.req.param("jobId"));
    const name = c.req.param("name");
    if (!Number.isSafeInteger(jobId) || jobId <= 0) {
      throw new HttpError(400, "bad_request", "jobId: not a job id");
    }
    const kind = c.req.header("x-vox-artifact-kind") ?? "recording";
    if (kind !== "recording") {
      throw new HttpError(400, "bad_request", "X-Vox-Artifact-Kind: only recording artifacts are accepted");
    }
    const length = c.req.header("content-length");
    const declaredBytes = length !== undefined && /^\d{1,15}$/.test(length) ? Number(length) : null;
    const stored = await storeArtifact(orch.sql, store, limits, {
      jobId,
      tokenId: check.token.id,
      name,
      declaredBytes,
      body: c.req.raw.body,
    });
    return c.json(
      { jobId, name, sizeBytes: stored.sizeBytes, stored: stored.stored === "created" },
      stored.stored === "created" ? 201 : 200,
    );
  });

  app.get("/jobs/:jobId/audio/:sha256", async (c) => {
    const check = await verifyAgentToken(orch.sql, bearer(c.req.header("authorization") ?? ""));
    if (!check.ok) {
      throw new HttpError(401, "unauthorized", `Cannot fetch audio: ${REFUSAL[check.reason].message}`);
    }
    const jobId = Number(c.req.param("jobId"));
    const sha256 = c.req.param("sha256");
    if (!Number.isSafeInteger(jobId) || jobId <= 0) {
      throw new HttpError(400, "bad_request", "jobId: not a job id");
    }
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new HttpError(400, "bad_request", "sha256: 64 hex digits");
    const clip = await jobClipBytes(orch.sql, audioStore, { jobId, tokenId: check.token.id, sha256 });
    if (clip === "not_held") {
      throw new HttpError(409, "job_not_held", `Job ${jobId} is not running on an agent of this token`);
    }
    if (!clip) throw new HttpError(404, "not_found", `Job ${jobId} carries no clip ${sha256}`);
    return c.body(clip.body, 200, {
      "Content-Type": "application/octet-stream",
      "Content-Length": String(clip.bytes),
      "X-Content-Type-Options": "nosniff",
    });
  });

  return app;
}

// The part of a ws server socket agentUpgrade() reaches into (see there).
interface WsInternals {
  _receiver?: { prependListener?(event: "error", listener: (err: { code?: string }) => void): void };
}

/** Closing handshake wait after the server closes a socket: a peer still sending is dropped then. */
const CLOSE_TIMEOUT_MS = 5_000;

/**
 * Checks an agent's upgrade request. The token must come in the Authorization header: without
 * one, or with a bad one, the answer is 401 at once, before any socket exists, and its body
 * says why (`details.reason`: malformed, unknown, revoked, expired; `details.closeCode`: the
 * close code a socket would have had), which is how the daemon learns a refused token's
 * reason. The token is checked before the Upgrade header, so a plain GET with the token is 426
 * exactly when the token is good.
 */
export async function checkAgentUpgrade(
  orch: Orchestrator,
  req: Request,
): Promise<{ ok: true; token: AgentTokenAuth } | { ok: false; response: Response }> {
  const check = await verifyAgentToken(orch.sql, bearer(req.headers.get("authorization") ?? ""));
  if (!check.ok) {
    const refusal = REFUSAL[check.reason];
    return {
      ok: false,
      response: Response.json(
        errorBody("unauthorized", `Cannot connect: ${refusal.message}`, {
          reason: check.reason,
          closeCode: refusal.code,
        }),
        { status: 401, headers: { "www-authenticate": 'Bearer realm="vox-agent"' } },
      ),
    };
  }
  if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return {
      ok: false,
      response: Response.json(
        errorBody("upgrade_required", "This endpoint speaks WebSocket only (agent/protocol.ts)"),
        { status: 426 },
      ),
    };
  }
  return { ok: true, token: check.token };
}

/**
 * The answer to a request for the agent socket that is not an upgrade the listener took over
 * (lib/http_server.ts hands real upgrades to agentUpgrade()): 401 for a missing or bad token,
 * else 426. Plain Request → Response so main.ts can route it ahead of the app's middleware.
 */
export async function answerAgentRequest(orch: Orchestrator, req: Request): Promise<Response> {
  const checked = await checkAgentUpgrade(orch, req);
  return checked.ok
    ? Response.json(
      errorBody("upgrade_required", "This endpoint speaks WebSocket only (agent/protocol.ts)"),
      { status: 426 },
    )
    : checked.response;
}

/**
 * Takes over agent upgrades on the raw connection: the token is checked first (401 or 426 as
 * checkAgentUpgrade() says, no socket), then the ws library completes the handshake. It reads
 * each frame's length from the frame header and, past MAX_FRAME_BYTES (or past it summed over
 * a fragmented message), closes the socket with 1009 without reading the payload into memory:
 * the bytes the peer goes on sending are discarded until the connection ends, at most
 * CLOSE_TIMEOUT_MS later.
 */
export function agentUpgrade(orch: Orchestrator): UpgradeHandler {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_FRAME_BYTES,
    perMessageDeflate: false,
    clientTracking: false,
    closeTimeout: CLOSE_TIMEOUT_MS,
  });
  return async (req, incoming, socket, head) => {
    const checked = await checkAgentUpgrade(orch, req);
    if (!checked.ok) return await writeRawResponse(socket, checked.response);
    wss.handleUpgrade(incoming, socket, head, (ws: AgentSocket & WsInternals) => {
      // On a frame it refuses (over maxPayload, or any other protocol error) ws sends a bare
      // close code, then reads and discards whatever the peer still sends until the closing
      // handshake times out: measured, a peer streaming on raised RSS by as much as it sent
      // (~60 MiB in under a second on loopback). Here the oversize close goes first with the
      // protocol's reason, and the socket stops reading once ws has set it flowing to discard
      // (the close frame still goes out; the kernel's receive buffer then holds the peer back
      // until CLOSE_TIMEOUT_MS). The receiver is internal to ws (pinned in deno.json): without
      // it the bare 1009 still holds and only the reason and the pause are lost.
      ws._receiver?.prependListener?.("error", (err: { code?: string }) => {
        if (err.code === "WS_ERR_UNSUPPORTED_MESSAGE_LENGTH") {
          ws.close(CloseCode.tooLarge, `frame larger than ${MAX_FRAME_BYTES} bytes`);
        }
        setImmediate(() => socket.pause());
      });
      new AgentSession(orch, ws, checked.token, HELLO_TIMEOUT_MS);
    });
  };
}

function bearer(header: string): string | null {
  return /^Bearer\s+(\S+)$/i.exec(header)?.[1] ?? null;
}
