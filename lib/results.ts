// Results as their users see them: those of jobs the caller may see (lib/job_access.ts),
// plus the public mainline results.
import { type ArtifactInfo, listArtifacts, readArtifact } from "./artifacts.ts";
import type { ArtifactStore } from "./artifact_store.ts";
import type { Db, Sql } from "./db.ts";
import { HttpError } from "./errors.ts";
import { visibleJob } from "./job_access.ts";
import type { AuthUser } from "./roles.ts";

export interface ResultSummary {
  id: number;
  jobId: number;
  workflowId: number;
  evalSetId: number;
  providerId: string;
  region: string;
  scheduleId: number | null;
  agentId: number | null;
  isMainline: boolean;
  responseLatency: { median: number | null; sd: number | null; p90: number | null; n: number };
  interruptLatency: { median: number | null; sd: number | null; p90: number | null; n: number };
  networkResilience: number | null;
  naturalness: number | null;
  noiseReduction: number | null;
  methods: Record<string, string>;
  createdAt: string;
}

export interface ResultDetail extends ResultSummary {
  turns: unknown[];
  report: unknown;
  /** hex SHA-256 of the stored report's text (jsonb's canonical form), set when it was stored. */
  reportSha256: string | null;
  artifacts: ArtifactInfo[];
}

function toResult(r: Record<string, unknown>): ResultSummary {
  return {
    id: r.id as number,
    jobId: r.jobId as number,
    workflowId: r.workflowId as number,
    evalSetId: r.evalSetId as number,
    providerId: r.providerId as string,
    region: r.region as string,
    scheduleId: (r.scheduleId as number | null) ?? null,
    agentId: (r.agentId as number | null) ?? null,
    isMainline: r.isMainline as boolean,
    responseLatency: {
      median: r.responseLatencyMedian as number | null,
      sd: r.responseLatencySd as number | null,
      p90: r.responseLatencyP90 as number | null,
      n: r.responseLatencyN as number,
    },
    interruptLatency: {
      median: r.interruptLatencyMedian as number | null,
      sd: r.interruptLatencySd as number | null,
      p90: r.interruptLatencyP90 as number | null,
      n: r.interruptLatencyN as number,
    },
    networkResilience: r.networkResilience as number | null,
    naturalness: r.naturalness as number | null,
    noiseReduction: r.noiseReduction as number | null,
    methods: r.methods as Record<string, string>,
    createdAt: (r.createdAt as Date).toISOString(),
  };
}

const RESULT_COLUMNS = (sql: Db) =>
  sql`r.id, r.job_id, r.workflow_id, r.eval_set_id, r.provider_id, r.region, r.schedule_id, r.agent_id,
      r.is_mainline, r.response_latency_median, r.response_latency_sd, r.response_latency_p90,
      r.response_latency_n, r.interrupt_latency_median, r.interrupt_latency_sd, r.interrupt_latency_p90,
      r.interrupt_latency_n, r.network_resilience, r.naturalness, r.noise_reduction, r.methods, r.created_at`;

/**
 * Results the caller may see: `mine` = of jobs they started or of their projects'
 * workflows; `mainline` = the public mainline results.
 */
export async function listResults(
  sql: Sql,
  user: AuthUser,
  opts: {
    scope: "mine" | "mainline";
    jobId?: number;
    workflowId?: number;
    evalSetId?: number;
    providerId?: string;
    region?: string;
    limit: number;
    offset: number;
  },
): Promise<{ results: ResultSummary[]; total: number }> {
  const scope = opts.scope === "mainline" ? sql`r.is_mainline` : visibleJob(sql, user);
  const rows = await sql`
    SELECT ${RESULT_COLUMNS(sql)}, count(*) OVER () AS total
    FROM eval_results r JOIN eval_jobs j ON j.id = r.job_id
    JOIN workflows w ON w.id = r.workflow_id JOIN projects p ON p.id = w.project_id
    WHERE ${scope}
      ${opts.jobId ? sql`AND r.job_id = ${opts.jobId}` : sql``}
      ${opts.workflowId ? sql`AND r.workflow_id = ${opts.workflowId}` : sql``}
      ${opts.evalSetId ? sql`AND r.eval_set_id = ${opts.evalSetId}` : sql``}
      ${opts.providerId ? sql`AND r.provider_id = ${opts.providerId}` : sql``}
      ${opts.region ? sql`AND r.region = ${opts.region}` : sql``}
    ORDER BY r.id DESC LIMIT ${opts.limit} OFFSET ${opts.offset}`;
  return { results: rows.map(toResult), total: rows.length ? Number(rows[0].total) : 0 };
}

/** One result with its turns, report, its receipt and artifact list; 404 unless the caller may see it. */
export async function getResult(sql: Sql, user: AuthUser, id: number): Promise<ResultDetail> {
  const [row] = await sql`
    SELECT ${RESULT_COLUMNS(sql)}, r.turns, r.report, r.report_sha256
    FROM eval_results r JOIN eval_jobs j ON j.id = r.job_id
    JOIN workflows w ON w.id = r.workflow_id JOIN projects p ON p.id = w.project_id
    WHERE r.id = ${id} AND (r.is_mainline OR ${visibleJob(sql, user)})`;
  if (!row) throw new HttpError(404, "not_found", `No result ${id}`);
  return {
    ...toResult(row),
    turns: row.turns as unknown[],
    report: row.report,
    reportSha256: row.reportSha256 ?? null,
    artifacts: await listArtifacts(sql, row.jobId),
  };
}

/** An artifact's bytes, for a result the caller may see. */
export async function getArtifact(
  sql: Sql,
  user: AuthUser,
  resultId: number,
  name: string,
  store: ArtifactStore,
): Promise<{ contentType: string; sizeBytes: number; body: ReadableStream<Uint8Array> }> {
  const result = await getResult(sql, user, resultId);
  const artifact = await readArtifact(sql, store, result.jobId, name);
  if (!artifact) throw new HttpError(404, "not_found", `Result ${resultId} has no artifact ${name}`);
  return artifact;
}
