import { Hono } from "hono";
import { z } from "zod";
import { regionSchema } from "../../agent/protocol.ts";
import type { AppDeps, AppEnv } from "../../lib/context.ts";
import { clientIp } from "../../lib/auth/client.ts";
import { HttpError } from "../../lib/errors.ts";
import { sseResponse } from "../../lib/event_hub.ts";
import { autoBucket, BUCKET_MS, leaderboard, MAX_POINTS, realtime } from "../../lib/metrics.ts";
import { doc, valid } from "../../lib/openapi.ts";

const providerId = z.string().regex(/^[0-9a-z]{12}$/, "a 12-character provider id");

export const realtimeQuery = z.object({
  from: z.iso.datetime({ offset: true }).optional().describe("Start (ISO time); default 1 hour before `to`"),
  to: z.iso.datetime({ offset: true }).optional().describe("End (ISO time, exclusive); default now"),
  bucket: z.enum(["minute", "hour", "day"]).optional().describe("Point size; default picked from the range"),
  providerId: providerId.optional(),
  region: regionSchema.optional(),
});

export const leaderboardQuery = z.object({
  days: z.coerce.number().int().min(1).max(3650).default(30).describe("Whole UTC days to rank over"),
  region: regionSchema.optional(),
});

const stats = z.object({
  mean: z.number().nullable(),
  sd: z.number().nullable(),
  min: z.number().nullable(),
  max: z.number().nullable(),
  n: z.number().int(),
});
const summary = z.object({
  results: z.number().int(),
  responseLatency: stats.extend({ p90: z.number().nullable() }),
  interruptLatency: stats,
  networkResilience: z.number().nullable(),
  naturalness: z.number().nullable(),
  noiseReduction: z.number().nullable(),
  lastResultAt: z.string().nullable(),
});
const entry = summary.extend({
  rank: z.number().int(),
  providerId: z.string(),
  providerName: z.string(),
  sku: z.number().int(),
  region: z.string().nullable(),
});

doc({
  method: "get",
  path: "/api/v1/metrics/realtime",
  summary: "Mainline latency series per provider and region over a time range",
  tag: "metrics",
  auth: "public",
  query: realtimeQuery,
  response: z.object({
    from: z.string(),
    to: z.string(),
    bucket: z.string(),
    series: z.array(z.object({
      providerId: z.string(),
      providerName: z.string(),
      region: z.string(),
      points: z.array(summary.extend({ t: z.string() })),
    })),
  }),
});
doc({
  method: "get",
  path: "/api/v1/metrics/leaderboard",
  summary: "Mainline rankings by provider and region",
  tag: "metrics",
  auth: "public",
  query: leaderboardQuery,
  response: z.object({
    days: z.number(),
    region: z.string().nullable(),
    entries: z.array(entry),
    providers: z.array(entry),
  }),
});
doc({
  method: "get",
  path: "/api/v1/metrics/stream",
  summary: "Server-sent events: every new mainline result (event `result`)",
  tag: "metrics",
  auth: "public",
  produces: "text/event-stream",
  errors: [429, 503],
});

/** Public metrics: realtime series, leaderboard, live stream. Mainline data only. */
export function metricsApi(deps: AppDeps) {
  const app = new Hono<AppEnv>();

  app.get("/realtime", valid("query", realtimeQuery), async (c) => {
    const q = c.req.valid("query");
    const to = q.to ? new Date(q.to) : new Date();
    const from = q.from ? new Date(q.from) : new Date(to.getTime() - 3_600_000);
    if (from >= to) throw new HttpError(400, "invalid_input", "from: must be before to");
    const bucket = q.bucket ?? autoBucket(from.getTime(), to.getTime());
    if ((to.getTime() - from.getTime()) / BUCKET_MS[bucket] > MAX_POINTS) {
      throw new HttpError(
        400,
        "invalid_input",
        `bucket: a ${bucket} series may span at most ${MAX_POINTS} points`,
      );
    }
    const series = await realtime(deps.sql, { from, to, bucket, providerId: q.providerId, region: q.region });
    return c.json({ from: from.toISOString(), to: to.toISOString(), bucket, series });
  });

  app.get("/leaderboard", valid("query", leaderboardQuery), async (c) => {
    const q = c.req.valid("query");
    return c.json(await leaderboard(deps.sql, { days: q.days, region: q.region }));
  });

  app.get("/stream", (c) => {
    if (!deps.orchestrator) {
      throw new HttpError(503, "unavailable", "Live streams are not running on this server");
    }
    return sseResponse(c, deps.orchestrator.events, "metrics", `ip:${clientIp(c, deps.config)}`, [{
      event: "ready",
      data: { at: new Date() },
    }]);
  });

  return app;
}
