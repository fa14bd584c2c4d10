import { Hono } from "hono";
import type { AppDeps, AppEnv } from "../lib/context.ts";
import { errorBody } from "../lib/errors.ts";
import { migrationsCurrent } from "../lib/migrate.ts";

/** Liveness and readiness probes for load balancers and orchestrators. */
export function healthRoutes(deps: AppDeps) {
  const app = new Hono<AppEnv>();

  app.get("/healthz", (c) => c.json({ status: "ok", serverId: deps.serverId }));

  app.get("/readyz", async (c) => {
    try {
      const current = await withTimeout(migrationsCurrent(deps.sql), 2000);
      if (!current) {
        return c.json(errorBody("not_ready", "Database migrations are not current"), 503);
      }
      // A listener that drops notifications leaves the process ready: polling still
      // dispatches every job (VOX_DISPATCH_POLL_MS late), and failing readiness would take
      // every process behind the same pooler out of the load balancer at once. It is
      // reported here, logged, and exported as vox_listener_up for alerting.
      const listener = deps.orchestrator?.listener?.health();
      return c.json({ status: "ready", ...(listener ? { listener } : {}) });
    } catch (err) {
      c.var.log.warn("readiness check failed", { error: String(err) });
      return c.json(errorBody("not_ready", "Database is unreachable"), 503);
    }
  });

  return app;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
