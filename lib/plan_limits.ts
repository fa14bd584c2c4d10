// The plan_limits table as the admin reads and changes it: per owner kind (basic, premium,
// principal, fellow, organization, org_member), the project and workflow limits and the
// fair-use caps (pending jobs, schedules, minimum schedule interval). Each change is audited.
import { recordAudit } from "./audit.ts";
import type { Sql } from "./db.ts";

export const OWNER_KINDS = ["basic", "premium", "principal", "fellow", "organization", "org_member"] as const;
export type OwnerKind = typeof OWNER_KINDS[number];

/** The limits of one owner kind (API field names). */
export interface PlanLimits {
  ownerKind: OwnerKind;
  maxProjects: number;
  maxWorkflowsPerProject: number;
  maxPendingJobs: number;
  maxSchedules: number;
  minScheduleIntervalMinutes: number;
  updatedAt: string;
}

/** The limit fields an admin may change, with their column and range. */
export const LIMIT_FIELDS = {
  maxProjects: { column: "max_projects", min: 0, max: 100_000, label: "Projects" },
  maxWorkflowsPerProject: {
    column: "max_workflows_per_project",
    min: 0,
    max: 100_000,
    label: "Workflows per project",
  },
  maxPendingJobs: { column: "max_pending_jobs", min: 0, max: 100_000, label: "Pending jobs" },
  maxSchedules: { column: "max_schedules", min: 0, max: 100_000, label: "Schedules" },
  minScheduleIntervalMinutes: {
    column: "min_schedule_interval_minutes",
    min: 1,
    max: 10_080,
    label: "Minimum schedule interval, minutes",
  },
} as const;
export type LimitField = keyof typeof LIMIT_FIELDS;

function toLimits(r: Record<string, unknown>): PlanLimits {
  return {
    ownerKind: r.ownerKind as OwnerKind,
    maxProjects: Number(r.maxProjects),
    maxWorkflowsPerProject: Number(r.maxWorkflowsPerProject),
    maxPendingJobs: Number(r.maxPendingJobs),
    maxSchedules: Number(r.maxSchedules),
    minScheduleIntervalMinutes: Number(r.minScheduleIntervalMinutes),
    updatedAt: new Date(r.updatedAt as string).toISOString(),
  };
}

/** Every owner kind's limits, in OWNER_KINDS order. */
export async function listPlanLimits(sql: Sql): Promise<PlanLimits[]> {
  const rows = await sql`
    SELECT owner_kind, max_projects, max_workflows_per_project, max_pending_jobs, max_schedules,
           min_schedule_interval_minutes, updated_at
    FROM plan_limits`;
  return rows.map(toLimits).sort((a, b) =>
    OWNER_KINDS.indexOf(a.ownerKind) - OWNER_KINDS.indexOf(b.ownerKind)
  );
}

/**
 * Changes some limits of one owner kind and records who did, what changed (old → new) and why;
 * null when the kind has no row.
 */
export async function updatePlanLimits(
  sql: Sql,
  kind: OwnerKind,
  change: Partial<Record<LimitField, number>>,
  by: { userId: number; ip?: string; reason?: string },
): Promise<PlanLimits | null> {
  const fields = (Object.keys(change) as LimitField[]).filter((f) => change[f] !== undefined);
  return await sql.begin(async (tx) => {
    const [before] = await tx`SELECT * FROM plan_limits WHERE owner_kind = ${kind} FOR UPDATE`;
    if (!before) return null;
    const set: Record<string, number> = {};
    for (const f of fields) set[LIMIT_FIELDS[f].column] = change[f]!;
    const [row] = fields.length
      ? await tx`
        UPDATE plan_limits SET ${tx(set)}, updated_at = now() WHERE owner_kind = ${kind}
        RETURNING owner_kind, max_projects, max_workflows_per_project, max_pending_jobs, max_schedules,
                  min_schedule_interval_minutes, updated_at`
      : [before];
    const details: Record<string, string | null> = { reason: by.reason ?? null };
    for (const f of fields) {
      const old = Number((before as Record<string, unknown>)[camel(LIMIT_FIELDS[f].column)]);
      if (old !== change[f]) details[f] = `${old} → ${change[f]}`;
    }
    await recordAudit(tx as unknown as Sql, {
      action: "plan_limits.changed",
      actorUserId: by.userId,
      targetType: "plan_limits",
      targetId: kind,
      ip: by.ip,
      details,
    });
    return toLimits(row as Record<string, unknown>);
  });
}

const camel = (s: string) => s.replace(/_([a-z])/g, (_, ch: string) => ch.toUpperCase());
