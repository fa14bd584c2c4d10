// Schedules: once or recurring (5-field cron in an IANA time zone, lib/cron.ts). Deno.cron
// only ticks; which firing gets a job is decided in Postgres, so however many processes
// tick, each due time creates exactly one job.
import { nextFiring } from "./cron.ts";
import type { Db, Sql } from "./db.ts";
import { createJob, createScheduledJob, type Job } from "./queue.ts";

export interface Schedule {
  id: number;
  workflowId: number;
  evalSetId: number;
  region: string;
  scheduleType: "once" | "recurring";
  cronExpression: string | null;
  timezone: string;
  runAt: string | null;
  isEnabled: boolean;
  /** Why the schedule stopped by itself (see tickSchedules); null while it runs. */
  stoppedReason: string | null;
  nextRunAt: string | null;
  lastRunAt: string | null;
  runCount: number;
  maxRuns: number | null;
  priority: number;
  createdBy: number | null;
  createdAt: string;
  updatedAt: string;
}

export interface ScheduleInput {
  workflowId: number;
  evalSetId: number;
  region: string;
  scheduleType: "once" | "recurring";
  cronExpression?: string | null;
  timezone?: string;
  runAt?: Date | null;
  maxRuns?: number | null;
  priority?: number;
  isEnabled?: boolean;
  createdBy?: number | null;
}

function firstRun(input: ScheduleInput, now: Date): Date | null {
  if (input.scheduleType === "once") return input.runAt ?? null;
  return nextFiring(input.cronExpression!, input.timezone ?? "UTC", now);
}

/** Creates a schedule with its first due time computed. Callers validate the cron first. */
export async function createSchedule(sql: Db, input: ScheduleInput): Promise<Schedule> {
  const next = (input.isEnabled ?? true) ? firstRun(input, new Date()) : null;
  const [row] = await sql`
    INSERT INTO eval_schedules (workflow_id, eval_set_id, region, schedule_type, cron_expression, timezone,
                                run_at, is_enabled, next_run_at, max_runs, priority, created_by)
    VALUES (${input.workflowId}, ${input.evalSetId}, ${input.region}, ${input.scheduleType},
            ${input.scheduleType === "recurring" ? input.cronExpression! : null}, ${input.timezone ?? "UTC"},
            ${input.scheduleType === "once" ? input.runAt! : null}, ${input.isEnabled ?? true}, ${next},
            ${input.maxRuns ?? null}, ${input.priority ?? 0}, ${input.createdBy ?? null})
    RETURNING *`;
  return toSchedule(row);
}

/**
 * Changes a schedule's timing or state and recomputes its next due time: none while
 * disabled or when its runs are used up, the run time for a once-schedule that has not
 * run, the next cron firing after now for a recurring one.
 */
export async function updateSchedule(
  sql: Sql,
  id: number,
  patch: Partial<
    Pick<
      ScheduleInput,
      "region" | "cronExpression" | "timezone" | "runAt" | "maxRuns" | "priority" | "isEnabled"
    >
  >,
): Promise<Schedule | null> {
  return await sql.begin(async (tx) => {
    const [cur] = await tx`SELECT * FROM eval_schedules WHERE id = ${id} FOR UPDATE`;
    if (!cur) return null;
    const s = toSchedule(cur);
    const merged: ScheduleInput = {
      workflowId: s.workflowId,
      evalSetId: s.evalSetId,
      region: patch.region ?? s.region,
      scheduleType: s.scheduleType,
      cronExpression: patch.cronExpression !== undefined ? patch.cronExpression : s.cronExpression,
      timezone: patch.timezone ?? s.timezone,
      runAt: patch.runAt !== undefined ? patch.runAt : (s.runAt ? new Date(s.runAt) : null),
      maxRuns: patch.maxRuns !== undefined ? patch.maxRuns : s.maxRuns,
      priority: patch.priority ?? s.priority,
      isEnabled: patch.isEnabled ?? s.isEnabled,
    };
    const exhausted = merged.maxRuns != null && s.runCount >= merged.maxRuns;
    const onceDone = merged.scheduleType === "once" && s.runCount > 0 && patch.runAt === undefined;
    const next = !merged.isEnabled || exhausted || onceDone ? null : firstRun(merged, new Date());
    const [row] = await tx`
      UPDATE eval_schedules SET region = ${merged.region},
        cron_expression = ${merged.scheduleType === "recurring" ? merged.cronExpression! : null},
        timezone = ${merged.timezone!}, run_at = ${merged.scheduleType === "once" ? merged.runAt! : null},
        max_runs = ${merged.maxRuns ?? null}, priority = ${merged.priority!}, is_enabled = ${merged
      .isEnabled!},
        stopped_reason = ${merged.isEnabled ? null : tx`stopped_reason`},
        next_run_at = ${next}, updated_at = now()
      WHERE id = ${id} RETURNING *`;
    return toSchedule(row);
  });
}

/** One schedule. */
export async function getSchedule(sql: Db, id: number): Promise<Schedule | null> {
  const [row] = await sql`SELECT * FROM eval_schedules WHERE id = ${id}`;
  return row ? toSchedule(row) : null;
}

/** Deletes a schedule; its jobs stay (schedule_id becomes null). */
export async function deleteSchedule(sql: Db, id: number): Promise<boolean> {
  return (await sql`DELETE FROM eval_schedules WHERE id = ${id} RETURNING id`).length > 0;
}

/**
 * A job for the schedule now, outside its timing: linked to the schedule, not counted
 * against max runs and not moving the next due time.
 */
export async function runScheduleNow(sql: Db, id: number, createdBy: number | null): Promise<Job | null> {
  const s = await getSchedule(sql, id);
  if (!s) return null;
  return await createJob(sql, {
    workflowId: s.workflowId,
    evalSetId: s.evalSetId,
    region: s.region,
    priority: s.priority,
    createdBy,
    scheduleId: id,
  });
}

/**
 * Creates the jobs of every due schedule firing and moves each schedule to its next due
 * time. Rows are taken `FOR UPDATE SKIP LOCKED`, so concurrent ticks in other processes
 * pass over a schedule being fired and see its new due time afterwards; the unique
 * (schedule_id, scheduled_for) index is the backstop that makes a firing's job unique even
 * if two ticks ever raced. A schedule whose workflow or eval set its owner can no longer see
 * (turned private in another project, or the owner left the organization) is disabled
 * instead, with the reason in stopped_reason; an owner with their maximum of pending jobs
 * (plan_limits.max_pending_jobs) misses the firing. Returns the jobs it created.
 */
export async function tickSchedules(sql: Sql, opts: { limit?: number } = {}): Promise<Job[]> {
  const created: Job[] = [];
  for (;;) {
    const batch = await sql.begin(async (tx) => {
      // One second of slack: Deno.cron may fire a hair before the minute it is due.
      // The owner sees an item that is public or in a project of theirs or of their
      // organization (lib/workflows.ts visibleItem); a schedule without an owner, public only.
      const due = await tx`
        SELECT s.*,
          (w.visibility = 'public' OR coalesce(pw.owner_user_id = u.id OR pw.organization_id = u.organization_id,
                                               false)) AS workflow_visible,
          (e.visibility = 'public' OR coalesce(pe.owner_user_id = u.id OR pe.organization_id = u.organization_id,
                                               false)) AS eval_set_visible,
          -- The owner's pending jobs against their fair-use cap (lib/fair_use.ts; the admin has none).
          (SELECT count(*) FROM eval_jobs pj WHERE pj.created_by = u.id AND pj.status = 'pending')::int
            AS owner_pending,
          CASE WHEN NOT u.is_admin THEN (
            SELECT l.max_pending_jobs FROM plan_limits l
            WHERE l.owner_kind = CASE WHEN u.organization_id IS NOT NULL THEN 'org_member' ELSE u.role END)
          END AS owner_max_pending
        FROM eval_schedules s
        JOIN workflows w ON w.id = s.workflow_id JOIN projects pw ON pw.id = w.project_id
        JOIN eval_sets e ON e.id = s.eval_set_id JOIN projects pe ON pe.id = e.project_id
        LEFT JOIN users u ON u.id = s.created_by
        WHERE s.is_enabled AND s.next_run_at <= now() + interval '1 second'
        ORDER BY s.next_run_at, s.id
        LIMIT ${opts.limit ?? 100}
        FOR UPDATE OF s SKIP LOCKED`;
      const jobs: Job[] = [];
      for (const row of due) {
        const s = toSchedule(row);
        if (!row.workflowVisible || !row.evalSetVisible) {
          const what = !row.workflowVisible ? `workflow ${s.workflowId}` : `eval set ${s.evalSetId}`;
          await tx`
            UPDATE eval_schedules
            SET is_enabled = false, next_run_at = NULL, updated_at = now(),
                stopped_reason = ${`stopped: the ${what} is no longer visible to the schedule's owner`}
            WHERE id = ${s.id}`;
          continue;
        }
        const dueAt = row.nextRunAt as Date;
        // An owner at their pending-job cap misses this firing (the schedule moves on), as a
        // run they started by hand would be refused. The count is taken once per batch, so
        // an owner's schedules due in the same batch may pass the cap by their number.
        const capped = row.ownerMaxPending !== null && row.ownerPending >= row.ownerMaxPending;
        const job = capped ? null : await createScheduledJob(tx, {
          workflowId: s.workflowId,
          evalSetId: s.evalSetId,
          region: s.region,
          priority: s.priority,
          createdBy: s.createdBy,
          scheduleId: s.id,
          scheduledFor: dueAt,
        });
        if (job) jobs.push(job);
        const runCount = s.runCount + (job ? 1 : 0);
        const after = new Date(Math.max(Date.now(), dueAt.getTime()));
        let next = s.scheduleType === "once" ? null : nextFiring(s.cronExpression!, s.timezone, after);
        if (s.maxRuns != null && runCount >= s.maxRuns) next = null;
        await tx`
          UPDATE eval_schedules
          SET next_run_at = ${next}, run_count = ${runCount},
              last_run_at = ${job ? tx`now()` : tx`last_run_at`}, updated_at = now()
          WHERE id = ${s.id}`;
      }
      return { jobs, count: due.length };
    });
    created.push(...batch.jobs);
    if (batch.count < (opts.limit ?? 100)) return created;
  }
}

/** Row → API shape. */
export function toSchedule(r: Record<string, unknown>): Schedule {
  const iso = (v: unknown) => v instanceof Date ? v.toISOString() : (v as string | null) ?? null;
  return {
    id: r.id as number,
    workflowId: r.workflowId as number,
    evalSetId: r.evalSetId as number,
    region: r.region as string,
    scheduleType: r.scheduleType as "once" | "recurring",
    cronExpression: (r.cronExpression as string | null) ?? null,
    timezone: r.timezone as string,
    runAt: iso(r.runAt),
    isEnabled: r.isEnabled as boolean,
    stoppedReason: (r.stoppedReason as string | null) ?? null,
    nextRunAt: iso(r.nextRunAt),
    lastRunAt: iso(r.lastRunAt),
    runCount: r.runCount as number,
    maxRuns: (r.maxRuns as number | null) ?? null,
    priority: r.priority as number,
    createdBy: (r.createdBy as number | null) ?? null,
    createdAt: iso(r.createdAt)!,
    updatedAt: iso(r.updatedAt)!,
  };
}
