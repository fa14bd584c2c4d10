// Public metrics over mainline results: rollups maintained from inserts, and the
// leaderboard / realtime reads served from them.
import { type Interval, meanInterval, tiedRanks } from "./board_stats.ts";
import type { Db, Fragment, Sql } from "./db.ts";
import { listProviders, PRODUCT_TYPES, type ProductType, productTypeOf } from "./providers.ts";
import { readSetting } from "./settings.ts";

// Arbitrary constant: the advisory lock that lets one roller at a time fold the queue, so
// two processes never upsert the same rollup rows in different orders (deadlock).
const ROLLUP_LOCK = 7_346_021_004;

export type BucketSize = "minute" | "hour" | "day";
export const BUCKET_MS: Record<BucketSize, number> = { minute: 60_000, hour: 3_600_000, day: 86_400_000 };
/** Most buckets one realtime series may span. */
export const MAX_POINTS = 2_200;

/**
 * SQL predicate over eval_results `e`: the result feeds the public boards — mainline when it
 * was stored (lib/job_completer.ts boardResultSql()) and not excluded by an administrator.
 */
export function onBoardSql(sql: Db, alias = "e"): Fragment {
  return sql`(${sql(alias)}.is_mainline AND ${sql(alias)}.excluded_at IS NULL)`;
}

// Rollup columns, in the order AGGREGATE() selects them.
const ROLLUP_COLUMNS = (sql: Db) =>
  sql`bucket_size, provider_id, region, method_set, bucket, results,
      response_n, response_sum, response_sumsq, response_min, response_max, response_p90_n, response_p90_sum,
      response_turns, interrupt_n, interrupt_sum, interrupt_sumsq, interrupt_min, interrupt_max, interrupt_turns,
      resilience_n, resilience_sum, naturalness_n, naturalness_sum, noise_n, noise_sum, last_result_at,
      tt_pause_n, tt_pause_takeovers, tt_backchannel_n, tt_backchannel_stops, tt_background_n,
      tt_background_triggers, tt_penalty_n, tt_penalty_sum, tt_penalty_sumsq`;

// The rollup rows (minute, hour and day) of the results in `source`, a relation with the
// columns provider_id, region, method_set, created_at, rl, rp, rt, il, it, nr, na, nz, and the
// turn-taking event counts tpn, tpt, tbn, tbs, tgn, tgt and penalty tpen (migrations/00009_turn_taking.sql).
// Results of different method sets never share a row, so no figure pools method versions.
const AGGREGATE = (sql: Db, source: Fragment) =>
  sql`
  SELECT s.size AS bucket_size, r.provider_id, r.region, r.method_set,
         date_trunc(s.size, r.created_at, 'UTC') AS bucket,
         count(*)::int AS results,
         count(rl)::int AS response_n, coalesce(sum(rl), 0) AS response_sum,
         coalesce(sum(rl * rl), 0) AS response_sumsq, min(rl) AS response_min, max(rl) AS response_max,
         count(rp)::int AS response_p90_n, coalesce(sum(rp), 0) AS response_p90_sum,
         coalesce(sum(rt) FILTER (WHERE rl IS NOT NULL), 0)::bigint AS response_turns,
         count(il)::int AS interrupt_n, coalesce(sum(il), 0) AS interrupt_sum,
         coalesce(sum(il * il), 0) AS interrupt_sumsq, min(il) AS interrupt_min, max(il) AS interrupt_max,
         coalesce(sum(it) FILTER (WHERE il IS NOT NULL), 0)::bigint AS interrupt_turns,
         count(nr)::int AS resilience_n, coalesce(sum(nr), 0) AS resilience_sum,
         count(na)::int AS naturalness_n, coalesce(sum(na), 0) AS naturalness_sum,
         count(nz)::int AS noise_n, coalesce(sum(nz), 0) AS noise_sum,
         max(r.created_at) AS last_result_at,
         coalesce(sum(tpn), 0)::int AS tt_pause_n, coalesce(sum(tpt), 0)::int AS tt_pause_takeovers,
         coalesce(sum(tbn), 0)::int AS tt_backchannel_n, coalesce(sum(tbs), 0)::int AS tt_backchannel_stops,
         coalesce(sum(tgn), 0)::int AS tt_background_n, coalesce(sum(tgt), 0)::int AS tt_background_triggers,
         count(tpen)::int AS tt_penalty_n, coalesce(sum(tpen), 0) AS tt_penalty_sum,
         coalesce(sum(tpen * tpen), 0) AS tt_penalty_sumsq
  FROM ${source} r CROSS JOIN (VALUES ('minute'), ('hour'), ('day')) AS s(size)
  GROUP BY 1, 2, 3, 4, 5
  ORDER BY 1, 2, 3, 4, 5`;

// eval_results `e` as AGGREGATE()'s source columns.
const SOURCE_COLUMNS = (sql: Db) =>
  sql`e.provider_id, e.region, e.method_set, e.created_at, e.response_latency_median AS rl,
      e.response_latency_p90 AS rp, e.response_latency_n AS rt, e.interrupt_latency_median AS il,
      e.interrupt_latency_n AS it, e.network_resilience AS nr, e.naturalness AS na, e.noise_reduction AS nz,
      e.tt_pause_n AS tpn, e.tt_pause_takeovers AS tpt, e.tt_backchannel_n AS tbn,
      e.tt_backchannel_stops AS tbs, e.tt_background_n AS tgn, e.tt_background_triggers AS tgt,
      e.tt_penalty_ms AS tpen`;

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
          -- A result un-marked or excluded while it waited is off the boards: not folded.
          SELECT ${SOURCE_COLUMNS(tx)} FROM eval_results e JOIN q ON q.result_id = e.id WHERE ${
        onBoardSql(tx)
      }
        ), agg AS (${AGGREGATE(tx, tx`r`)}), ins AS (
          INSERT INTO eval_rollups AS t (${ROLLUP_COLUMNS(tx)}) SELECT * FROM agg
          ON CONFLICT (bucket_size, provider_id, region, method_set, bucket) DO UPDATE SET
            results = t.results + excluded.results,
            response_n = t.response_n + excluded.response_n,
            response_sum = t.response_sum + excluded.response_sum,
            response_sumsq = t.response_sumsq + excluded.response_sumsq,
            response_min = least(t.response_min, excluded.response_min),
            response_max = greatest(t.response_max, excluded.response_max),
            response_p90_n = t.response_p90_n + excluded.response_p90_n,
            response_p90_sum = t.response_p90_sum + excluded.response_p90_sum,
            response_turns = t.response_turns + excluded.response_turns,
            interrupt_n = t.interrupt_n + excluded.interrupt_n,
            interrupt_sum = t.interrupt_sum + excluded.interrupt_sum,
            interrupt_sumsq = t.interrupt_sumsq + excluded.interrupt_sumsq,
            interrupt_min = least(t.interrupt_min, excluded.interrupt_min),
            interrupt_max = greatest(t.interrupt_max, excluded.interrupt_max),
            interrupt_turns = t.interrupt_turns + excluded.interrupt_turns,
            resilience_n = t.resilience_n + excluded.resilience_n,
            resilience_sum = t.resilience_sum + excluded.resilience_sum,
            naturalness_n = t.naturalness_n + excluded.naturalness_n,
            naturalness_sum = t.naturalness_sum + excluded.naturalness_sum,
            noise_n = t.noise_n + excluded.noise_n,
            noise_sum = t.noise_sum + excluded.noise_sum,
            last_result_at = greatest(t.last_result_at, excluded.last_result_at),
            tt_pause_n = t.tt_pause_n + excluded.tt_pause_n,
            tt_pause_takeovers = t.tt_pause_takeovers + excluded.tt_pause_takeovers,
            tt_backchannel_n = t.tt_backchannel_n + excluded.tt_backchannel_n,
            tt_backchannel_stops = t.tt_backchannel_stops + excluded.tt_backchannel_stops,
            tt_background_n = t.tt_background_n + excluded.tt_background_n,
            tt_background_triggers = t.tt_background_triggers + excluded.tt_background_triggers,
            tt_penalty_n = t.tt_penalty_n + excluded.tt_penalty_n,
            tt_penalty_sum = t.tt_penalty_sum + excluded.tt_penalty_sum,
            tt_penalty_sumsq = t.tt_penalty_sumsq + excluded.tt_penalty_sumsq
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
      INSERT INTO eval_rollups (${ROLLUP_COLUMNS(tx)}) ${
      AGGREGATE(
        tx,
        tx`(
        SELECT ${SOURCE_COLUMNS(tx)} FROM eval_results e JOIN ${k}
          ON e.provider_id = k.provider_id AND e.region = k.region
         AND e.created_at >= k.day AND e.created_at < k.day + interval '24 hours'
        WHERE ${onBoardSql(tx)} AND NOT EXISTS (SELECT 1 FROM eval_rollup_queue q WHERE q.result_id = e.id))`,
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
    await tx`INSERT INTO eval_rollup_queue (result_id) SELECT id FROM eval_results e WHERE ${onBoardSql(tx)}`;
  });
  return await rollUpResults(sql, 100_000);
}

/** A latency figure: the mean of per-job medians, with how sure it is. */
export interface LatencyFigure {
  mean: number | null;
  sd: number | null;
  min: number | null;
  max: number | null;
  /** Jobs behind the figure (each contributes its median). */
  n: number;
  /** Turns behind the figure: the n a figure needs before it is ranked. */
  turns: number;
  /** 95 % confidence interval of the mean, clustered by job; null below two jobs. */
  ci95: Interval | null;
}

/** Aggregates of one provider (and region) over a period. Latencies in ms, scores 0–100. */
export interface MetricSummary {
  results: number;
  responseLatency: LatencyFigure & { p90: number | null };
  interruptLatency: LatencyFigure;
  networkResilience: number | null;
  naturalness: number | null;
  noiseReduction: number | null;
  lastResultAt: string | null;
  /** Turn taking (vox-turntaking/1), pooled over every event of the period. */
  turnTaking?: TurnTakingSummary;
}

/** A rate of events (0..1) with its count and 95 % Wilson interval; null rate when n is 0. */
export interface EventRate {
  rate: number | null;
  n: number;
  ci95: [number, number] | null;
}

/** Turn-taking figures of a board row: pooled event rates and the mean penalty per result. */
export interface TurnTakingSummary {
  pauseTakeover: EventRate;
  backchannelStop: EventRate;
  backgroundFalseTrigger: EventRate;
  /** Mean of the results' penalty_ms; n counts those results; the mean's 95 % interval (null below two). */
  penaltyMs: { mean: number | null; n: number; ci95: Interval | null };
}

export interface LeaderboardEntry extends MetricSummary {
  /**
   * Rank by response latency within the entry's product type; figures whose intervals
   * overlap share a rank (`tied`). Null when the figure has fewer turns than the minimum
   * (`enoughData` false) or fewer than two jobs: listed, not ranked.
   */
  rank: number | null;
  tied: boolean;
  enoughData: boolean;
  providerId: string;
  providerName: string;
  sku: number;
  productType: ProductType;
  /** null in the all-regions ranking. */
  region: string | null;
}

/** A set of method versions figures were computed with (never pooled with another set). */
export interface MethodSet {
  /** Short stable id of the set (for `?method=`). */
  id: string;
  /** Method version per metric, as the eval agent reported it. */
  versions: Record<string, string>;
  results: number;
  lastResultAt: string | null;
}

export interface Leaderboard {
  days: number;
  region: string | null;
  /** null = every product type, each ranked on its own. */
  productType: ProductType | null;
  /** Turns a figure needs to be ranked (setting `boards.min_turns`). */
  minTurns: number;
  /** The method set every figure below was computed with: the newest unless asked for. */
  method: MethodSet | null;
  /** Every method set with board results in the period, newest first. */
  methods: MethodSet[];
  /** Provider × region: ranked first (by rank, then mean), then the unranked. */
  entries: LeaderboardEntry[];
  /** One row per provider over all regions (or the chosen one). */
  providers: LeaderboardEntry[];
}

// Sums → means, spreads and the inputs of the interval. sd is the spread of per-job medians
// across jobs.
const SUMMARY = (sql: Sql) =>
  sql`
  sum(results)::int AS results,
  sum(response_sum) / nullif(sum(response_n), 0) AS response_mean,
  CASE WHEN sum(response_n) > 0 THEN sqrt(greatest(sum(response_sumsq) / sum(response_n)
       - power(sum(response_sum) / sum(response_n), 2), 0)) END AS response_sd,
  min(response_min) AS response_min, max(response_max) AS response_max,
  sum(response_p90_sum) / nullif(sum(response_p90_n), 0) AS response_p90,
  sum(response_n)::int AS response_n, sum(response_sum) AS response_sum, sum(response_sumsq) AS response_sumsq,
  sum(response_turns)::bigint AS response_turns,
  sum(interrupt_sum) / nullif(sum(interrupt_n), 0) AS interrupt_mean,
  CASE WHEN sum(interrupt_n) > 0 THEN sqrt(greatest(sum(interrupt_sumsq) / sum(interrupt_n)
       - power(sum(interrupt_sum) / sum(interrupt_n), 2), 0)) END AS interrupt_sd,
  min(interrupt_min) AS interrupt_min, max(interrupt_max) AS interrupt_max,
  sum(interrupt_n)::int AS interrupt_n, sum(interrupt_sum) AS interrupt_sum, sum(interrupt_sumsq) AS interrupt_sumsq,
  sum(interrupt_turns)::bigint AS interrupt_turns,
  sum(resilience_sum) / nullif(sum(resilience_n), 0) AS resilience,
  sum(naturalness_sum) / nullif(sum(naturalness_n), 0) AS naturalness,
  sum(noise_sum) / nullif(sum(noise_n), 0) AS noise,
  max(last_result_at) AS last_result_at,
  sum(tt_pause_n)::int AS tt_pause_n, sum(tt_pause_takeovers)::int AS tt_pause_takeovers,
  sum(tt_backchannel_n)::int AS tt_backchannel_n, sum(tt_backchannel_stops)::int AS tt_backchannel_stops,
  sum(tt_background_n)::int AS tt_background_n, sum(tt_background_triggers)::int AS tt_background_triggers,
  sum(tt_penalty_n)::int AS tt_penalty_n, sum(tt_penalty_sum) / nullif(sum(tt_penalty_n), 0) AS tt_penalty,
  sum(tt_penalty_sum) AS tt_penalty_sum, sum(tt_penalty_sumsq) AS tt_penalty_sumsq`;

// The same aggregates straight from eval_results: the baseline the bench compares against,
// and a cross-check in tests (and in `deno task verify`).
const SUMMARY_ON_READ = (sql: Sql) =>
  sql`
  count(*)::int AS results,
  avg(response_latency_median) AS response_mean,
  stddev_pop(response_latency_median) AS response_sd,
  min(response_latency_median) AS response_min, max(response_latency_median) AS response_max,
  avg(response_latency_p90) AS response_p90,
  count(response_latency_median)::int AS response_n, coalesce(sum(response_latency_median), 0) AS response_sum,
  coalesce(sum(response_latency_median * response_latency_median), 0) AS response_sumsq,
  coalesce(sum(response_latency_n) FILTER (WHERE response_latency_median IS NOT NULL), 0)::bigint AS response_turns,
  avg(interrupt_latency_median) AS interrupt_mean,
  stddev_pop(interrupt_latency_median) AS interrupt_sd,
  min(interrupt_latency_median) AS interrupt_min, max(interrupt_latency_median) AS interrupt_max,
  count(interrupt_latency_median)::int AS interrupt_n, coalesce(sum(interrupt_latency_median), 0) AS interrupt_sum,
  coalesce(sum(interrupt_latency_median * interrupt_latency_median), 0) AS interrupt_sumsq,
  coalesce(sum(interrupt_latency_n) FILTER (WHERE interrupt_latency_median IS NOT NULL), 0)::bigint
    AS interrupt_turns,
  avg(network_resilience) AS resilience, avg(naturalness) AS naturalness, avg(noise_reduction) AS noise,
  max(created_at) AS last_result_at,
  sum(tt_pause_n)::int AS tt_pause_n, sum(tt_pause_takeovers)::int AS tt_pause_takeovers,
  sum(tt_backchannel_n)::int AS tt_backchannel_n, sum(tt_backchannel_stops)::int AS tt_backchannel_stops,
  sum(tt_background_n)::int AS tt_background_n, sum(tt_background_triggers)::int AS tt_background_triggers,
  count(tt_penalty_ms)::int AS tt_penalty_n, avg(tt_penalty_ms) AS tt_penalty,
  coalesce(sum(tt_penalty_ms), 0) AS tt_penalty_sum, coalesce(sum(tt_penalty_ms * tt_penalty_ms), 0) AS tt_penalty_sumsq`;

/** Short stable id of a method set's canonical text. */
const METHOD_ID = (sql: Sql, col: Fragment) => sql`left(md5(${col}), 12)`;

// The method sets among `rows` (which carry method_id, method_set, results, last_result_at),
// newest first.
function methodSets(rows: Record<string, unknown>[]): MethodSet[] {
  const sets = new Map<string, MethodSet>();
  for (const r of rows) {
    const id = r.methodId as string;
    let m = sets.get(id);
    if (!m) {
      sets.set(id, m = { id, versions: JSON.parse(r.methodSet as string), results: 0, lastResultAt: null });
    }
    m.results += Number(r.results);
    const last = r.lastResultAt instanceof Date ? r.lastResultAt.toISOString() : null;
    if (last && (!m.lastResultAt || last > m.lastResultAt)) m.lastResultAt = last;
  }
  return [...sets.values()].sort((a, b) =>
    (b.lastResultAt ?? "").localeCompare(a.lastResultAt ?? "") || a.id.localeCompare(b.id)
  );
}

/**
 * Board rankings by provider and region over the last `days` whole UTC days (the day
 * rollups; so a day's results count from its start), of one method set (the newest, or
 * `method`), for one product type or each on its own.
 */
export async function leaderboard(
  sql: Sql,
  opts: {
    days: number;
    region?: string | null;
    productType?: ProductType | null;
    method?: string | null;
    onRead?: boolean;
  },
): Promise<Leaderboard> {
  const region = opts.region ?? null;
  const productType = opts.productType ?? null;
  const since = sql`date_trunc('day', now() - make_interval(days => ${opts.days - 1}), 'UTC')`;
  // Provider names are fetched alongside (a separate connection), not after.
  const providersQuery = listProviders(sql);
  const minTurnsQuery = readSetting(sql, "boards.min_turns");
  const rows = opts.onRead
    ? await sql`
      SELECT provider_id, region, method_set, ${METHOD_ID(sql, sql`method_set`)} AS method_id,
             grouping(region) AS all_regions, ${SUMMARY_ON_READ(sql)}
      FROM eval_results e
      WHERE ${onBoardSql(sql)} AND created_at >= ${since} ${region ? sql`AND region = ${region}` : sql``}
      GROUP BY GROUPING SETS ((provider_id, method_set, region), (provider_id, method_set))`
    : await sql`
      SELECT provider_id, region, method_set, ${METHOD_ID(sql, sql`method_set`)} AS method_id,
             grouping(region) AS all_regions, ${SUMMARY(sql)}
      FROM eval_rollups
      WHERE bucket_size = 'day' AND bucket >= ${since} ${region ? sql`AND region = ${region}` : sql``}
      GROUP BY GROUPING SETS ((provider_id, method_set, region), (provider_id, method_set))`;
  const [providers, minTurns] = await Promise.all([providersQuery, minTurnsQuery]);
  const byId = new Map(providers.map((p) => [p.id, p]));
  const typed = rows.filter((r) =>
    !productType || productTypeOf(byId.get(r.providerId as string)?.sku ?? 0) === productType
  );
  const methods = methodSets(typed.filter((r) => r.allRegions));
  const method = opts.method ? methods.find((m) => m.id === opts.method) ?? null : methods[0] ?? null;
  const entries: LeaderboardEntry[] = [];
  const totals: LeaderboardEntry[] = [];
  for (const r of typed) {
    if (r.methodId !== method?.id) continue;
    const p = byId.get(r.providerId);
    const summary = toSummary(r);
    const entry: LeaderboardEntry = {
      rank: null,
      tied: false,
      enoughData: summary.responseLatency.turns >= minTurns,
      providerId: r.providerId,
      providerName: p?.name ?? r.providerId,
      sku: p?.sku ?? 0,
      productType: productTypeOf(p?.sku ?? 0),
      region: r.allRegions ? null : r.region,
      ...summary,
    };
    (r.allRegions ? totals : entries).push(entry);
  }
  return {
    days: opts.days,
    region,
    productType,
    minTurns,
    method,
    methods,
    entries: rank(entries),
    providers: rank(totals),
  };
}

/** A point of a realtime series: one bucket's aggregates. */
export interface SeriesPoint extends MetricSummary {
  t: string;
}

export interface RealtimeSeries {
  providerId: string;
  providerName: string;
  region: string;
  /** The method set of every point (series of different sets are never merged). */
  methodId: string;
  points: SeriesPoint[];
}

/** Picks the bucket size for a time range so a series stays within MAX_POINTS. */
export function autoBucket(fromMs: number, toMs: number): BucketSize {
  const span = toMs - fromMs;
  if (span <= 6 * BUCKET_MS.hour) return "minute";
  if (span <= 14 * BUCKET_MS.day) return "hour";
  return "day";
}

/**
 * Board series per provider and region over [from, to), one point per bucket with results,
 * of one method set: `method`, or the newest in the range.
 */
export async function realtime(
  sql: Sql,
  opts: {
    from: Date;
    to: Date;
    bucket: BucketSize;
    providerId?: string | null;
    region?: string | null;
    method?: string | null;
    onRead?: boolean;
  },
): Promise<RealtimeSeries[]> {
  const filter = sql`${opts.providerId ? sql`AND provider_id = ${opts.providerId}` : sql``}
    ${opts.region ? sql`AND region = ${opts.region}` : sql``}`;
  const providersQuery = listProviders(sql);
  const rows = opts.onRead
    ? await sql`
      SELECT provider_id, region, method_set, ${METHOD_ID(sql, sql`method_set`)} AS method_id,
             date_trunc(${opts.bucket}, created_at, 'UTC') AS bucket, ${SUMMARY_ON_READ(sql)}
      FROM eval_results e
      WHERE ${onBoardSql(sql)} AND created_at >= date_trunc(${opts.bucket}, ${opts.from}::timestamptz, 'UTC')
        AND created_at < ${opts.to} ${filter}
      GROUP BY 1, 2, 3, 5 ORDER BY 1, 2, 3, 5`
    : await sql`
      SELECT provider_id, region, method_set, ${METHOD_ID(sql, sql`method_set`)} AS method_id,
             bucket, ${SUMMARY(sql)}
      FROM eval_rollups
      WHERE bucket_size = ${opts.bucket} AND bucket >= date_trunc(${opts.bucket}, ${opts.from}::timestamptz, 'UTC')
        AND bucket < ${opts.to} ${filter}
      GROUP BY 1, 2, 3, 5 ORDER BY 1, 2, 3, 5`;
  const providers = await providersQuery;
  const names = new Map(providers.map((p) => [p.id, p.name]));
  const method = opts.method ?? methodSets(rows)[0]?.id ?? null;
  const series = new Map<string, RealtimeSeries>();
  for (const r of rows) {
    if (r.methodId !== method) continue;
    const key = `${r.providerId}\u0000${r.region}`;
    let s = series.get(key);
    if (!s) {
      series.set(
        key,
        s = {
          providerId: r.providerId,
          providerName: names.get(r.providerId) ?? r.providerId,
          region: r.region,
          methodId: r.methodId,
          points: [],
        },
      );
    }
    s.points.push({ t: (r.bucket as Date).toISOString(), ...toSummary(r) });
  }
  return [...series.values()];
}

// Ranks each product type on its own by response latency, with statistical ties; ranked
// entries first (by rank, then mean), then the unranked (by mean).
function rank(entries: LeaderboardEntry[]): LeaderboardEntry[] {
  for (const type of PRODUCT_TYPES) {
    const group = entries.filter((e) => e.productType === type);
    const ranks = tiedRanks(group.map((e) => ({
      value: e.responseLatency.mean,
      interval: e.responseLatency.ci95,
      eligible: e.enoughData,
    })));
    group.forEach((e, i) => {
      e.rank = ranks[i].rank;
      e.tied = ranks[i].tied;
    });
  }
  entries.sort((a, b) =>
    PRODUCT_TYPES.indexOf(a.productType) - PRODUCT_TYPES.indexOf(b.productType) ||
    (a.rank ?? Infinity) - (b.rank ?? Infinity) ||
    (a.responseLatency.mean ?? Infinity) - (b.responseLatency.mean ?? Infinity) ||
    a.providerName.localeCompare(b.providerName) || (a.region ?? "").localeCompare(b.region ?? "")
  );
  return entries;
}

const num = (v: unknown) => v === null || v === undefined ? null : Math.round(Number(v) * 100) / 100;

function figure(r: Record<string, unknown>, prefix: "response" | "interrupt"): LatencyFigure {
  const n = Number(r[`${prefix}N`]);
  const ci = meanInterval(n, Number(r[`${prefix}Sum`]), Number(r[`${prefix}Sumsq`]));
  return {
    mean: num(r[`${prefix}Mean`]),
    sd: num(r[`${prefix}Sd`]),
    min: num(r[`${prefix}Min`]),
    max: num(r[`${prefix}Max`]),
    n,
    turns: Number(r[`${prefix}Turns`] ?? 0),
    ci95: ci ? { lo: num(ci.lo)!, hi: num(ci.hi)! } : null,
  };
}

/** The mean penalty per result with its 95 % interval (a t-interval over the results, as the latencies). */
function penaltyFigure(r: Record<string, unknown>): TurnTakingSummary["penaltyMs"] {
  const n = Number(r.ttPenaltyN ?? 0);
  const ci = meanInterval(n, Number(r.ttPenaltySum ?? 0), Number(r.ttPenaltySumsq ?? 0));
  return { mean: num(r.ttPenalty), n, ci95: ci ? { lo: num(ci.lo)!, hi: num(ci.hi)! } : null };
}

function toSummary(r: Record<string, unknown>): MetricSummary {
  return {
    results: Number(r.results),
    responseLatency: { ...figure(r, "response"), p90: num(r.responseP90) },
    interruptLatency: figure(r, "interrupt"),
    networkResilience: num(r.resilience),
    naturalness: num(r.naturalness),
    noiseReduction: num(r.noise),
    lastResultAt: r.lastResultAt instanceof Date ? r.lastResultAt.toISOString() : null,
    turnTaking: {
      pauseTakeover: eventRate(r.ttPauseTakeovers, r.ttPauseN),
      backchannelStop: eventRate(r.ttBackchannelStops, r.ttBackchannelN),
      backgroundFalseTrigger: eventRate(r.ttBackgroundTriggers, r.ttBackgroundN),
      penaltyMs: penaltyFigure(r),
    },
  };
}

/**
 * `hits` of `n` events as a rate with its 95 % Wilson score interval (good at small n and at
 * rates of 0 or 1, where a normal interval collapses), each to 4 decimals.
 */
export function eventRate(hits: unknown, n: unknown): EventRate {
  const k = Number(hits ?? 0);
  const total = Number(n ?? 0);
  if (!(total > 0)) return { rate: null, n: 0, ci95: null };
  const p = k / total;
  const z = 1.959963984540054;
  const denom = 1 + (z * z) / total;
  const centre = (p + (z * z) / (2 * total)) / denom;
  const half = (z * Math.sqrt((p * (1 - p)) / total + (z * z) / (4 * total * total))) / denom;
  const r4 = (x: number) => Math.round(x * 10_000) / 10_000;
  return { rate: r4(p), n: total, ci95: [r4(Math.max(0, centre - half)), r4(Math.min(1, centre + half))] };
}
