import { Hono } from "hono";
import { z } from "zod";
import { PASSWORD_MAX } from "../../lib/auth/passwords.ts";
import { createSession, setSessionCookie } from "../../lib/auth/sessions.ts";
import { jsonBody } from "../../lib/auth/validate.ts";
import type { AppEnv, ResolvedDeps } from "../../lib/context.ts";
import { requireSession, requireUser } from "../../lib/guards.ts";
import { changePassword } from "../../lib/accounts.ts";
import { actionContext } from "../../lib/auth/action_context.ts";
import { findUserById, userView } from "../../lib/users.ts";

/** /api/v1/user: the caller (session or API key) and their password. */
export function userApi(deps: ResolvedDeps) {
  const app = new Hono<AppEnv>();

  app.get("/", requireUser, async (c) => {
    const user = c.var.user!;
    const row = await findUserById(deps.sql, user.id);
    return c.json({ user: { ...userView(row!), via: user.via } });
  });

  app.post(
    "/password",
    requireSession,
    jsonBody(
      z.object({
        currentPassword: z.string().max(PASSWORD_MAX).default(""),
        newPassword: z.string().max(PASSWORD_MAX),
      }),
    ),
    async (c) => {
      const user = c.var.user!;
      await changePassword(actionContext(c, deps), user, c.req.valid("json"));
      // Every session ended, this one too; the browser that changed the password gets a new one.
      setSessionCookie(
        c,
        deps.config,
        await createSession(deps.sql, user.id, { userAgent: c.req.header("user-agent") }),
      );
      return c.json({ changed: true, otherSessionsEnded: true });
    },
  );

  return app;
}
