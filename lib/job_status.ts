// The states of a job, written once for the queue, the API schemas and the pages (the
// eval_jobs CHECK constraint in migrations/00001_init.sql lists the same five).
import { z } from "zod";

/** pending → running → completed | failed, or pending → cancelled; running may go back to pending. */
export const JOB_STATUSES = ["pending", "running", "completed", "failed", "cancelled"] as const;
export const jobStatusSchema = z.enum(JOB_STATUSES);
export type JobStatus = z.infer<typeof jobStatusSchema>;

/** The states a job never leaves. */
export const FINAL_JOB_STATUSES: ReadonlySet<JobStatus> = new Set(["completed", "failed", "cancelled"]);

/** True once a job has ended (completed, failed or cancelled). */
export function isFinal(status: JobStatus): boolean {
  return FINAL_JOB_STATUSES.has(status);
}
