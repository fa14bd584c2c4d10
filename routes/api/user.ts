import { Hono } from "hono";
import { z } from "zod";
import { changePassword } from "../../lib/accounts.ts";
import { actionContext } from "../../lib/auth/action_context.ts";
import { clientIp } from "../../lib/auth/client.ts";
import { PASSWORD_MAX } from "../../lib/auth/passwords.ts";
import { createSession, setSessionCookie } from "../../lib/auth/sessions.ts";
import type { AppEnv, ResolvedDeps } from "../../lib/context.ts";
import { requireSession, requireUser } from "../../lib/guards.ts";
import { doc, valid } from "../../lib/openapi.ts";
import { ROLES } from "../../lib/roles.ts";
import { findUserById, userView } from "../../lib/users.ts";

const tag = "user";

const userFields = {
  id: z.number().int(),
  name: z.string(),
  username: z.string(),
  email: z.string(),
  role: z.enum(ROLES),
  isAdmin: z.boolean(),
  organizationId: z.number().int().nullable(),
  orgRole: z.enum(["member", "admin"]).nullable(),
};

/** A user as the API shows it (lib/users.ts UserView); the identity route modules answer with it. */
export const userSchema = z.object({
  ...userFields,
  activated: z.boolean(),
  deactivated: z.boolean(),
  createdAt: z.string().optional(),
});

/** The caller of a request (lib/roles.ts AuthUser) and how they authenticated. */
export const callerSchema = z.object({ ...userFields, via: z.enum(["session", "api_key"]) });

const passwordSchema = z.object({
  currentPassword: z.string().max(PASSWORD_MAX).default(""),
  newPassword: z.string().max(PASSWORD_MAX),
  revokeApiKeys: z.boolean().default(false).describe(
    "Also revoke every API key of the account (do this if the password may have leaked: keys made " +
      "with it keep working otherwise)",
  ),
});

doc({
  method: "get",
  path: "/api/v1/user",
  summary: "The caller (session or API key)",
  tag,
  auth: "user",
  response: z.object({ user: userSchema.extend({ via: z.enum(["session", "api_key"]) }) }),
});
doc({
  method: "post",
  path: "/api/v1/user/password",
  summary: "Change the password; ends every session of the user and starts a new one for this browser. " +
    "API keys keep working unless `revokeApiKeys` is true",
  tag,
  auth: "session",
  body: passwordSchema,
  response: z.object({
    changed: z.literal(true),
    otherSessionsEnded: z.literal(true),
    apiKeysRevoked: z.number().int().describe("How many API keys this change revoked"),
  }),
});

/** /api/v1/user: the caller (session or API key) and their password. */
export function userApi(deps: ResolvedDeps) {
  const app = new Hono<AppEnv>();

  app.get("/", requireUser, async (c) => {
    const user = c.var.user!;
    const row = await findUserById(deps.sql, user.id);
    return c.json({ user: { ...userView(row!), via: user.via } });
  });

  app.post("/password", requireSession, valid("json", passwordSchema), async (c) => {
    const user = c.var.user!;
    const { apiKeysRevoked } = await changePassword(actionContext(c, deps), user, c.req.valid("json"));
    // Every session ended, this one too; the browser that changed the password gets a new one.
    setSessionCookie(
      c,
      deps.config,
      await createSession(deps.sql, user.id, {
        ip: clientIp(c, deps.config),
        userAgent: c.req.header("user-agent"),
      }),
    );
    return c.json({ changed: true, otherSessionsEnded: true, apiKeysRevoked });
  });

  return app;
}
