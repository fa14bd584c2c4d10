import { Hono } from "hono";
import { listPublicAgents } from "../../lib/agents.ts";
import type { AppDeps, AppEnv } from "../../lib/context.ts";

/** Public: the eval agents, their region, state and last contact. */
export function agentsApi(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.get("/", async (c) => c.json({ agents: await listPublicAgents(deps.sql) }));
  return app;
}
