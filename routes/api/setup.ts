import { Hono } from "hono";
import { z } from "zod";
import { actionContext } from "../../lib/auth/action_context.ts";
import { PASSWORD_MAX } from "../../lib/auth/passwords.ts";
import { checkAuthRateLimit } from "../../lib/auth/rate_limit.ts";
import type { AppEnv, ResolvedDeps } from "../../lib/context.ts";
import { doc, valid } from "../../lib/openapi.ts";
import { runSetup, setupNeeded } from "../../lib/setup.ts";
import { userSchema } from "./user.ts";

const username = z.string().regex(/^[A-Za-z0-9_.-]{2,40}$/, "2–40 letters, digits, _ . -");

export const setupSchema = z.object({
  initCode: z.string().min(1, "is required").max(500),
  admin: z.object({
    email: z.email("must be an email address").max(254),
    password: z.string().max(PASSWORD_MAX),
    name: z.string().trim().max(200).optional(),
    username: username.optional(),
  }),
  scout: z.object({
    email: z.email("must be an email address").max(254),
    name: z.string().trim().max(200).optional(),
    username: username.optional(),
  }),
});

const tag = "setup";

doc({
  method: "get",
  path: "/api/setup",
  summary: "Whether first-run setup is still needed, and whether INIT_CODE enables it",
  tag,
  auth: "public",
  response: z.object({ setupRequired: z.boolean(), enabled: z.boolean() }),
});
doc({
  method: "post",
  path: "/api/setup",
  summary: "First run: create the administrator and the Scout; the Scout's activation link is in this " +
    "response only",
  tag,
  auth: "public",
  body: setupSchema,
  status: 201,
  response: z.object({ admin: userSchema, scout: userSchema, scoutActivationUrl: z.string() }),
  errors: [403, 409, 429],
});

/** /api/setup: first-run creation of the admin and the Scout, guarded by INIT_CODE. */
export function setupApi(deps: ResolvedDeps) {
  const app = new Hono<AppEnv>();

  app.get(
    "/",
    async (c) =>
      c.json({ setupRequired: await setupNeeded(deps.sql), enabled: Boolean(deps.config.INIT_CODE) }),
  );

  app.post(
    "/",
    async (c, next) => {
      await checkAuthRateLimit(c, deps);
      await next();
    },
    valid("json", setupSchema),
    async (c) => {
      const result = await runSetup(actionContext(c, deps), c.req.valid("json"));
      return c.json(result, 201);
    },
  );

  return app;
}
