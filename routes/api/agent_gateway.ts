// The eval agent endpoint: one WebSocket per agent (agent/protocol.ts) and the artifact
// upload. Authentication comes before anything else; what happens on an open socket is
// lib/agent_session.ts, where a bad frame closes only its own socket.
import { Hono } from "hono";
import { getConnInfo } from "hono/deno";
import { HELLO_TIMEOUT_MS } from "../../agent/protocol.ts";
import { type AgentTokenAuth, verifyAgentToken } from "../../lib/agent_tokens.ts";
import { AgentSession, REFUSAL } from "../../lib/agent_session.ts";
import type { AppEnv } from "../../lib/context.ts";
import type { Orchestrator } from "../../lib/orchestrator.ts";
import { errorBody, HttpError } from "../../lib/errors.ts";
import { type ArtifactLimits, storeArtifact } from "../../lib/artifacts.ts";
import type { ArtifactStore } from "../../lib/artifact_store.ts";
import { doc } from "../../lib/openapi.ts";

doc({
  method: "get",
  path: "/api/agent/ws",
  summary:
    "The eval agent WebSocket (messages in agent/protocol.ts); 401 for a bad token, 426 without Upgrade",
  tag: "agents",
  auth: "agent",
  status: 101,
  errors: [426, 503],
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

/** Routes under /api/agent: the WebSocket and artifact uploads. */
export function agentGateway(orch: Orchestrator, store: ArtifactStore, limits: ArtifactLimits) {
  const app = new Hono<AppEnv>();

  app.get("/ws", (c) => {
    let peer = "unknown";
    try {
      peer = getConnInfo(c).remote.address ?? "unknown";
    } catch { /* not from a socket (in-process requests) */ }
    return acceptAgentSocket(orch, c.req.raw, peer);
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

  return app;
}

/**
 * Upgrades an agent's request to the protocol socket, refusing a bad Authorization header
 * with 401 before any socket exists. Without the header the token comes in hello; such
 * sockets pass the orchestrator's HelloGate (few in all, few per peer address, a short
 * hello timeout) or are refused at once with 503. Plain Request → Response so main.ts can
 * route agent sockets ahead of the app's middleware (each idle agent then carries nothing
 * of it). `peer` is the socket's remote address.
 */
export async function acceptAgentSocket(orch: Orchestrator, req: Request, peer: string): Promise<Response> {
  if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return Response.json(
      errorBody("upgrade_required", "This endpoint speaks WebSocket only (agent/protocol.ts)"),
      { status: 426 },
    );
  }
  let token: AgentTokenAuth | null = null;
  const auth = req.headers.get("authorization");
  if (auth !== null) {
    const check = await verifyAgentToken(orch.sql, bearer(auth));
    if (!check.ok) {
      return Response.json(
        errorBody("unauthorized", `Cannot connect: ${REFUSAL[check.reason].message}`),
        { status: 401 },
      );
    }
    token = check.token;
  }
  let leave: () => void = () => {};
  if (!token) {
    const place = orch.helloGate.enter(peer);
    if (!place) {
      return Response.json(
        errorBody(
          "unavailable",
          "Too many agent sockets without a token are waiting for hello: send the token in the Authorization header",
        ),
        { status: 503, headers: { "retry-after": "5" } },
      );
    }
    leave = place;
  }
  let upgraded;
  try {
    upgraded = Deno.upgradeWebSocket(req);
  } catch (err) {
    leave();
    throw err;
  }
  new AgentSession(
    orch,
    upgraded.socket,
    token,
    leave,
    token ? HELLO_TIMEOUT_MS : orch.helloGate.limits.helloTimeoutMs,
  );
  return upgraded.response;
}

function bearer(header: string): string | null {
  return /^Bearer\s+(\S+)$/i.exec(header)?.[1] ?? null;
}
