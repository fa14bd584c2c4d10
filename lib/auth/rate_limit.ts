import type { Context } from "hono";
import { createMiddleware } from "hono/factory";
import type { AppDeps, AppEnv } from "../context.ts";
import type { Sql } from "../db.ts";
import { HttpError } from "../errors.ts";
import { clientIp } from "./client.ts";
import { settingSql } from "../settings.ts";
import { batcherPer } from "../batch.ts";

export interface RateDecision {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Seconds until the current window ends. */
  retryAfter: number;
}

type LimitKey = "rate_limit.general" | "rate_limit.auth";

/**
 * Counts one hit for `bucket` in a fixed window read from system_config `settingKey`, and says
 * whether it is within the limit. The counter lives in rate_limit_hits, so every server process
 * sharing the database shares it; reading the setting and counting is one statement. Hits that
 * arrive while that statement is in flight are counted together by the next one (lib/batch.ts):
 * each still gets its own place in the count, so the limit holds exactly, and a busy API costs
 * one upsert per burst instead of one per request.
 */
export function hitRateLimit(sql: Sql, bucket: string, settingKey: LimitKey): Promise<RateDecision> {
  return countHit(sql, { bucket, settingKey });
}

const countHit = batcherPer((sql: Sql) => async (hits: { bucket: string; settingKey: LimitKey }[]) => {
  const out: RateDecision[] = new Array(hits.length);
  const bySetting = Map.groupBy(hits.map((h, i) => ({ ...h, i })), (h) => h.settingKey);
  await Promise.all([...bySetting].map(async ([settingKey, group]) => {
    const byBucket = Map.groupBy(group, (h) => h.bucket);
    const buckets = [...byBucket.keys()];
    const rows = await sql<{ bucket: string; hits: number; max: number; retryAfter: number }[]>`
      WITH cfg AS (
        SELECT ${settingSql(sql, settingKey)} AS v
      ), w AS (
        SELECT greatest((v->>'max')::int, 1) AS max, greatest((v->>'windowSeconds')::int, 1) AS secs FROM cfg
      ), slot AS (
        SELECT max, secs,
               to_timestamp(floor(extract(epoch FROM now()) / secs) * secs) AS start
        FROM w
      )
      INSERT INTO rate_limit_hits AS r (bucket, window_start, hits)
      SELECT t.bucket, slot.start, t.n
      FROM unnest(${buckets}::text[], ${buckets.map((b) => byBucket.get(b)!.length)}::int[]) AS t(bucket, n),
           slot
      ON CONFLICT (bucket, window_start) DO UPDATE SET hits = r.hits + EXCLUDED.hits
      RETURNING r.bucket, r.hits,
        (SELECT max FROM slot) AS max,
        ceil(extract(epoch FROM (SELECT start + make_interval(secs => secs) FROM slot) - now()))::int
          AS retry_after`;
    for (const row of rows) {
      const mine = byBucket.get(row.bucket)!;
      // The batch's hits are the last mine.length of the counter, in arrival order.
      mine.forEach((h, k) => {
        const count = row.hits - mine.length + 1 + k;
        out[h.i] = {
          allowed: count <= row.max,
          limit: row.max,
          remaining: Math.max(0, row.max - count),
          retryAfter: Math.max(1, row.retryAfter),
        };
      });
    }
  }));
  return out;
});

/** Throws the 429 for a refused decision. */
export function rateLimited(decision: RateDecision, what: string): HttpError {
  return new HttpError(
    429,
    "rate_limited",
    `Too many ${what}: the limit is ${decision.limit} per window; retry in ${decision.retryAfter} s`,
    {
      headers: { "Retry-After": String(decision.retryAfter) },
      details: { limit: decision.limit, retryAfterSeconds: decision.retryAfter },
    },
  );
}

/** General limit on /api: per signed-in user, or per client address for anonymous callers. */
export function generalRateLimit(deps: AppDeps) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const user = c.var.user;
    const bucket = user ? `general:user:${user.id}` : `general:ip:${clientIp(c, deps.config)}`;
    const decision = await hitRateLimit(deps.sql, bucket, "rate_limit.general");
    if (!decision.allowed) throw rateLimited(decision, "requests");
    await next();
  });
}

/** The stricter limit on sign-in, sign-up, setup and token endpoints, per client address. */
export async function checkAuthRateLimit(c: Context, deps: AppDeps): Promise<void> {
  const decision = await hitRateLimit(deps.sql, `auth:ip:${clientIp(c, deps.config)}`, "rate_limit.auth");
  if (!decision.allowed) throw rateLimited(decision, "sign-in attempts from this address");
}

/** Middleware form of checkAuthRateLimit. */
export function authRateLimit(deps: AppDeps) {
  return createMiddleware<AppEnv>(async (c, next) => {
    await checkAuthRateLimit(c, deps);
    await next();
  });
}

/** Deletes counters of windows that ended more than a day ago. */
export async function pruneRateLimits(sql: Sql): Promise<number> {
  const rows = await sql`DELETE FROM rate_limit_hits WHERE window_start < now() - interval '1 day'`;
  return rows.count;
}
