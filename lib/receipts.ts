// Receipts of a public figure (issue 13): every result the figure counts, with its stored
// per-job numbers, the SHA-256 of its report and of each recording, so a reader can fetch the
// recordings (the result's artifact routes), check their hashes and re-derive the figure.
import type { Sql } from "./db.ts";
import { leaderboard, onBoardSql } from "./metrics.ts";

export interface Receipt {
  resultId: number;
  jobId: number;
  region: string;
  createdAt: string;
  responseLatency: { median: number | null; n: number };
  interruptLatency: { median: number | null; n: number };
  reportSha256: string | null;
  recordings: { name: string; sha256: string; sizeBytes: number }[];
}

export interface Receipts {
  providerId: string;
  days: number;
  region: string | null;
  /** The method set of the figure (the leaderboard's, the newest unless asked). */
  method: { id: string; versions: Record<string, string> } | null;
  /** The figure as the leaderboard publishes it: the mean of the receipts' medians. */
  figure: { responseLatencyMean: number | null; jobs: number; turns: number } | null;
  results: Receipt[];
}

/** The receipts behind a provider's leaderboard figure (same period, region and method set). */
export async function receipts(
  sql: Sql,
  q: { providerId: string; days: number; region?: string; method?: string },
): Promise<Receipts> {
  const board = await leaderboard(sql, { days: q.days, region: q.region ?? null, method: q.method ?? null });
  const method = board.method;
  const total = board.providers.find((p) => p.providerId === q.providerId) ?? null;
  return {
    providerId: q.providerId,
    days: q.days,
    region: q.region ?? null,
    method: method ? { id: method.id, versions: method.versions } : null,
    figure: total
      ? {
        responseLatencyMean: total.responseLatency.mean,
        jobs: total.responseLatency.n,
        turns: total.responseLatency.turns,
      }
      : null,
    results: method ? await receiptRows(sql, { ...q, methodId: method.id }) : [],
  };
}

/**
 * The counted results of one provider, period (and region) under one method set, with their
 * hashes: all of them oldest first (at most 10,000), or the `newest` n newest first.
 */
export async function receiptRows(
  sql: Sql,
  q: { providerId: string; days: number; region?: string; methodId: string; newest?: number },
): Promise<Receipt[]> {
  const rows = await sql`
    SELECT e.id, e.job_id, e.region, e.created_at, e.response_latency_median, e.response_latency_n,
           e.interrupt_latency_median, e.interrupt_latency_n, e.report_sha256,
           coalesce((SELECT json_agg(json_build_object('name', a.name, 'sha256', a.sha256, 'sizeBytes', a.size_bytes)
                      ORDER BY a.id)
                     FROM eval_artifacts a WHERE a.job_id = e.job_id AND a.kind = 'recording'), '[]') AS recordings
    FROM eval_results e
    WHERE ${onBoardSql(sql)} AND e.provider_id = ${q.providerId}
      AND e.created_at >= date_trunc('day', now() - make_interval(days => ${q.days - 1}), 'UTC')
      ${q.region ? sql`AND e.region = ${q.region}` : sql``}
      AND left(md5(e.method_set), 12) = ${q.methodId}
    ${
    q.newest
      ? sql`ORDER BY e.created_at DESC, e.id DESC LIMIT ${q.newest}`
      : sql`ORDER BY e.created_at, e.id LIMIT 10000`
  }`;
  return rows.map((r) => ({
    resultId: Number(r.id),
    jobId: Number(r.jobId),
    region: r.region,
    createdAt: (r.createdAt as Date).toISOString(),
    responseLatency: { median: r.responseLatencyMedian, n: r.responseLatencyN },
    interruptLatency: { median: r.interruptLatencyMedian, n: r.interruptLatencyN },
    reportSha256: r.reportSha256,
    recordings: r.recordings,
  }));
}
