import { Hono } from "hono";
import { z } from "zod";
import { recordAudit } from "../../lib/audit.ts";
import { createApiKey, deleteApiKey, listApiKeys, revokeApiKey } from "../../lib/auth/api_keys.ts";
import { clientIp } from "../../lib/auth/client.ts";
import type { AppEnv, ResolvedDeps } from "../../lib/context.ts";
import { HttpError } from "../../lib/errors.ts";
import { requireSession, requireUser } from "../../lib/guards.ts";
import { doc, valid } from "../../lib/openapi.ts";

export const createKeySchema = z.object({
  name: z.string().trim().min(1, "is required").max(100),
  expiresAt: z.iso.datetime({ offset: true }).optional()
    .refine((v) => v === undefined || Date.parse(v) > Date.now(), "must be in the future"),
});

const keyIdParam = z.object({
  id: z.string().regex(/^[0-9a-z]{12}$/, "must be a 12-character API key id"),
});

const apiKeySchema = z.object({
  id: z.string(),
  name: z.string(),
  prefix: z.string(),
  createdAt: z.string(),
  expiresAt: z.string().nullable(),
  lastUsedAt: z.string().nullable(),
  usageCount: z.number().int(),
  revokedAt: z.string().nullable(),
  status: z.enum(["active", "revoked", "expired"]),
});

const tag = "api keys";

doc({
  method: "get",
  path: "/api/v1/api-keys",
  summary: "The caller's API keys, newest first (never the secret)",
  tag,
  auth: "user",
  response: z.object({ apiKeys: z.array(apiKeySchema) }),
});
doc({
  method: "post",
  path: "/api/v1/api-keys",
  summary: "Create an API key; the raw key is in this response only",
  tag,
  auth: "session",
  body: createKeySchema,
  status: 201,
  response: z.object({ key: z.string(), apiKey: apiKeySchema, notice: z.string() }),
});
doc({
  method: "post",
  path: "/api/v1/api-keys/{id}/revoke",
  summary: "Revoke one of the caller's API keys",
  tag,
  auth: "user",
  params: keyIdParam,
  response: z.object({ apiKey: apiKeySchema }),
});
doc({
  method: "delete",
  path: "/api/v1/api-keys/{id}",
  summary: "Delete one of the caller's API keys",
  tag,
  auth: "user",
  params: keyIdParam,
  status: 204,
});

/**
 * /api/v1/api-keys: the caller's API keys. Creating one needs a browser session, so a leaked
 * key cannot mint further keys that would outlive its revocation.
 */
export function apiKeysApi(deps: ResolvedDeps) {
  const app = new Hono<AppEnv>();

  app.get("/", requireUser, async (c) => c.json({ apiKeys: await listApiKeys(deps.sql, c.var.user!.id) }));

  app.post("/", requireSession, valid("json", createKeySchema), async (c) => {
    const { name, expiresAt } = c.req.valid("json");
    const user = c.var.user!;
    const created = await createApiKey(deps.sql, user.id, {
      name,
      expiresAt: expiresAt ? new Date(expiresAt) : null,
    });
    await recordAudit(deps.sql, {
      action: "api_key.created",
      actorUserId: user.id,
      targetType: "api_key",
      targetId: created.apiKey.id,
      ip: clientIp(c, deps.config),
      details: { name, expiresAt: created.apiKey.expiresAt },
    });
    c.header("Cache-Control", "no-store");
    return c.json({ ...created, notice: "Copy the key now: it is shown only this once" }, 201);
  });

  app.post("/:id/revoke", requireUser, valid("param", keyIdParam), async (c) => {
    const { id } = c.req.valid("param");
    const user = c.var.user!;
    const key = await revokeApiKey(deps.sql, user.id, id);
    if (!key) throw new HttpError(404, "api_key_not_found", `You have no API key ${id}`);
    await recordAudit(deps.sql, {
      action: "api_key.revoked",
      actorUserId: user.id,
      targetType: "api_key",
      targetId: id,
      ip: clientIp(c, deps.config),
    });
    return c.json({ apiKey: key });
  });

  app.delete("/:id", requireUser, valid("param", keyIdParam), async (c) => {
    const { id } = c.req.valid("param");
    const user = c.var.user!;
    if (!(await deleteApiKey(deps.sql, user.id, id))) {
      throw new HttpError(404, "api_key_not_found", `You have no API key ${id}`);
    }
    await recordAudit(deps.sql, {
      action: "api_key.deleted",
      actorUserId: user.id,
      targetType: "api_key",
      targetId: id,
      ip: clientIp(c, deps.config),
    });
    return c.body(null, 204);
  });

  return app;
}
