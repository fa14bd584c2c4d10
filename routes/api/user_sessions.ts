// /api/v1/user/sessions: the caller's signed-in browsers, and ending one or all the others.
import { Hono } from "hono";
import { z } from "zod";
import { clientIp } from "../../lib/auth/client.ts";
import { endSessions, listSessions, sessionHandle } from "../../lib/auth/session_list.ts";
import { readSessionCookie } from "../../lib/auth/sessions.ts";
import type { AppEnv, ResolvedDeps } from "../../lib/context.ts";
import { HttpError } from "../../lib/errors.ts";
import { requireSession } from "../../lib/guards.ts";
import { doc, valid } from "../../lib/openapi.ts";

const tag = "user";
const handleParam = z.object({
  id: z.string().regex(/^[0-9a-f]{16}$/, "must be a session id (16 hex digits)"),
});
const sessionSchema = z.object({
  id: z.string().describe("16 hex digits naming the session; not a credential"),
  createdAt: z.string(),
  lastSeenAt: z.string(),
  expiresAt: z.string(),
  ip: z.string().nullable(),
  userAgent: z.string().nullable(),
  current: z.boolean().describe("The session of this request"),
});

doc({
  method: "get",
  path: "/api/v1/user/sessions",
  summary: "The caller's signed-in browsers (live sessions), most recently used first",
  tag,
  auth: "session",
  response: z.object({ sessions: z.array(sessionSchema) }),
});
doc({
  method: "delete",
  path: "/api/v1/user/sessions/{id}",
  summary: "Sign out one browser (ending this request's own session signs this browser out)",
  tag,
  auth: "session",
  params: handleParam,
  response: z.object({ ended: z.number().int() }),
});
doc({
  method: "delete",
  path: "/api/v1/user/sessions",
  summary: "Sign out every other browser; this one stays signed in",
  tag,
  auth: "session",
  response: z.object({ ended: z.number().int() }),
});

/** The signed-in browsers of the caller. */
export function userSessionsApi(deps: ResolvedDeps) {
  const app = new Hono<AppEnv>();
  app.use("*", requireSession);
  const current = (c: Parameters<typeof readSessionCookie>[0]) => {
    const token = readSessionCookie(c, deps.config);
    return token ? sessionHandle(token) : null;
  };
  app.get("/", async (c) => c.json({ sessions: await listSessions(deps.sql, c.var.user!.id, current(c)) }));
  app.delete("/", async (c) => {
    const ended = await endSessions(deps.sql, c.var.user!.id, { allBut: current(c) }, {
      ip: clientIp(c, deps.config),
    });
    return c.json({ ended });
  });
  app.delete("/:id", valid("param", handleParam), async (c) => {
    const ended = await endSessions(deps.sql, c.var.user!.id, { handle: c.req.valid("param").id }, {
      ip: clientIp(c, deps.config),
    });
    if (!ended) throw new HttpError(404, "not_found", "No such session");
    return c.json({ ended });
  });
  return app;
}
