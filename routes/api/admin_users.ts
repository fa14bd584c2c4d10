import { Hono } from "hono";
import { z } from "zod";
import { listAudit } from "../../lib/audit.ts";
import { invalidInput, jsonBody } from "../../lib/auth/validate.ts";
import type { AppEnv, ResolvedDeps } from "../../lib/context.ts";
import { HttpError } from "../../lib/errors.ts";
import { requireAdmin } from "../../lib/guards.ts";
import { ROLES } from "../../lib/roles.ts";
import { changeRole, listUsers, reissueActivation, setDeactivated } from "../../lib/admin_users.ts";
import { actionContext } from "../../lib/auth/action_context.ts";
import { findUserById, userView } from "../../lib/users.ts";

/** /api/admin/users: the system admin manages accounts (roles, deactivation) and reads the audit log. */
export function adminUsersApi(deps: ResolvedDeps) {
  const app = new Hono<AppEnv>();
  app.use("*", requireAdmin);

  app.get("/", async (c) => {
    const q = z.object({
      search: z.string().max(200).optional(),
      limit: z.coerce.number().int().min(1).max(200).default(50),
      offset: z.coerce.number().int().min(0).default(0),
    }).safeParse(c.req.query());
    if (!q.success) {
      throw new HttpError(
        400,
        "invalid_input",
        `${q.error.issues[0].path.join(".")}: ${q.error.issues[0].message}`,
      );
    }
    return c.json(await listUsers(deps.sql, q.data));
  });

  app.get("/audit", async (c) => {
    const q = z.object({
      limit: z.coerce.number().int().min(1).max(500).default(100),
      action: z.string().regex(/^[a-z0-9_.]{1,80}$/, "letters, digits, _ and .").optional(),
    }).safeParse(c.req.query());
    if (!q.success) throw invalidInput(q.error);
    return c.json({
      entries: await listAudit(deps.sql, { limit: q.data.limit, actionPrefix: q.data.action }),
    });
  });

  app.get("/:id", async (c) => {
    const id = userId(c.req.param("id"));
    const user = await findUserById(deps.sql, id);
    if (!user) throw new HttpError(404, "user_not_found", `No user with id ${id}`);
    return c.json({ user: userView(user) });
  });

  app.patch("/:id", jsonBody(z.object({ role: z.enum(ROLES) })), async (c) => {
    const user = await changeRole(
      actionContext(c, deps),
      c.var.user!,
      userId(c.req.param("id")),
      c.req.valid("json").role,
    );
    return c.json({ user });
  });

  app.post("/:id/deactivate", async (c) => {
    const user = await setDeactivated(actionContext(c, deps), c.var.user!, userId(c.req.param("id")), true);
    return c.json({ user });
  });

  app.post("/:id/activation-link", async (c) => {
    const url = await reissueActivation(actionContext(c, deps), c.var.user!, userId(c.req.param("id")));
    c.header("Cache-Control", "no-store");
    return c.json({ activationUrl: url, notice: "The link is shown only this once" }, 201);
  });

  app.post("/:id/reactivate", async (c) => {
    const user = await setDeactivated(actionContext(c, deps), c.var.user!, userId(c.req.param("id")), false);
    return c.json({ user });
  });

  return app;
}

function userId(raw: string): number {
  const id = Number(raw);
  if (!Number.isSafeInteger(id) || id < 1) {
    throw new HttpError(400, "invalid_input", "id: must be a positive integer");
  }
  return id;
}
