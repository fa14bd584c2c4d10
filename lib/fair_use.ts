// Fair use of the fleet: per-user caps on pending jobs and schedules and the shortest
// schedule interval, read from plan_limits (beside the project limits, so an admin changes
// them in one place). The administrator is not capped.
import { nextFiring } from "./cron.ts";
import type { Db } from "./db.ts";
import { HttpError } from "./errors.ts";
import { ownerKind } from "./projects.ts";
import type { AuthUser } from "./roles.ts";

export interface FairUseLimits {
  ownerKind: string;
  maxPendingJobs: number;
  maxSchedules: number;
  minScheduleIntervalMinutes: number;
}

/** The caps that apply to `user`, or null for the administrator. */
export async function fairUseLimits(sql: Db, user: AuthUser): Promise<FairUseLimits | null> {
  if (user.isAdmin) return null;
  const kind = ownerKind(user, false);
  const [row] = await sql<Omit<FairUseLimits, "ownerKind">[]>`
    SELECT max_pending_jobs, max_schedules, min_schedule_interval_minutes
    FROM plan_limits WHERE owner_kind = ${kind}`;
  // A kind without a row gets nothing, as with the project limits.
  return {
    ownerKind: kind,
    ...(row ?? { maxPendingJobs: 0, maxSchedules: 0, minScheduleIntervalMinutes: 60 }),
  };
}

/**
 * Refuses with 429 (and Retry-After) when `user` already has their maximum of pending jobs.
 * Jobs leave "pending" as agents take them, so waiting helps; hence 429 and not 403.
 */
export async function assertCanQueue(sql: Db, user: AuthUser, adding = 1): Promise<void> {
  const limits = await fairUseLimits(sql, user);
  if (!limits) return;
  const [{ n }] = await sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM eval_jobs WHERE created_by = ${user.id} AND status = 'pending'`;
  if (n + adding > limits.maxPendingJobs) {
    throw new HttpError(
      429,
      "plan_limit",
      `Pending job limit reached: ${limits.ownerKind} users may have at most ${limits.maxPendingJobs} jobs waiting for an agent (max_pending_jobs)`,
      {
        headers: { "Retry-After": "60" },
        details: {
          limit: "max_pending_jobs",
          ownerKind: limits.ownerKind,
          max: limits.maxPendingJobs,
          pending: n,
        },
      },
    );
  }
}

/** Refuses with 403 plan_limit when `user` already has their maximum of schedules. */
export async function assertCanSchedule(sql: Db, user: AuthUser): Promise<void> {
  const limits = await fairUseLimits(sql, user);
  if (!limits) return;
  const [{ n }] = await sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM eval_schedules WHERE created_by = ${user.id}`;
  if (n >= limits.maxSchedules) {
    throw new HttpError(
      403,
      "plan_limit",
      `Schedule limit reached: ${limits.ownerKind} users may have at most ${limits.maxSchedules} schedules (max_schedules)`,
      { details: { limit: "max_schedules", ownerKind: limits.ownerKind, max: limits.maxSchedules } },
    );
  }
}

/**
 * The shortest gap in minutes between firings of `cron` in `timezone`, over its next 200
 * firings (enough to see every minute, hour and weekday pattern of a 5-field expression
 * inside the checked span, e.g. `0,1 9 * * 1` shows its 1-minute gap on the first Monday).
 */
export function shortestInterval(cron: string, timezone: string, from = new Date()): number | null {
  let prev = nextFiring(cron, timezone, from);
  let shortest: number | null = null;
  for (let i = 0; prev && i < 200; i++) {
    const next = nextFiring(cron, timezone, prev);
    if (!next) break;
    const gap = (next.getTime() - prev.getTime()) / 60_000;
    if (shortest === null || gap < shortest) shortest = gap;
    prev = next;
  }
  return shortest;
}

/** Refuses with 400 a recurring schedule that fires more often than `user` may schedule. */
export async function assertScheduleInterval(
  sql: Db,
  user: AuthUser,
  cron: string,
  timezone: string,
): Promise<void> {
  const limits = await fairUseLimits(sql, user);
  if (!limits) return;
  const gap = shortestInterval(cron, timezone);
  if (gap !== null && gap < limits.minScheduleIntervalMinutes) {
    throw new HttpError(
      400,
      "invalid_input",
      `cronExpression: fires ${gap} minute(s) apart; ${limits.ownerKind} users may schedule at most every ${limits.minScheduleIntervalMinutes} minutes (min_schedule_interval_minutes)`,
      {
        details: {
          issues: [{
            field: "cronExpression",
            message: `fires more often than every ${limits.minScheduleIntervalMinutes} minutes`,
          }],
          limit: "min_schedule_interval_minutes",
          ownerKind: limits.ownerKind,
          min: limits.minScheduleIntervalMinutes,
        },
      },
    );
  }
}
