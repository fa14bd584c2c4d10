// Public metrics over mainline results: rollups maintained from inserts, and the
// leaderboard / realtime reads served from them.
import type { Db, Fragment, Sql } from "./db.ts";
import { listProviders } from "./providers.ts";

// Arbitrary constant: the advisory lock that lets one roller at a time fold the queue, so
// two processes never upsert the same rollup rows in different orders (deadlock).
const ROLLUP_LOCK = 7_346_021_004;

export type BucketSize = "minute" | "hour" | "day";
export const BUCKET_MS: Record<BucketSize, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };
/** Most buckets one realtime series may span. */
export const MAX_POINTS = 2_200;

// The rollup rows (minute, hour and day) of the results in `source`, a relation with the
// columns provider_id, region, created_at, rl, rp, il, nr, na, nz.
const AGGREGATE = (sql: Db, source: Fragment) =>
  sql`
  SELECT s.size AS bucket_size, r.provider_id, r.region, date_trunc(s.size, r.created_at, 'UTC') AS bucket,
         count(*)::int AS results,
         count(rl)::int AS response_n, coalesce(sum(rl), 0) AS response_sum,
         coalesce(sum(rl * rl), 0) AS response_sumsq, min(rl) AS response_min, max(rl) AS response_max,
         count(rp)::int AS response_p90_n, coalesce(sum(rp), 0) AS response_p90_sum,
         count(il)::int AS interrupt_n, coalesce(sum(il), 0) AS interrupt_sum,
         coalesce(sum(il * il), 0) AS interrupt_sumsq, min(il) AS interrupt_min, max(il) AS interrupt_max,
         count(nr)::int AS resilience_n, coalesce(sum(nr), 0) AS resilience_sum,
         count(na)::int AS naturalness_n, coalesce(sum(na), 0) AS naturalness_sum,
         count(nz)::int AS noise_n, coalesce(sum(nz), 0) AS noise_sum,
         max(r.created_at) AS last_result_at
  FROM ${source} r CROSS JOIN (VALUES ('minute'), ('hour'), ('day')) AS s(size)
  GROUP BY 1, 2, 3, 4
  ORDER BY 1, 2, 3, 4`;

// eval_results `e` as AGGREGATE()'s source columns.
const SOURCE_COLUMNS = (sql: Db) =>
  sql`e.provider_id, e.region, e.created_at, e.response_latency_median AS rl,
      e.response_latency_p90 AS rp, e.interrupt_latency_median AS il, e.network_resilience AS nr,
      e.naturalness AS na, e.noise_reduction AS nz`;

/**
 * Folds queued mainline results into the minute, hour and day rollups, `batch` at a time,
 * until the queue is empty or another process is rolling. Days marked dirty (results
 * deleted or un-marked; see migrations/00005_rollup_drift.sql) are recomputed first. Returns
 * how many queued results it folded.
 */
export async function rollUpResults(sql: Sql, batch = 5000): Promise<number> {
  if (!await recomputeDirty(sql)) return 0;
  let total = 0;
  for (;;) {
    const n = await sql.begin(async (tx) => {
      const [{ locked }] = await tx`SELECT pg_try_advisory_xact_lock(${ROLLUP_LOCK}) AS locked`;
      if (!locked) return -1;
      const [{ rolled }] = await tx`
        WITH q AS (
          DELETE FROM eval_rollup_queue WHERE result_id IN (
            SELECT result_id FROM eval_rollup_queue ORDER BY result_id LIMIT ${batch})
          RETURNING result_id
        ), r AS (
          -- A result un-marked while it waited is no longer mainline: not folded.
          SELECT ${SOURCE_COLUMNS(tx)} FROM eval_results e JOIN q ON q.result_id = e.id WHERE e.is_mainline
        ), agg AS (${AGGREGATE(tx, tx`r`)}), ins AS (
          INSERT INTO eval_rollups AS t SELECT * FROM agg
          ON CONFLICT (bucket_size, provider_id, region, bucket) DO UPDATE SET
            results = t.results + excluded.results,
            response_n = t.response_n + excluded.response_n,
            response_sum = t.response_sum + excluded.response_sum,
            response_sumsq = t.response_sumsq + excluded.response_sumsq,
            response_min = least(t.response_min, excluded.response_min),
            response_max = greatest(t.response_max, excluded.response_max),
            response_p90_n = t.response_p90_n + excluded.response_p90_n,
            response_p90_sum = t.response_p90_sum + excluded.response_p90_sum,
            interrupt_n = t.interrupt_n + excluded.interrupt_n,
            interrupt_sum = t.interrupt_sum + excluded.interrupt_sum,
            interrupt_sumsq = t.interrupt_sumsq + excluded.interrupt_sumsq,
            interrupt_min = least(t.interrupt_min, excluded.interrupt_min),
            interrupt_max = greatest(t.interrupt_max, excluded.interrupt_max),
            resilience_n = t.resilience_n + excluded.resilience_n,
            resilience_sum = t.resilience_sum + excluded.resilience_sum,
            naturalness_n = t.naturalness_n + excluded.naturalness_n,
            naturalness_sum = t.naturalness_sum + excluded.naturalness_sum,
            noise_n = t.noise_n + excluded.noise_n,
            noise_sum = t.noise_sum + excluded.noise_sum,
            last_result_at = greatest(t.last_result_at, excluded.last_result_at)
          RETURNING 1
        )
        SELECT (SELECT count(*) FROM q)::int AS rolled, (SELECT count(*) FROM ins)::int AS upserted`;
      return rolled as number;
    });
    if (n <= 0) return total;
    total += n;
    if (n < batch) return total;
  }
}

/**
 * Recomputes the rollups of every provider × region × UTC day marked in eval_rollup_dirty
 * from eval_results (leaving out results still queued: the fold adds those). Returns false
 * when another process holds the roller's lock.
 */
async function recomputeDirty(sql: Sql): Promise<boolean> {
  return await sql.begin(async (tx) => {
    const [{ locked }] = await tx`SELECT pg_try_advisory_xact_lock(${ROLLUP_LOCK}) AS locked`;
    if (!locked) return false;
    const keys = await tx`
      WITH d AS (DELETE FROM eval_rollup_dirty RETURNING provider_id, region, day)
      SELECT DISTINCT provider_id, region, day FROM d`;
    if (keys.length === 0) return true;
    const k = tx`jsonb_to_recordset(${
      tx.json(keys.map((r) => ({ provider_id: r.providerId, region: r.region, day: r.day })))
    }) AS k(provider_id text, region text, day timestamptz)`;
    await tx`
      DELETE FROM eval_rollups t USING ${k}
      WHERE t.provider_id = k.provider_id AND t.region = k.region
        AND t.bucket >= k.day AND t.bucket < k.day + interval '24 hours'`;
    await tx`
      INSERT INTO eval_rollups ${
      AGGREGATE(
        tx,
        tx`(
        SELECT ${SOURCE_COLUMNS(tx)} FROM eval_results e JOIN ${k}
          ON e.provider_id = k.provider_id AND e.region = k.region
         AND e.created_at >= k.day AND e.created_at < k.day + interval '24 hours'
        WHERE e.is_mainline AND NOT EXISTS (SELECT 1 FROM eval_rollup_queue q WHERE q.result_id = e.id))`,
      )
    }`;
    return true;
  });
}

/** Rebuilds every rollup from eval_results (to check the rollups, or after a bulk change). */
export async function rebuildRollups(sql: Sql): Promise<number> {
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${ROLLUP_LOCK})`;
    await tx`DELETE FROM eval_rollups`;
    await tx`DELETE FROM eval_rollup_queue`;
    await tx`DELETE FROM eval_rollup_dirty`;
    await tx`INSERT INTO eval_rollup_queue (result_id) SELECT id FROM eval_results WHERE is_mainline`;
  });
  return await rollUpResults(sql, 100_000);
}

/** Aggregates of one provider (and region) over a period. Latencies in ms, scores 0–100. */
export interface MetricSummary {
  results: number;
  responseLatency: {
    mean: number | null;
    sd: number | null;
    min: number | null;
    max: number | null;
    p90: number | null;
    n: number;
  };
  interruptLatency: {
    mean: number | null;
    sd: number | null;
    min: number | null;
    max: number | null;
    n: number;
  };
  networkResilience: number | null;
  naturalness: number | null;
  noiseReduction: number | null;
  lastResultAt: string | null;
}

export interface LeaderboardEntry extends MetricSummary {
  rank: number;
  providerId: string;
  providerName: string;
  sku: number;
  /** null in the all-regions ranking. */
  region: string | null;
}

export interface Leaderboard {
  days: number;
  region: string | null;
  /** Provider × region, fastest mean response first. */
  entries: LeaderboardEntry[];
  /** One row per provider over all regions (or the chosen one). */
  providers: LeaderboardEntry[];
}

// Sums → means and spreads. sd is the spread of per-job medians across jobs.
const SUMMARY = (sql: Sql) =>
  sql`
  sum(results)::int AS results,
  sum(response_sum) / nullif(sum(response_n), 0) AS response_mean,
  sqrt(greatest(sum(response_sumsq) / nullif(sum(response_n), 0)
       - power(sum(response_sum) / nullif(sum(response_n), 0), 2), 0)) AS response_sd,
  min(response_min) AS response_min, max(response_max) AS response_max,
  sum(response_p90_sum) / nullif(sum(response_p90_n), 0) AS response_p90,
  sum(response_n)::int AS response_n,
  sum(interrupt_sum) / nullif(sum(interrupt_n), 0) AS interrupt_mean,
  sqrt(greatest(sum(interrupt_sumsq) / nullif(sum(interrupt_n), 0)
       - power(sum(interrupt_sum) / nullif(sum(interrupt_n), 0), 2), 0)) AS interrupt_sd,
  min(interrupt_min) AS interrupt_min, max(interrupt_max) AS interrupt_max,
  sum(interrupt_n)::int AS interrupt_n,
  sum(resilience_sum) / nullif(sum(resilience_n), 0) AS resilience,
  sum(naturalness_sum) / nullif(sum(naturalness_n), 0) AS naturalness,
  sum(noise_sum) / nullif(sum(noise_n), 0) AS noise,
  max(last_result_at) AS last_result_at`;

// The same aggregates straight from eval_results: the baseline the bench compares against,
// and a cross-check in tests.
const SUMMARY_ON_READ = (sql: Sql) =>
  sql`
  count(*)::int AS results,
  avg(response_latency_median) AS response_mean,
  stddev_pop(response_latency_median) AS response_sd,
  min(response_latency_median) AS response_min, max(response_latency_median) AS response_max,
  avg(response_latency_p90) AS response_p90,
  count(response_latency_median)::int AS response_n,
  avg(interrupt_latency_median) AS interrupt_mean,
  stddev_pop(interrupt_latency_median) AS interrupt_sd,
  min(interrupt_latency_median) AS interrupt_min, max(interrupt_latency_median) AS interrupt_max,
  count(interrupt_latency_median)::int AS interrupt_n,
  avg(network_resilience) AS resilience, avg(naturalness) AS naturalness, avg(noise_reduction) AS noise,
  max(created_at) AS last_result_at`;

/**
 * Mainline rankings by provider and region over the last `days` whole UTC days (the day
 * rollups; so a day's results count from its start).
 */
export async function leaderboard(
  sql: Sql,
  opts: { days: number; region?: string | null; onRead?: boolean },
): Promise<Leaderboard> {
  const region = opts.region ?? null;
  const since = sql`date_trunc('day', now() - make_interval(days => ${opts.days - 1}), 'UTC')`;
  // Provider names are fetched alongside (a separate connection), not after.
  const providersQuery = listProviders(sql);
  const rows = opts.onRead
    ? await sql`
      SELECT provider_id, region, grouping(region) AS all_regions, ${SUMMARY_ON_READ(sql)}
      FROM eval_results
      WHERE is_mainline AND created_at >= ${since} ${region ? sql`AND region = ${region}` : sql``}
      GROUP BY GROUPING SETS ((provider_id, region), (provider_id))`
    : await sql`
      SELECT provider_id, region, grouping(region) AS all_regions, ${SUMMARY(sql)}
      FROM eval_rollups
      WHERE bucket_size = 'day' AND bucket >= ${since} ${region ? sql`AND region = ${region}` : sql``}
      GROUP BY GROUPING SETS ((provider_id, region), (provider_id))`;
  const providers = await providersQuery;
  const byId = new Map(providers.map((p) => [p.id, p]));
  const entries: LeaderboardEntry[] = [];
  const totals: LeaderboardEntry[] = [];
  for (const r of rows) {
    const p = byId.get(r.providerId);
    const entry: LeaderboardEntry = {
      rank: 0,
      providerId: r.providerId,
      providerName: p?.name ?? r.providerId,
      sku: p?.sku ?? 0,
      region: r.allRegions ? null : r.region,
      ...toSummary(r),
    };
    (r.allRegions ? totals : entries).push(entry);
  }
  return { days: opts.days, region, entries: rank(entries), providers: rank(totals) };
}

/** A point of a realtime series: one bucket's aggregates. */
export interface SeriesPoint extends MetricSummary {
  t: string;
}

export interface RealtimeSeries {
  providerId: string;
  providerName: string;
  region: string;
  points: SeriesPoint[];
}

/** Picks the bucket size for a time range so a series stays within MAX_POINTS. */
export function autoBucket(fromMs: number, toMs: number): BucketSize {
  const span = toMs - fromMs;
  if (span <= 6 * BUCKET_MS.hour) return "minute";
  if (span <= 14 * BUCKET_MS.day) return "hour";
  return "day";
}

/** Mainline series per provider and region over [from, to), one point per bucket with results. */
export async function realtime(
  sql: Sql,
  opts: {
    from: Date;
    to: Date;
    bucket: BucketSize;
    providerId?: string | null;
    region?: string | null;
    onRead?: boolean;
  },
): Promise<RealtimeSeries[]> {
  const filter = sql`${opts.providerId ? sql`AND provider_id = ${opts.providerId}` : sql``}
    ${opts.region ? sql`AND region = ${opts.region}` : sql``}`;
  const providersQuery = listProviders(sql);
  const rows = opts.onRead
    ? await sql`
      SELECT provider_id, region, date_trunc(${opts.bucket}, created_at, 'UTC') AS bucket, ${
      SUMMARY_ON_READ(sql)
    }
      FROM eval_results
      WHERE is_mainline AND created_at >= date_trunc(${opts.bucket}, ${opts.from}::timestamptz, 'UTC')
        AND created_at < ${opts.to} ${filter}
      GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`
    : await sql`
      SELECT provider_id, region, bucket, ${SUMMARY(sql)}
      FROM eval_rollups
      WHERE bucket_size = ${opts.bucket} AND bucket >= date_trunc(${opts.bucket}, ${opts.from}::timestamptz, 'UTC')
        AND bucket < ${opts.to} ${filter}
      GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`;
  const providers = await providersQuery;
  const names = new Map(providers.map((p) => [p.id, p.name]));
  const series = new Map<string, RealtimeSeries>();
  for (const r of rows) {
    const key = `${r.providerId}\u0000${r.region}`;
    let s = series.get(key);
    if (!s) {
      series.set(
        key,
        s = {
          providerId: r.providerId,
          providerName: names.get(r.providerId) ?? r.providerId,
          region: r.region,
          points: [],
        },
      );
    }
    s.points.push({ t: (r.bucket as Date).toISOString(), ...toSummary(r) });
  }
  return [...series.values()];
}

function rank(entries: LeaderboardEntry[]): LeaderboardEntry[] {
  entries.sort((a, b) =>
    (a.responseLatency.mean ?? Infinity) - (b.responseLatency.mean ?? Infinity) ||
    a.providerName.localeCompare(b.providerName) || (a.region ?? "").localeCompare(b.region ?? "")
  );
  entries.forEach((e, i) => e.rank = i + 1);
  return entries;
}

function toSummary(r: Record<string, unknown>): MetricSummary {
  const num = (v: unknown) => v === null || v === undefined ? null : Math.round(Number(v) * 100) / 100;
  return {
    results: Number(r.results),
    responseLatency: {
      mean: num(r.responseMean),
      sd: num(r.responseSd),
      min: num(r.responseMin),
      max: num(r.responseMax),
      p90: num(r.responseP90),
      n: Number(r.responseN),
    },
    interruptLatency: {
      mean: num(r.interruptMean),
      sd: num(r.interruptSd),
      min: num(r.interruptMin),
      max: num(r.interruptMax),
      n: Number(r.interruptN),
    },
    networkResilience: num(r.resilience),
    naturalness: num(r.naturalness),
    noiseReduction: num(r.noise),
    lastResultAt: r.lastResultAt instanceof Date ? r.lastResultAt.toISOString() : null,
  };
}
