import { Hono } from "hono";
import { z } from "zod";
import { changeRole, listUsers, reissueActivation, setDeactivated } from "../../lib/admin_users.ts";
import { listAudit } from "../../lib/audit.ts";
import { actionContext } from "../../lib/auth/action_context.ts";
import type { AppEnv, ResolvedDeps } from "../../lib/context.ts";
import { HttpError } from "../../lib/errors.ts";
import { requireAdmin } from "../../lib/guards.ts";
import { doc, valid } from "../../lib/openapi.ts";
import { ROLES } from "../../lib/roles.ts";
import { findUserById, userView } from "../../lib/users.ts";
import { userSchema } from "./user.ts";

const positiveInteger = "must be a positive integer";
const userIdParam = z.object({
  id: z.coerce.number({ error: positiveInteger }).int(positiveInteger).min(1, positiveInteger),
});

const listQuery = z.object({
  search: z.string().max(200).optional().describe("Matches email, username and name"),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  offset: z.coerce.number().int().min(0).default(0),
});

const auditQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(100),
  action: z.string().regex(/^[a-z0-9_.]{1,80}$/, "letters, digits, _ and .").optional()
    .describe("Action prefix, e.g. auth."),
});

const roleBody = z.object({ role: z.enum(ROLES) });

const auditEntrySchema = z.object({
  id: z.number().int(),
  at: z.string(),
  actorUserId: z.number().int().nullable(),
  action: z.string(),
  targetType: z.string().nullable(),
  targetId: z.string().nullable(),
  ip: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
});

const tag = "admin";
const one = z.object({ user: userSchema });

doc({
  method: "get",
  path: "/api/admin/users",
  summary: "Users, newest first",
  tag,
  auth: "admin",
  query: listQuery,
  response: z.object({ users: z.array(userSchema), total: z.number().int() }),
});
doc({
  method: "get",
  path: "/api/admin/users/audit",
  summary: "The audit log, most recent first",
  tag,
  auth: "admin",
  query: auditQuery,
  response: z.object({ entries: z.array(auditEntrySchema) }),
});
doc({
  method: "get",
  path: "/api/admin/users/{id}",
  summary: "One user",
  tag,
  auth: "admin",
  params: userIdParam,
  response: one,
});
doc({
  method: "patch",
  path: "/api/admin/users/{id}",
  summary: "Change a user's role",
  tag,
  auth: "admin",
  params: userIdParam,
  body: roleBody,
  response: one,
});
doc({
  method: "post",
  path: "/api/admin/users/{id}/deactivate",
  summary: "Deactivate a user: their sessions end and their API keys stop working",
  tag,
  auth: "admin",
  params: userIdParam,
  response: one,
  errors: [409],
});
doc({
  method: "post",
  path: "/api/admin/users/{id}/activation-link",
  summary: "A fresh activation link for a user who has not activated yet; shown in this response only",
  tag,
  auth: "admin",
  params: userIdParam,
  status: 201,
  response: z.object({ activationUrl: z.string(), notice: z.string() }),
  errors: [409],
});
doc({
  method: "post",
  path: "/api/admin/users/{id}/reactivate",
  summary: "Reactivate a deactivated user",
  tag,
  auth: "admin",
  params: userIdParam,
  response: one,
});

/** /api/admin/users: the system admin manages accounts (roles, deactivation) and reads the audit log. */
export function adminUsersApi(deps: ResolvedDeps) {
  const app = new Hono<AppEnv>();
  app.use("*", requireAdmin);

  app.get(
    "/",
    valid("query", listQuery),
    async (c) => c.json(await listUsers(deps.sql, c.req.valid("query"))),
  );

  app.get("/audit", valid("query", auditQuery), async (c) => {
    const q = c.req.valid("query");
    return c.json({ entries: await listAudit(deps.sql, { limit: q.limit, actionPrefix: q.action }) });
  });

  app.get("/:id", valid("param", userIdParam), async (c) => {
    const { id } = c.req.valid("param");
    const user = await findUserById(deps.sql, id);
    if (!user) throw new HttpError(404, "user_not_found", `No user with id ${id}`);
    return c.json({ user: userView(user) });
  });

  app.patch("/:id", valid("param", userIdParam), valid("json", roleBody), async (c) => {
    const user = await changeRole(
      actionContext(c, deps),
      c.var.user!,
      c.req.valid("param").id,
      c.req.valid("json").role,
    );
    return c.json({ user });
  });

  app.post("/:id/deactivate", valid("param", userIdParam), async (c) => {
    const user = await setDeactivated(actionContext(c, deps), c.var.user!, c.req.valid("param").id, true);
    return c.json({ user });
  });

  app.post("/:id/activation-link", valid("param", userIdParam), async (c) => {
    const url = await reissueActivation(actionContext(c, deps), c.var.user!, c.req.valid("param").id);
    c.header("Cache-Control", "no-store");
    return c.json({ activationUrl: url, notice: "The link is shown only this once" }, 201);
  });

  app.post("/:id/reactivate", valid("param", userIdParam), async (c) => {
    const user = await setDeactivated(actionContext(c, deps), c.var.user!, c.req.valid("param").id, false);
    return c.json({ user });
  });

  return app;
}
