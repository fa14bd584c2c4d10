import { Hono } from "hono";
import { z } from "zod";
import { recordAudit } from "../../lib/audit.ts";
import { createApiKey, deleteApiKey, listApiKeys, revokeApiKey } from "../../lib/auth/api_keys.ts";
import { clientIp } from "../../lib/auth/client.ts";
import { jsonBody } from "../../lib/auth/validate.ts";
import type { AppEnv, ResolvedDeps } from "../../lib/context.ts";
import { HttpError } from "../../lib/errors.ts";
import { requireSession, requireUser } from "../../lib/guards.ts";

export const createKeySchema = z.object({
  name: z.string().trim().min(1, "is required").max(100),
  expiresAt: z.iso.datetime({ offset: true }).optional()
    .refine((v) => v === undefined || Date.parse(v) > Date.now(), "must be in the future"),
});

const keyId = /^[0-9a-z]{12}$/;

/**
 * /api/v1/api-keys: the caller's API keys. Creating one needs a browser session, so a leaked
 * key cannot mint further keys that would outlive its revocation.
 */
export function apiKeysApi(deps: ResolvedDeps) {
  const app = new Hono<AppEnv>();

  app.get("/", requireUser, async (c) => c.json({ apiKeys: await listApiKeys(deps.sql, c.var.user!.id) }));

  app.post("/", requireSession, jsonBody(createKeySchema), async (c) => {
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

  app.post("/:id/revoke", requireUser, async (c) => {
    const id = checkId(c.req.param("id"));
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

  app.delete("/:id", requireUser, async (c) => {
    const id = checkId(c.req.param("id"));
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

function checkId(id: string): string {
  if (!keyId.test(id)) throw new HttpError(400, "invalid_input", "id: must be a 12-character API key id");
  return id;
}
