import { Hono } from "hono";
import { z } from "zod";
import { regionSchema } from "../../agent/protocol.ts";
import { createAgentToken, listAgentTokens, revokeAgentToken } from "../../lib/agent_tokens.ts";
import type { AppDeps, AppEnv } from "../../lib/context.ts";
import { HttpError } from "../../lib/errors.ts";
import { requireAdmin } from "../../lib/guards.ts";
import { doc, valid } from "../../lib/openapi.ts";

export const agentTokenSchema = z.object({
  id: z.number().int(),
  name: z.string(),
  region: z.string(),
  displayPrefix: z.string(),
  createdAt: z.string(),
  expiresAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
  lastUsedAt: z.string().nullable(),
  agents: z.number().int(),
});

export const createAgentTokenSchema = z.object({
  name: z.string().trim().min(1).max(100),
  region: regionSchema,
  /** ISO time; omitted means the token does not expire. */
  expiresAt: z.iso.datetime({ offset: true }).optional()
    .refine((v) => v === undefined || Date.parse(v) > Date.now(), "must be in the future"),
});

const idParam = z.object({ id: z.coerce.number().int().positive() });

doc({
  method: "get",
  path: "/api/admin/agent-tokens",
  summary: "List eval agent tokens",
  tag: "admin",
  auth: "admin",
  response: z.object({ tokens: z.array(agentTokenSchema) }),
});
doc({
  method: "post",
  path: "/api/admin/agent-tokens",
  summary: "Create an eval agent token for a region; the raw token is in this response only",
  tag: "admin",
  auth: "admin",
  body: createAgentTokenSchema,
  status: 201,
  response: z.object({ token: z.string(), info: agentTokenSchema }),
});
doc({
  method: "delete",
  path: "/api/admin/agent-tokens/{id}",
  summary: "Revoke a token; agents using it are disconnected",
  tag: "admin",
  auth: "admin",
  params: idParam,
});

/** Admin: eval agent tokens (create with region and expiry, list, revoke). */
export function agentTokensApi(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.use("*", requireAdmin);

  app.get("/", async (c) => c.json({ tokens: await listAgentTokens(deps.sql) }));

  app.post("/", valid("json", createAgentTokenSchema), async (c) => {
    const body = c.req.valid("json");
    const created = await createAgentToken(deps.sql, {
      name: body.name,
      region: body.region,
      expiresAt: body.expiresAt ? new Date(body.expiresAt) : null,
      createdBy: c.var.user!.id,
    });
    c.header("Cache-Control", "no-store");
    return c.json(created, 201);
  });

  app.delete("/:id", valid("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    if (!(await revokeAgentToken(deps.sql, id))) {
      throw new HttpError(404, "not_found", `No agent token ${id}`);
    }
    return c.json({ revoked: true, id });
  });

  return app;
}
