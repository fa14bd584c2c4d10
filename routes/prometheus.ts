import { Hono } from "hono";
import { constantTimeEqualText, hashToken } from "../lib/auth/tokens.ts";
import type { AppDeps, AppEnv } from "../lib/context.ts";
import { errorBody } from "../lib/errors.ts";
import { renderOpsMetrics } from "../lib/ops_metrics.ts";
import type { Counter } from "../lib/prometheus.ts";
import { EXPOSITION_CONTENT_TYPE } from "../lib/prometheus.ts";

/**
 * GET /metrics: operational metrics in the Prometheus text format, for a scraper holding
 * `Authorization: Bearer $METRICS_TOKEN`. Without METRICS_TOKEN the endpoint does not exist
 * (404), so nothing about the fleet is exposed by default. Not /api/v1/metrics, the public
 * metrics of voice agents.
 */
export function prometheusRoutes(deps: AppDeps, requests: Counter) {
  const app = new Hono<AppEnv>();
  app.get("/metrics", async (c) => {
    const expected = deps.config.METRICS_TOKEN;
    if (!expected) return c.notFound();
    const m = /^Bearer\s+(\S+)\s*$/i.exec(c.req.header("authorization") ?? "");
    // Hashing both sides first makes the comparison constant-time whatever the lengths.
    if (!m || !constantTimeEqualText(hashToken(m[1]), hashToken(expected))) {
      c.header("WWW-Authenticate", 'Bearer realm="vox-metrics"');
      return c.json(
        errorBody("unauthorized", "GET /metrics needs Authorization: Bearer <METRICS_TOKEN>"),
        401,
      );
    }
    const body = await renderOpsMetrics(deps.sql, {
      serverId: deps.serverId,
      requests,
      orchestrator: deps.orchestrator,
    });
    c.header("Cache-Control", "no-store");
    return c.body(body, 200, { "Content-Type": EXPOSITION_CONTENT_TYPE });
  });
  return app;
}
