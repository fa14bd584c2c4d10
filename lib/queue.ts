// The job queue: inserting jobs (NOTIFY with the insert), claiming them for agents
// (`FOR UPDATE SKIP LOCKED`), and the state changes of a job that is pending or running —
// accepted, progress, handed back, failed, reaped from a silent agent, cancelled. Storing a
// job's result is lib/job_completer.ts; the events these statements send are lib/notify.ts.
import type { z } from "zod";
import type { jobOfferSchema } from "../agent/protocol.ts";
import { type OfferClip, offerClips, offerClipsSql } from "./audio.ts";
import type { Db, Fragment, Json } from "./db.ts";
import type { JobStatus } from "./job_status.ts";
import { JOB_EVENTS_CHANNEL, jobEventSql, JOBS_CHANNEL } from "./notify.ts";
import { settingSql } from "./settings.ts";

/** A job as the API shows it. */
export interface Job {
  id: number;
  workflowId: number;
  evalSetId: number;
  region: string;
  scheduleId: number | null;
  scheduledFor: string | null;
  status: JobStatus;
  priority: number;
  attempts: number;
  maxAttempts: number;
  agentId: number | null;
  repeat: number;
  progress: unknown;
  createdBy: number | null;
  createdAt: string;
  startedAt: string | null;
  acceptedAt: string | null;
  finishedAt: string | null;
  error: string | null;
}

export interface NewJob {
  workflowId: number;
  evalSetId: number;
  region: string;
  priority?: number;
  repeat?: number;
  createdBy?: number | null;
  /** Defaults to system_config jobs.max_attempts. */
  maxAttempts?: number;
  /** The schedule a run-now job belongs to (not a timed firing). */
  scheduleId?: number | null;
}

const JOB_COLUMNS = (sql: Db) =>
  sql`id, workflow_id, eval_set_id, region, schedule_id, scheduled_for, status, priority, attempts,
      max_attempts, agent_id, repeat, progress, created_by, created_at, started_at, accepted_at,
      finished_at, error`;

/**
 * Inserts a pending job and announces it (NOTIFY on JOBS_CHANNEL) in the same statement,
 * hence the same transaction: listeners never hear of a job they cannot see yet, and a
 * rolled-back insert announces nothing.
 */
export async function createJob(sql: Db, input: NewJob): Promise<Job> {
  return (await insertJob(sql, input, null))!;
}

/**
 * Creates the job of one schedule firing, at most once per (schedule, due time) thanks to
 * eval_jobs_schedule_firing_key; returns null when that firing already has its job.
 */
export async function createScheduledJob(
  tx: Db,
  input: NewJob & { scheduleId: number; scheduledFor: Date },
): Promise<Job | null> {
  return await insertJob(tx, input, input.scheduledFor);
}

// The insert of createJob() and createScheduledJob(); a firing whose job exists inserts nothing.
async function insertJob(sql: Db, input: NewJob, scheduledFor: Date | null): Promise<Job | null> {
  const [row] = await sql`
    WITH j AS (
      INSERT INTO eval_jobs (workflow_id, eval_set_id, region, priority, repeat, created_by, max_attempts,
                             schedule_id, scheduled_for)
      VALUES (${input.workflowId}, ${input.evalSetId}, ${input.region}, ${input.priority ?? 0},
              ${input.repeat ?? 1}, ${input.createdBy ?? null},
              coalesce(${input.maxAttempts ?? null}::int, ${settingSql(sql, "jobs.max_attempts")}),
              ${input.scheduleId ?? null}, ${scheduledFor})
      ${
    scheduledFor
      ? sql`ON CONFLICT (schedule_id, scheduled_for) WHERE schedule_id IS NOT NULL AND scheduled_for IS NOT NULL
            DO NOTHING`
      : sql``
  }
      RETURNING *)
    SELECT ${JOB_COLUMNS(sql)}, pg_notify(${JOBS_CHANNEL}, region) FROM j`;
  return row ? toJob(row) : null;
}

/** A claimed job and the offer to send to the agent that got it. */
export interface JobOffer {
  agentId: number;
  message: z.infer<typeof jobOfferSchema>;
  /** How long the job was claimable before this claim, in ms (for the dispatch latency metric). */
  waitedMs?: number;
  /** The workflow's sealed secrets, opened into `message.workflow.secrets` just before sending. */
  sealedSecrets?: string;
}

/**
 * The `next` and `claimed` CTEs shared by claimJobs() and completeJobs() (lib/job_completer.ts): up to `limit`
 * pending jobs of `region` (priority, then oldest) taken FOR UPDATE SKIP LOCKED and given
 * to the statement's `slots` CTE (agent_id, ord) in order; `limit` is a number or an SQL
 * fragment. One text for both statements, so a job is claimed the same way however it
 * comes to an agent.
 */
export function claimCtes(sql: Db, region: string, limit: number | Fragment) {
  return sql`next AS (
      SELECT id, row_number() OVER (ORDER BY priority DESC, id) AS ord
      FROM (
        SELECT id, priority FROM eval_jobs
        WHERE status = 'pending' AND region = ${region} AND run_after <= now()
        ORDER BY priority DESC, id
        LIMIT ${limit}
        FOR UPDATE SKIP LOCKED
      ) candidates
    ), claimed AS (
      UPDATE eval_jobs x
      SET status = 'running', agent_id = slots.agent_id, attempts = x.attempts + 1,
          started_at = now(), heartbeat_at = now(), accepted_at = NULL
      FROM next JOIN slots USING (ord)
      WHERE x.id = next.id
      RETURNING x.id, x.agent_id, x.attempts, x.max_attempts, x.region, x.repeat, x.workflow_id, x.eval_set_id,
        -- Claimable since its insert, or since a release/retry moved run_after forward.
        extract(epoch FROM clock_timestamp() - greatest(x.created_at, x.run_after)) * 1000 AS waited_ms
    )`;
}

/** One free slot of a connected agent, for claimJobs(). */
export interface AgentSlot {
  agentId: number;
}

/**
 * Claims up to `slots.length` pending jobs of `region` (highest priority, then oldest) and
 * assigns the n-th to the n-th slot, in one statement. `FOR UPDATE SKIP LOCKED` makes
 * concurrent claimers in any process take disjoint jobs, so a job never goes to two
 * agents; the region is a predicate of the claim itself, so a job never leaves its region.
 * The agent rows are marked OCCUPIED in the same statement.
 */
export async function claimJobs(sql: Db, region: string, slots: AgentSlot[]): Promise<JobOffer[]> {
  if (slots.length === 0) return [];
  const agents = slots.map((s, i) => ({ agent_id: s.agentId, ord: i + 1 }));
  const rows = await sql`
    WITH slots AS (
      SELECT * FROM jsonb_to_recordset(${sql.json(agents)}) AS s(agent_id bigint, ord int)
    ), ${claimCtes(sql, region, slots.length)}, agents AS (
      -- Agent rows locked in id order, as every multi-row writer of eval_agents does (no deadlocks).
      UPDATE eval_agents a SET state = 'OCCUPIED', last_job_id = c.id, last_job_at = now()
      FROM claimed c WHERE a.id = c.agent_id
        AND a.id IN (SELECT id FROM eval_agents WHERE id IN (SELECT agent_id FROM claimed) ORDER BY id FOR UPDATE)
    )
    SELECT c.id, c.agent_id, c.attempts, c.max_attempts, c.region, c.repeat, c.waited_ms,
           w.id AS w_id, w.name AS w_name, w.provider_id AS w_provider_id, w.config AS w_config,
           w.secrets_enc AS w_secrets_enc, e.id AS e_id, e.name AS e_name, e.config AS e_config,
           ${offerClipsSql(sql)} AS e_audio,
           ${settingSql(sql, "jobs.max_runtime_seconds")} AS max_runtime
    FROM claimed c
    JOIN workflows w ON w.id = c.workflow_id
    JOIN eval_sets e ON e.id = c.eval_set_id
    ORDER BY c.id`;
  return rows.map(toOffer);
}

/** A claimed row (claimJobs(), completeJobs()) → the offer for its agent. */
export function toOffer(r: Record<string, unknown>): JobOffer {
  return {
    agentId: r.agentId as number,
    message: {
      type: "job.offer" as const,
      jobId: r.id as number,
      attempt: r.attempts as number,
      maxAttempts: r.maxAttempts as number,
      region: r.region as string,
      repeat: r.repeat as number,
      maxRuntimeSeconds: r.maxRuntime as number,
      workflow: {
        id: r.wId as number,
        name: r.wName as string,
        providerId: r.wProviderId as string,
        config: r.wConfig as Record<string, unknown>,
      },
      evalSet: { id: r.eId as number, name: r.eName as string, config: r.eConfig as Record<string, unknown> },
      audio: offerClips((r.eAudio ?? []) as OfferClip[], r.eConfig as Record<string, unknown>),
    },
    ...(r.waitedMs == null ? {} : { waitedMs: Number(r.waitedMs) }),
    ...(r.wSecretsEnc ? { sealedSecrets: r.wSecretsEnc as string } : {}),
  };
}

/**
 * Records when agents started the jobs they were offered, many at once (the gateway
 * batches acceptances with the heartbeat flush rather than spending a commit per job).
 */
export async function markAccepted(
  sql: Db,
  accepted: { jobId: number; agentId: number; at: Date }[],
): Promise<void> {
  if (accepted.length === 0) return;
  const rows = accepted.map((a) => ({ job_id: a.jobId, agent_id: a.agentId, at: a.at.toISOString() }));
  // SKIP LOCKED: a job locked right now is being completed or released, and then its
  // acceptance no longer matters; waiting on it could only queue behind (or deadlock with) that.
  await sql`
    UPDATE eval_jobs j SET accepted_at = v.at
    FROM (
      SELECT v.job_id, v.at FROM jsonb_to_recordset(${
    sql.json(rows)
  }) AS v(job_id bigint, agent_id bigint, at timestamptz)
      JOIN LATERAL (
        SELECT id FROM eval_jobs
        WHERE id = v.job_id AND agent_id = v.agent_id AND status = 'running' AND accepted_at IS NULL
        FOR UPDATE SKIP LOCKED
      ) x ON true
    ) v
    WHERE j.id = v.job_id`;
}

/**
 * Hands an offered job back (the agent declined it, or its socket was gone before the
 * offer left): pending again, the attempt not counted, claimable after `delayMs` so the
 * same agent is not offered it again at once.
 */
export async function releaseJob(sql: Db, jobId: number, agentId: number, delayMs = 0): Promise<boolean> {
  const rows = await sql`
    WITH j AS (
      UPDATE eval_jobs
      SET status = 'pending', agent_id = NULL, attempts = greatest(attempts - 1, 0), started_at = NULL,
          heartbeat_at = NULL, accepted_at = NULL,
          run_after = now() + make_interval(secs => ${delayMs / 1000})
      WHERE id = ${jobId} AND agent_id = ${agentId} AND status = 'running'
      RETURNING id, region)
    SELECT id, pg_notify(${JOBS_CHANNEL}, region),
           pg_notify(${JOB_EVENTS_CHANNEL}, ${jobEventSql(sql, { jobId: sql`id`, status: "pending" })})
    FROM j`;
  await releaseAgentIfIdle(sql, agentId);
  return rows.length > 0;
}

/** Stores a progress report of a running job and relays it to every process's job streams. */
export async function recordProgress(
  sql: Db,
  jobId: number,
  agentId: number,
  progress: Record<string, unknown>,
): Promise<boolean> {
  const rows = await sql`
    WITH j AS (
      UPDATE eval_jobs SET progress = ${sql.json(progress as Json)}, heartbeat_at = now()
      WHERE id = ${jobId} AND agent_id = ${agentId} AND status = 'running'
      RETURNING id)
    SELECT id, pg_notify(${JOB_EVENTS_CHANNEL},
             ${jobEventSql(sql, { jobId: sql`id`, status: "running", progress: progress as Json })})
    FROM j`;
  return rows.length > 0;
}

/**
 * The agent reports that the job could not run. Retryable failures go back to the queue
 * while attempts remain; otherwise the job ends failed with the reason.
 */
export async function failJob(
  sql: Db,
  jobId: number,
  agentId: number,
  reason: string,
  retryable: boolean,
): Promise<JobStatus | null> {
  const [row] = await sql`
    WITH j AS (
      UPDATE eval_jobs
      SET status = CASE WHEN ${retryable} AND attempts < max_attempts THEN 'pending' ELSE 'failed' END,
          agent_id = NULL, heartbeat_at = NULL, accepted_at = NULL, started_at = NULL,
          error = ${reason.slice(0, 2000)},
          finished_at = CASE WHEN ${retryable} AND attempts < max_attempts THEN NULL ELSE now() END
      WHERE id = ${jobId} AND agent_id = ${agentId} AND status = 'running'
      RETURNING id, status, region, error)
    SELECT id, status,
      CASE WHEN status = 'pending' THEN pg_notify(${JOBS_CHANNEL}, region) END,
      pg_notify(${JOB_EVENTS_CHANNEL},
        ${jobEventSql(sql, { jobId: sql`id`, status: sql`status`, agentId, error: sql`error` })})
    FROM j`;
  await releaseAgentIfIdle(sql, agentId);
  return row?.status ?? null;
}

/** A job the reaper took from a silent agent. */
export interface ReapedJob {
  id: number;
  status: "pending" | "failed";
  previousAgentId: number | null;
  region: string;
}

/**
 * Releases running jobs whose heartbeat is older than system_config
 * jobs.heartbeat_timeout_seconds (default 30): back to pending while attempts remain,
 * otherwise failed with the reason. Safe to run from every process at once.
 */
export async function reapStaleJobs(sql: Db): Promise<ReapedJob[]> {
  const rows = await sql`
    WITH cfg AS (
      SELECT ${settingSql(sql, "jobs.heartbeat_timeout_seconds")} AS timeout
    ), stale AS (
      SELECT id, agent_id FROM eval_jobs
      WHERE status = 'running' AND heartbeat_at < now() - make_interval(secs => (SELECT timeout FROM cfg))
      FOR UPDATE SKIP LOCKED
    ), j AS (
      UPDATE eval_jobs j
      SET status = CASE WHEN j.attempts < j.max_attempts THEN 'pending' ELSE 'failed' END,
          agent_id = NULL, heartbeat_at = NULL, accepted_at = NULL, started_at = NULL,
          finished_at = CASE WHEN j.attempts < j.max_attempts THEN NULL ELSE now() END,
          error = CASE WHEN j.attempts < j.max_attempts
            THEN format('agent %s stopped heartbeating during attempt %s of %s; retrying',
                        stale.agent_id, j.attempts, j.max_attempts)
            ELSE format('agent %s stopped heartbeating during attempt %s of %s; no attempts left',
                        stale.agent_id, j.attempts, j.max_attempts) END
      FROM stale WHERE j.id = stale.id
      RETURNING j.id, j.status, j.region, j.error, stale.agent_id AS previous_agent_id)
    SELECT id, status, region, previous_agent_id,
      CASE WHEN status = 'pending' THEN pg_notify(${JOBS_CHANNEL}, region) END,
      pg_notify(${JOB_EVENTS_CHANNEL}, ${
    jobEventSql(sql, {
      jobId: sql`id`,
      status: sql`status`,
      agentId: sql`previous_agent_id`,
      error: sql`error`,
    })
  })
    FROM j`;
  return rows.map((r: Record<string, unknown>) => ({
    id: r.id as number,
    status: r.status as "pending" | "failed",
    previousAgentId: r.previousAgentId as number | null,
    region: r.region as string,
  }));
}

/**
 * Fails running jobs past the server's cap on a job's run time (system_config
 * jobs.max_runtime_seconds, plus a minute for the agent to deliver its own deadline failure).
 * The agent enforces the deadline itself; this is the server's backstop against an agent that
 * does not (an old version, a wedged process that still heartbeats). Not retried: the same
 * config would run as long again. The job event tells the agent holding it to stop.
 */
export async function failOverrunJobs(sql: Db): Promise<{ id: number; agentId: number | null }[]> {
  const rows = await sql`
    WITH cfg AS (
      SELECT ${settingSql(sql, "jobs.max_runtime_seconds")} AS cap
    ), over AS (
      SELECT id, agent_id FROM eval_jobs
      WHERE status = 'running' AND started_at < now() - make_interval(secs => (SELECT cap FROM cfg) + 60)
      FOR UPDATE SKIP LOCKED
    ), j AS (
      UPDATE eval_jobs j
      SET status = 'failed', finished_at = now(), heartbeat_at = NULL,
          error = format('the job ran past the server''s limit of %s s (jobs.max_runtime_seconds)',
                         (SELECT cap FROM cfg))
      FROM over WHERE j.id = over.id
      RETURNING j.id, j.error, over.agent_id)
    SELECT id, agent_id, pg_notify(${JOB_EVENTS_CHANNEL}, ${
    jobEventSql(sql, { jobId: sql`id`, status: "failed", agentId: sql`agent_id`, error: sql`error` })
  })
    FROM j`;
  return rows.map((r: Record<string, unknown>) => ({
    id: r.id as number,
    agentId: r.agentId as number | null,
  }));
}

/** Cancels a job that has not started. Returns its status afterwards, or null if it does not exist. */
export async function cancelJob(
  sql: Db,
  jobId: number,
): Promise<{ cancelled: boolean; status: JobStatus } | null> {
  const [row] = await sql`
    WITH j AS (
      UPDATE eval_jobs SET status = 'cancelled', finished_at = now(), error = 'cancelled by user'
      WHERE id = ${jobId} AND status = 'pending'
      RETURNING id)
    SELECT id, pg_notify(${JOB_EVENTS_CHANNEL}, ${jobEventSql(sql, { jobId: sql`id`, status: "cancelled" })})
    FROM j`;
  if (row) return { cancelled: true, status: "cancelled" };
  const [cur] = await sql`SELECT status FROM eval_jobs WHERE id = ${jobId}`;
  return cur ? { cancelled: false, status: cur.status } : null;
}

/** One job by id. */
export async function getJob(sql: Db, jobId: number): Promise<Job | null> {
  const [row] = await sql`SELECT ${JOB_COLUMNS(sql)} FROM eval_jobs WHERE id = ${jobId}`;
  return row ? toJob(row) : null;
}

async function releaseAgentIfIdle(sql: Db, agentId: number): Promise<void> {
  await sql`
    UPDATE eval_agents SET state = 'IDLE'
    WHERE id = ${agentId} AND state = 'OCCUPIED'
      AND NOT EXISTS (SELECT 1 FROM eval_jobs WHERE agent_id = ${agentId} AND status = 'running')`;
}

/** Row → API shape (timestamps as ISO strings). */
export function toJob(r: Record<string, unknown>): Job {
  return {
    id: r.id as number,
    workflowId: r.workflowId as number,
    evalSetId: r.evalSetId as number,
    region: r.region as string,
    scheduleId: (r.scheduleId as number | null) ?? null,
    scheduledFor: iso(r.scheduledFor),
    status: r.status as JobStatus,
    priority: r.priority as number,
    attempts: r.attempts as number,
    maxAttempts: r.maxAttempts as number,
    agentId: (r.agentId as number | null) ?? null,
    repeat: r.repeat as number,
    progress: r.progress ?? null,
    createdBy: (r.createdBy as number | null) ?? null,
    createdAt: iso(r.createdAt)!,
    startedAt: iso(r.startedAt),
    acceptedAt: iso(r.acceptedAt),
    finishedAt: iso(r.finishedAt),
    error: (r.error as string | null) ?? null,
  };
}

function iso(v: unknown): string | null {
  return v instanceof Date ? v.toISOString() : (v as string | null) ?? null;
}
