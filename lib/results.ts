// Results and jobs as their users see them: only those of the caller's projects (or that
// they started), plus public mainline results.
import type { Db, Sql } from "./db.ts";
import { HttpError } from "./errors.ts";
import type { AuthUser } from "./roles.ts";
import { type Job, toJob } from "./jobs.ts";
import { accessibleProject } from "./projects.ts";

/** SQL predicate over job `j` joined with its workflow's project `p`: the caller may see it. */
function visibleJob(sql: Db, user: AuthUser) {
  return sql`(j.created_by = ${user.id} OR ${accessibleProject(sql, user)})`;
}

/** The caller's jobs, newest first, optionally by status, workflow or schedule. */
export async function listJobs(
  sql: Sql,
  user: AuthUser,
  opts: { status?: string; workflowId?: number; scheduleId?: number; limit: number; offset: number },
): Promise<{ jobs: Job[]; total: number }> {
  const where = sql`${visibleJob(sql, user)}
    ${opts.status ? sql`AND j.status = ${opts.status}` : sql``}
    ${opts.workflowId ? sql`AND j.workflow_id = ${opts.workflowId}` : sql``}
    ${opts.scheduleId ? sql`AND j.schedule_id = ${opts.scheduleId}` : sql``}`;
  const rows = await sql`
    SELECT j.*, count(*) OVER () AS total
    FROM eval_jobs j JOIN workflows w ON w.id = j.workflow_id JOIN projects p ON p.id = w.project_id
    WHERE ${where} ORDER BY j.id DESC LIMIT ${opts.limit} OFFSET ${opts.offset}`;
  return { jobs: rows.map(toJob), total: rows.length ? Number(rows[0].total) : 0 };
}

/** A job the caller may see, else 404. */
export async function getVisibleJob(sql: Db, user: AuthUser, id: number): Promise<Job> {
  const [row] = await sql`
    SELECT j.* FROM eval_jobs j JOIN workflows w ON w.id = j.workflow_id JOIN projects p ON p.id = w.project_id
    WHERE j.id = ${id} AND ${visibleJob(sql, user)}`;
  if (!row) throw new HttpError(404, "not_found", `No job ${id}`);
  return toJob(row);
}

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
  artifacts: { name: string; kind: string; contentType: string; sizeBytes: number; sha256: string }[];
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
    workflowId?: number;
    evalSetId?: number;
    providerId?: string;
    region?: string;
    limit: number;
    offset: number;
  },
): Promise<{ results: ResultSummary[]; total: number }> {
  const scope = opts.scope === "mainline"
    ? sql`r.is_mainline`
    : sql`(j.created_by = ${user.id} OR ${accessibleProject(sql, user)})`;
  const rows = await sql`
    SELECT ${RESULT_COLUMNS(sql)}, count(*) OVER () AS total
    FROM eval_results r JOIN eval_jobs j ON j.id = r.job_id
    JOIN workflows w ON w.id = r.workflow_id JOIN projects p ON p.id = w.project_id
    WHERE ${scope}
      ${opts.workflowId ? sql`AND r.workflow_id = ${opts.workflowId}` : sql``}
      ${opts.evalSetId ? sql`AND r.eval_set_id = ${opts.evalSetId}` : sql``}
      ${opts.providerId ? sql`AND r.provider_id = ${opts.providerId}` : sql``}
      ${opts.region ? sql`AND r.region = ${opts.region}` : sql``}
    ORDER BY r.id DESC LIMIT ${opts.limit} OFFSET ${opts.offset}`;
  return { results: rows.map(toResult), total: rows.length ? Number(rows[0].total) : 0 };
}

/** One result with its turns, report and artifact list; 404 unless the caller may see it. */
export async function getResult(sql: Sql, user: AuthUser, id: number): Promise<ResultDetail> {
  const [row] = await sql`
    SELECT ${RESULT_COLUMNS(sql)}, r.turns, r.report
    FROM eval_results r JOIN eval_jobs j ON j.id = r.job_id
    JOIN workflows w ON w.id = r.workflow_id JOIN projects p ON p.id = w.project_id
    WHERE r.id = ${id} AND (r.is_mainline OR j.created_by = ${user.id} OR ${accessibleProject(sql, user)})`;
  if (!row) throw new HttpError(404, "not_found", `No result ${id}`);
  const artifacts = await sql`
    SELECT name, kind, content_type, size_bytes, sha256 FROM eval_artifacts WHERE job_id = ${row.jobId} ORDER BY id`;
  return {
    ...toResult(row),
    turns: row.turns as unknown[],
    report: row.report,
    artifacts: artifacts.map((a) => ({
      name: a.name,
      kind: a.kind,
      contentType: a.contentType,
      sizeBytes: a.sizeBytes,
      sha256: a.sha256,
    })),
  };
}

/** An artifact's bytes, for a result the caller may see. */
export async function getArtifact(
  sql: Sql,
  user: AuthUser,
  resultId: number,
  name: string,
): Promise<{ contentType: string; data: Uint8Array }> {
  const result = await getResult(sql, user, resultId);
  const [a] =
    await sql`SELECT content_type, data FROM eval_artifacts WHERE job_id = ${result.jobId} AND name = ${name}`;
  if (!a) throw new HttpError(404, "not_found", `Result ${resultId} has no artifact ${name}`);
  return { contentType: a.contentType, data: a.data };
}
