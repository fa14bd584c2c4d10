import { Hono } from "hono";
import { listAgentsWithJobs, listPublicAgents } from "../../lib/agents.ts";
import { requireAdmin } from "../../lib/guards.ts";
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

const agentFields = {
  id: z.number(),
  name: z.string(),
  region: z.string(),
  state: z.enum(["IDLE", "OCCUPIED", "OFFLINE"]),
  lastSeenAt: z.string().nullable(),
  lastJobAt: z.string().nullable(),
};
doc({
  method: "get",
  path: "/api/admin/agents",
  summary: "The eval agents with the jobs each is running now (admin)",
  tag: "admin",
  auth: "admin",
  response: z.object({
    agents: z.array(z.object({
      ...agentFields,
      currentJobs: z.array(
        z.object({ id: z.number(), workflowName: z.string(), startedAt: z.string().nullable() }),
      ),
    })),
  }),
});

/** Admin: the agents and their current jobs. */
export function adminAgentsApi(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.use("*", requireAdmin);
  app.get("/", async (c) => c.json({ agents: await listAgentsWithJobs(deps.sql) }));
  return app;
}

/** Public: the eval agents, their region, state and last contact. */
export function agentsApi(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.get("/", async (c) => c.json({ agents: await listPublicAgents(deps.sql) }));
  return app;
}
