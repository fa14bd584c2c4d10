import { Hono } from "hono";
import { z } from "zod";
import { checkAuthRateLimit } from "../../lib/auth/rate_limit.ts";
import { PASSWORD_MAX } from "../../lib/auth/passwords.ts";
import { jsonBody } from "../../lib/auth/validate.ts";
import type { AppEnv, ResolvedDeps } from "../../lib/context.ts";
import { actionContext } from "../../lib/auth/action_context.ts";
import { runSetup, setupNeeded } from "../../lib/setup.ts";

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
    jsonBody(setupSchema),
    async (c) => {
      const result = await runSetup(actionContext(c, deps), c.req.valid("json"));
      return c.json(result, 201);
    },
  );

  return app;
}
