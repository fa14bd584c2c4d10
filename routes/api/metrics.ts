import { Hono } from "hono";
import { z } from "zod";
import { regionSchema } from "../../agent/protocol.ts";
import type { AppDeps, AppEnv } from "../../lib/context.ts";
import { clientIp } from "../../lib/auth/client.ts";
import { HttpError } from "../../lib/errors.ts";
import { sseResponse } from "../../lib/event_hub.ts";
import { autoBucket, BUCKET_MS, leaderboard, MAX_POINTS, realtime } from "../../lib/metrics.ts";
import { doc, valid } from "../../lib/openapi.ts";
import { PRODUCT_TYPES } from "../../lib/providers.ts";

const providerId = z.string().regex(/^[0-9a-z]{12}$/, "a 12-character provider id");
const methodId = z.string().regex(/^[0-9a-f]{12}$/, "a 12-character method set id").describe(
  "Method set id (from `methods`); default the newest",
);

export const realtimeQuery = z.object({
  from: z.iso.datetime({ offset: true }).optional().describe("Start (ISO time); default 1 hour before `to`"),
  to: z.iso.datetime({ offset: true }).optional().describe("End (ISO time, exclusive); default now"),
  bucket: z.enum(["minute", "hour", "day"]).optional().describe("Point size; default picked from the range"),
  providerId: providerId.optional(),
  region: regionSchema.optional(),
  method: methodId.optional(),
});

export const leaderboardQuery = z.object({
  days: z.coerce.number().int().min(1).max(3650).default(30).describe("Whole UTC days to rank over"),
  region: regionSchema.optional(),
  productType: z.enum(PRODUCT_TYPES).optional().describe(
    "One product type's board; default each ranked on its own",
  ),
  method: methodId.optional(),
});

const stats = z.object({
  mean: z.number().nullable(),
  sd: z.number().nullable(),
  min: z.number().nullable(),
  max: z.number().nullable(),
  n: z.number().int().describe("Jobs behind the figure"),
  turns: z.number().int().describe("Turns behind the figure"),
  ci95: z.object({ lo: z.number(), hi: z.number() }).nullable().describe(
    "95 % confidence interval of the mean, clustered by job (t over per-job medians); null below two jobs",
  ),
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
  rank: z.number().int().nullable().describe(
    "Within the product type; shared when intervals overlap; null: not ranked",
  ),
  tied: z.boolean(),
  enoughData: z.boolean().describe("At least `minTurns` turns"),
  providerId: z.string(),
  providerName: z.string(),
  sku: z.number().int(),
  productType: z.enum(PRODUCT_TYPES),
  region: z.string().nullable(),
});
const methodSet = z.object({
  id: z.string(),
  versions: z.record(z.string(), z.string()),
  results: z.number(),
  lastResultAt: z.string().nullable(),
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
      methodId: z.string(),
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
    productType: z.enum(PRODUCT_TYPES).nullable(),
    minTurns: z.number(),
    method: methodSet.nullable(),
    methods: z.array(methodSet),
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
    const series = await realtime(deps.sql, {
      from,
      to,
      bucket,
      providerId: q.providerId,
      region: q.region,
      method: q.method,
    });
    return c.json({ from: from.toISOString(), to: to.toISOString(), bucket, series });
  });

  app.get("/leaderboard", valid("query", leaderboardQuery), async (c) => {
    const q = c.req.valid("query");
    return c.json(
      await leaderboard(deps.sql, {
        days: q.days,
        region: q.region,
        productType: q.productType,
        method: q.method,
      }),
    );
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
