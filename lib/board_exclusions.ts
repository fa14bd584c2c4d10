// What the public boards leave out, and why (issue 13): administrator exclusions with a
// recorded reason (one result, or every board result of a provider in a time window), and
// the discards per reason published next to each provider's numbers. An excluded result
// stays stored and visible as excluded; the rollups follow through the drift trigger
// (migrations/00010_boards.sql) and the recompute run before answering.
import { recordAudit } from "./audit.ts";
import type { Db, Sql } from "./db.ts";
import { HttpError } from "./errors.ts";
import { boardResultSql } from "./job_completer.ts";
import { rollUpResults } from "./metrics.ts";

/** What to exclude: one result, or a provider's board results created in [from, to). */
export type ExclusionTarget =
  | { resultId: number }
  | { providerId: string; region?: string | null; from: Date; to: Date };

/** One excluded result as the provider page and the API show it. */
export interface Exclusion {
  resultId: number;
  jobId: number;
  providerId: string;
  region: string;
  createdAt: string;
  excludedAt: string;
  reason: string;
}

/**
 * Takes the target's mainline results off the boards with `reason`, audited, and recomputes
 * the rollups before returning. Results already excluded keep their first reason. Returns the
 * ids it excluded; 404 for a result id that is not a mainline result.
 */
export async function excludeResults(
  sql: Sql,
  actor: { id: number; ip?: string },
  target: ExclusionTarget,
  reason: string,
): Promise<number[]> {
  const where = "resultId" in target
    ? sql`id = ${target.resultId}`
    : sql`provider_id = ${target.providerId} AND created_at >= ${target.from} AND created_at < ${target.to}
          ${target.region ? sql`AND region = ${target.region}` : sql``}`;
  if ("resultId" in target) {
    const [r] = await sql`SELECT is_mainline FROM eval_results WHERE id = ${target.resultId}`;
    if (!r?.isMainline) throw new HttpError(404, "not_found", `No mainline result ${target.resultId}`);
  }
  const rows = await sql<{ id: number }[]>`
    UPDATE eval_results SET excluded_at = now(), excluded_by = ${actor.id}, excluded_reason = ${reason}
    WHERE ${where} AND is_mainline AND excluded_at IS NULL
    RETURNING id`;
  const ids = rows.map((r) => Number(r.id)).sort((a, b) => a - b);
  await recordAudit(sql, {
    action: "board.excluded",
    actorUserId: actor.id,
    ip: actor.ip,
    targetType: "resultId" in target ? "result" : "provider",
    targetId: "resultId" in target ? target.resultId : target.providerId,
    details: {
      reason,
      results: ids.length,
      ...("resultId" in target ? {} : {
        region: target.region ?? null,
        from: target.from.toISOString(),
        to: target.to.toISOString(),
      }),
    },
  });
  await rollUpResults(sql);
  return ids;
}

/** Puts an excluded result back on the boards (audited); 404 unless it is excluded. */
export async function restoreResult(
  sql: Sql,
  actor: { id: number; ip?: string },
  resultId: number,
): Promise<void> {
  const [row] = await sql`
    UPDATE eval_results SET excluded_at = NULL, excluded_by = NULL, excluded_reason = NULL
    WHERE id = ${resultId} AND excluded_at IS NOT NULL
    RETURNING id`;
  if (!row) throw new HttpError(404, "not_found", `Result ${resultId} is not excluded`);
  await recordAudit(sql, {
    action: "board.restored",
    actorUserId: actor.id,
    ip: actor.ip,
    targetType: "result",
    targetId: resultId,
  });
  await rollUpResults(sql);
}

/** A provider's excluded mainline results created in the last `days` UTC days, newest first. */
export async function listExclusions(sql: Db, providerId: string, days: number): Promise<Exclusion[]> {
  const rows = await sql`
    SELECT id, job_id, provider_id, region, created_at, excluded_at, excluded_reason FROM eval_results
    WHERE provider_id = ${providerId} AND is_mainline AND excluded_at IS NOT NULL
      AND created_at >= date_trunc('day', now() - make_interval(days => ${days - 1}), 'UTC')
    ORDER BY created_at DESC, id DESC LIMIT 200`;
  return rows.map((r) => ({
    resultId: Number(r.id),
    jobId: Number(r.jobId),
    providerId: r.providerId,
    region: r.region,
    createdAt: (r.createdAt as Date).toISOString(),
    excludedAt: (r.excludedAt as Date).toISOString(),
    reason: r.excludedReason,
  }));
}

/** Why runs and turns of a provider's board runs were not counted, by reason. */
export const DISCARD_REASONS = [
  "run failed",
  "step failed",
  "no voice detected",
  "ambiguous turn",
  "interruption not honoured",
  "measurement unreliable (host overloaded)",
  "excluded by an administrator",
] as const;
export type DiscardReason = typeof DISCARD_REASONS[number];

/** Discard counts of one provider over the last `days` UTC days: runs, turns and results. */
export interface Discards {
  /** Board runs (jobs) that failed and produced no result. */
  runsFailed: number;
  /** Counted per reason; "run failed" and "excluded…" count jobs/results, the others turns. */
  byReason: { reason: DiscardReason; count: number }[];
}

/**
 * The provider's discards: failed jobs of board runs (mainline items run by a curator, as
 * boardResultSql() decides today), results whose report has errors (a step failed), turns
 * not measured (no reply: no voice detected; the agent talked over the caller: ambiguous; a
 * barge-in the agent did not stop for; the agent's host was overloaded while it timed the turn:
 * `unreliable`, issue 19), and results an administrator excluded.
 */
export async function discards(sql: Db, providerId: string, days: number): Promise<Discards> {
  const since = sql`date_trunc('day', now() - make_interval(days => ${days - 1}), 'UTC')`;
  const [row] = await sql`
    SELECT
      (SELECT count(*)::int FROM eval_jobs j JOIN workflows w ON w.id = j.workflow_id
         JOIN eval_sets e ON e.id = j.eval_set_id
       WHERE w.provider_id = ${providerId} AND j.status = 'failed' AND j.created_at >= ${since}
         AND ${boardResultSql(sql)}) AS runs_failed,
      (SELECT count(*)::int FROM eval_results r
       WHERE r.provider_id = ${providerId} AND r.is_mainline AND r.created_at >= ${since}
         AND jsonb_typeof(r.report -> 'errors') = 'array' AND jsonb_array_length(r.report -> 'errors') > 0)
        AS steps_failed,
      (SELECT count(*)::int FROM eval_results r
       WHERE r.provider_id = ${providerId} AND r.is_mainline AND r.excluded_at IS NOT NULL
         AND r.created_at >= ${since}) AS excluded,
      (SELECT count(*)::int FROM eval_results r, jsonb_array_elements(r.turns) t
       WHERE r.provider_id = ${providerId} AND r.is_mainline AND r.excluded_at IS NULL
         AND r.created_at >= ${since} AND jsonb_typeof(r.turns) = 'array'
         AND (t ->> 'ok') = 'false' AND (t ->> 'kind') = 'response' AND (t ->> 'latency_ms') IS NULL) AS no_voice,
      (SELECT count(*)::int FROM eval_results r, jsonb_array_elements(r.turns) t
       WHERE r.provider_id = ${providerId} AND r.is_mainline AND r.excluded_at IS NULL
         AND r.created_at >= ${since} AND jsonb_typeof(r.turns) = 'array'
         AND (t ->> 'ok') = 'false' AND (t ->> 'kind') = 'interrupt' AND (t ->> 'latency_ms') IS NULL)
        AS not_stopped,
      (SELECT count(*)::int FROM eval_results r, jsonb_array_elements(r.turns) t
       WHERE r.provider_id = ${providerId} AND r.is_mainline AND r.excluded_at IS NULL
         AND r.created_at >= ${since} AND jsonb_typeof(r.turns) = 'array'
         AND (t ->> 'ok') = 'false' AND jsonb_typeof(t -> 'latency_ms') = 'number'
         AND (t ->> 'unreliable') IS DISTINCT FROM 'true') AS ambiguous,
      (SELECT count(*)::int FROM eval_results r, jsonb_array_elements(r.turns) t
       WHERE r.provider_id = ${providerId} AND r.is_mainline AND r.excluded_at IS NULL
         AND r.created_at >= ${since} AND jsonb_typeof(r.turns) = 'array'
         AND (t ->> 'ok') = 'false' AND (t ->> 'unreliable') = 'true') AS unreliable`;
  return {
    runsFailed: row.runsFailed,
    byReason: [
      { reason: "run failed", count: row.runsFailed },
      { reason: "step failed", count: row.stepsFailed },
      { reason: "no voice detected", count: row.noVoice },
      { reason: "ambiguous turn", count: row.ambiguous },
      { reason: "interruption not honoured", count: row.notStopped },
      { reason: "measurement unreliable (host overloaded)", count: row.unreliable },
      { reason: "excluded by an administrator", count: row.excluded },
    ],
  };
}
