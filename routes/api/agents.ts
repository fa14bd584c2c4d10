import { Hono } from "hono";
import { listPublicAgents } from "../../lib/agents.ts";
import type { AppDeps, AppEnv } from "../../lib/context.ts";
import { doc } from "../../lib/openapi.ts";
import { z } from "zod";

doc({
  method: "get",
  path: "/api/v1/agents",
  summary: "The eval agents: region, state (IDLE, OCCUPIED, OFFLINE), last seen (public)",
  tag: "agents",
  auth: "public",
  response: z.object({
    agents: z.array(z.object({
      id: z.number(),
      name: z.string(),
      region: z.string(),
      state: z.enum(["IDLE", "OCCUPIED", "OFFLINE"]),
      lastSeenAt: z.string().nullable(),
      lastJobAt: z.string().nullable(),
    })),
  }),
});

/** Public: the eval agents, their region, state and last contact. */
export function agentsApi(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.get("/", async (c) => c.json({ agents: await listPublicAgents(deps.sql) }));
  return app;
}
