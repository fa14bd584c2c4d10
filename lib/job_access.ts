// Who may see a job: its creator, and whoever may access the project of its workflow.
// The job reads of the API (list, get) apply it; results (lib/results.ts) use the same rule.
import type { Db, Fragment, Sql } from "./db.ts";
import { HttpError } from "./errors.ts";
import type { JobStatus } from "./job_status.ts";
import type { AuthUser } from "./roles.ts";
import { accessibleProject } from "./projects.ts";
import { type Job, toJob } from "./queue.ts";

/** SQL predicate over job `j` joined with its workflow's project `p`: the caller may see it. */
export function visibleJob(sql: Db, user: AuthUser): Fragment {
  return sql`(j.created_by = ${user.id} OR ${accessibleProject(sql, user)})`;
}

/** The caller's jobs, newest first, optionally by status, workflow or schedule. */
export async function listJobs(
  sql: Sql,
  user: AuthUser,
  opts: {
    status?: JobStatus;
    workflowId?: number;
    evalSetId?: number;
    scheduleId?: number;
    region?: string;
    /** Jobs created at or after this time. */
    since?: Date;
    /** Jobs created before this time. */
    until?: Date;
    limit: number;
    offset: number;
  },
): Promise<{ jobs: Job[]; total: number }> {
  const where = sql`${visibleJob(sql, user)}
    ${opts.status ? sql`AND j.status = ${opts.status}` : sql``}
    ${opts.workflowId ? sql`AND j.workflow_id = ${opts.workflowId}` : sql``}
    ${opts.scheduleId ? sql`AND j.schedule_id = ${opts.scheduleId}` : sql``}
    ${opts.evalSetId ? sql`AND j.eval_set_id = ${opts.evalSetId}` : sql``}
    ${opts.region ? sql`AND j.region = ${opts.region}` : sql``}
    ${opts.since ? sql`AND j.created_at >= ${opts.since}` : sql``}
    ${opts.until ? sql`AND j.created_at < ${opts.until}` : sql``}`;
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

/** Every user's jobs for the admin, newest first, with who started each and what it ran. */
export async function listAllJobs(
  sql: Sql,
  opts: { status?: JobStatus; region?: string; userId?: number; limit: number; offset: number },
): Promise<
  { jobs: (Job & { userName: string | null; workflowName: string; evalSetName: string })[]; total: number }
> {
  const rows = await sql`
    SELECT j.*, u.name AS user_name, w.name AS workflow_name, e.name AS eval_set_name, count(*) OVER () AS total
    FROM eval_jobs j JOIN workflows w ON w.id = j.workflow_id JOIN eval_sets e ON e.id = j.eval_set_id
    LEFT JOIN users u ON u.id = j.created_by
    WHERE true
      ${opts.status ? sql`AND j.status = ${opts.status}` : sql``}
      ${opts.region ? sql`AND j.region = ${opts.region}` : sql``}
      ${opts.userId ? sql`AND j.created_by = ${opts.userId}` : sql``}
    ORDER BY j.id DESC LIMIT ${opts.limit} OFFSET ${opts.offset}`;
  return {
    jobs: rows.map((r) => ({
      ...toJob(r),
      userName: (r.userName as string | null) ?? null,
      workflowName: r.workflowName as string,
      evalSetName: r.evalSetName as string,
    })),
    total: rows.length ? Number(rows[0].total) : 0,
  };
}
