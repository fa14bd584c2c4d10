// /api/admin/settings: the system_config settings of lib/settings.ts, read and changed by the
// admin; each value is validated by its key's schema.
import { Hono } from "hono";
import { z } from "zod";
import { recordAudit } from "../../lib/audit.ts";
import { clientIp } from "../../lib/auth/client.ts";
import type { AppDeps, AppEnv } from "../../lib/context.ts";
import { requireAdmin } from "../../lib/guards.ts";
import { doc, invalidInput, valid } from "../../lib/openapi.ts";
import { listSettings, type SettingKey, SETTINGS, writeSetting } from "../../lib/settings.ts";

const keyParam = z.object({
  key: z.enum(Object.keys(SETTINGS) as [SettingKey, ...SettingKey[]]),
});
const body = z.object({
  reason: z.string().trim().max(500).optional().describe("Why it changed, kept in the audit trail"),
  value: z.unknown().refine((v) => v !== undefined, "is required"),
});
const settingSchema = z.object({
  key: z.string(),
  value: z.unknown(),
  default: z.unknown(),
  description: z.string(),
  updatedAt: z.string().nullable(),
});

doc({
  method: "get",
  path: "/api/admin/settings",
  summary: "Every system setting with its value, default and meaning",
  tag: "admin",
  auth: "admin",
  response: z.object({ settings: z.array(settingSchema) }),
});
doc({
  method: "put",
  path: "/api/admin/settings/{key}",
  summary: "Change a system setting (400 naming the part of the value that does not fit)",
  tag: "admin",
  auth: "admin",
  params: keyParam,
  body,
  response: z.object({ setting: settingSchema }),
});

/** Admin: system settings. */
export function adminSettingsApi(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.use("*", requireAdmin);
  app.get("/", async (c) => c.json({ settings: await listSettings(deps.sql) }));
  app.put("/:key", valid("param", keyParam), valid("json", body), async (c) => {
    const { key } = c.req.valid("param");
    const { value, reason } = c.req.valid("json");
    const issues = await writeSetting(deps.sql, key, value, c.var.user!.id);
    if (issues) {
      throw invalidInput({ issues: issues.map((i) => ({ ...i, path: ["value", ...i.path] })) }, "json");
    }
    await recordAudit(deps.sql, {
      action: "setting.changed",
      actorUserId: c.var.user!.id,
      targetType: "setting",
      targetId: key,
      ip: clientIp(c, deps.config),
      details: { value: JSON.stringify(value), reason: reason ?? null },
    });
    const setting = (await listSettings(deps.sql)).find((s) => s.key === key)!;
    return c.json({ setting });
  });
  return app;
}
