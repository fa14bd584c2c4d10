// The states of a job, written once for the queue, the API schemas and the pages (the
// eval_jobs CHECK constraint in migrations/00001_init.sql lists the same five). No imports,
// so islands can use it too.

/** pending → running → completed | failed, or pending → cancelled; running may go back to pending. */
export const JOB_STATUSES = ["pending", "running", "completed", "failed", "cancelled"] as const;
export type JobStatus = typeof JOB_STATUSES[number];

/** The states a job never leaves. */
export const FINAL_JOB_STATUSES: ReadonlySet<JobStatus> = new Set(["completed", "failed", "cancelled"]);

/** True once a job has ended (completed, failed or cancelled). */
export function isFinal(status: JobStatus): boolean {
  return FINAL_JOB_STATUSES.has(status);
}
