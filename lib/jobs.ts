import type { z } from "zod";
import type { jobOfferSchema, RunReport } from "../agent/protocol.ts";
export type { RunReport };
import type { Db, Fragment, Json, Sql } from "./db.ts";
import { settingSql } from "./settings.ts";

export type JobStatus = "pending" | "running" | "completed" | "failed" | "cancelled";

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

/**
 * Runs `fn` again (up to 3 times) when Postgres aborted it as a deadlock victim or a
 * serialization failure: both mean "nothing happened, try again".
 */
export async function retrying<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (attempt >= 3 || (code !== "40P01" && code !== "40001")) throw err;
      await new Promise((r) => setTimeout(r, 5 * attempt));
    }
  }
}

/** Channel carrying the region of every job that became claimable. */
export const JOBS_CHANNEL = "vox_jobs";
/** Channel carrying job state changes and progress (JSON, see JobEvent). */
export const JOB_EVENTS_CHANNEL = "vox_job_events";

/** What every process learns about a job through JOB_EVENTS_CHANNEL. */
export interface JobEvent {
  jobId: number;
  status: JobStatus;
  /** The agent that lost or finished the job, so its server can tell it. */
  agentId?: number | null;
  progress?: unknown;
  error?: string | null;
  resultId?: number | null;
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
  const [row] = await sql`
    WITH j AS (
      INSERT INTO eval_jobs (workflow_id, eval_set_id, region, priority, repeat, created_by, max_attempts,
                             schedule_id)
      VALUES (${input.workflowId}, ${input.evalSetId}, ${input.region}, ${input.priority ?? 0},
              ${input.repeat ?? 1}, ${input.createdBy ?? null},
              coalesce(${input.maxAttempts ?? null}::int, ${settingSql(sql, "jobs.max_attempts")}),
              ${input.scheduleId ?? null})
      RETURNING *)
    SELECT ${JOB_COLUMNS(sql)}, pg_notify(${JOBS_CHANNEL}, region) FROM j`;
  return toJob(row);
}

/**
 * Creates the job of one schedule firing, at most once per (schedule, due time) thanks to
 * eval_jobs_schedule_firing_key; returns null when that firing already has its job.
 */
export async function createScheduledJob(
  tx: Db,
  input: NewJob & { scheduleId: number; scheduledFor: Date },
): Promise<Job | null> {
  const [row] = await tx`
    WITH j AS (
      INSERT INTO eval_jobs (workflow_id, eval_set_id, region, priority, repeat, created_by, max_attempts,
                             schedule_id, scheduled_for)
      VALUES (${input.workflowId}, ${input.evalSetId}, ${input.region}, ${input.priority ?? 0},
              ${input.repeat ?? 1}, ${input.createdBy ?? null},
              coalesce(${input.maxAttempts ?? null}::int, ${settingSql(tx, "jobs.max_attempts")}),
              ${input.scheduleId}, ${input.scheduledFor})
      ON CONFLICT (schedule_id, scheduled_for) WHERE schedule_id IS NOT NULL AND scheduled_for IS NOT NULL
      DO NOTHING
      RETURNING *)
    SELECT ${JOB_COLUMNS(tx)}, pg_notify(${JOBS_CHANNEL}, region) FROM j`;
  return row ? toJob(row) : null;
}

/** A claimed job and the offer to send to the agent that got it. */
export interface JobOffer {
  agentId: number;
  message: z.infer<typeof jobOfferSchema>;
}

/**
 * The `next` and `claimed` CTEs shared by claimJobs() and completeJobs(): up to `limit`
 * pending jobs of `region` (priority, then oldest) taken FOR UPDATE SKIP LOCKED and given
 * to the statement's `slots` CTE (agent_id, ord) in order; `limit` is a number or an SQL
 * fragment. One text for both statements, so a job is claimed the same way however it
 * comes to an agent.
 */
function claimCtes(sql: Db, region: string, limit: number | Fragment) {
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
      RETURNING x.id, x.agent_id, x.attempts, x.max_attempts, x.region, x.repeat, x.workflow_id, x.eval_set_id
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
    SELECT c.id, c.agent_id, c.attempts, c.max_attempts, c.region, c.repeat,
           w.id AS w_id, w.name AS w_name, w.provider_id AS w_provider_id, w.config AS w_config,
           e.id AS e_id, e.name AS e_name, e.config AS e_config
    FROM claimed c
    JOIN workflows w ON w.id = c.workflow_id
    JOIN eval_sets e ON e.id = c.eval_set_id
    ORDER BY c.id`;
  return rows.map(toOffer);
}

// A claimed row (claimJobs(), completeJobs()) → the offer for its agent.
function toOffer(r: Record<string, unknown>): JobOffer {
  return {
    agentId: r.agentId as number,
    message: {
      type: "job.offer" as const,
      jobId: r.id as number,
      attempt: r.attempts as number,
      maxAttempts: r.maxAttempts as number,
      region: r.region as string,
      repeat: r.repeat as number,
      workflow: {
        id: r.wId as number,
        name: r.wName as string,
        providerId: r.wProviderId as string,
        config: r.wConfig as Record<string, unknown>,
      },
      evalSet: { id: r.eId as number, name: r.eName as string, config: r.eConfig as Record<string, unknown> },
    },
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
           pg_notify(${JOB_EVENTS_CHANNEL}, json_build_object('jobId', id, 'status', 'pending')::text)
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
             json_build_object('jobId', id, 'status', 'running', 'progress', ${
    sql.json(progress as Json)
  }::jsonb)::text)
    FROM j`;
  return rows.length > 0;
}

/** Outcome of submitting a result. */
export type CompleteOutcome =
  | { ok: true; duplicate: boolean; resultId: number }
  | { ok: false; status: JobStatus | null };

/** Channel carrying every new mainline result (JSON summary) to the public metric streams. */
export const RESULTS_CHANNEL = "vox_results";

/** A notification to send with pg_notify. */
export interface Notification {
  channel: string;
  payload: string;
}

/**
 * Sends notifications in one transaction of their own, without waiting for its commit to
 * reach disk. Postgres serialises the commits of notifying transactions (a global lock
 * held through the WAL flush), so keeping NOTIFY out of the result-storing transaction
 * lets those commit in parallel. The events only feed live streams; a crash between the
 * two commits loses an event, never data.
 */
export async function notify(sql: Sql, events: Notification[]): Promise<void> {
  if (events.length === 0) return;
  const rows = events.map((e) => ({ c: e.channel, p: e.payload }));
  await sql.begin(async (tx) => {
    await tx`SET LOCAL synchronous_commit = off`;
    await tx`SELECT pg_notify(v.c, v.p) FROM jsonb_to_recordset(${tx.json(rows)}) AS v(c text, p text)`;
  });
}

/**
 * Completes a running job held by `agentId` and stores its result, in one statement:
 * job → completed, result row (linked to workflow, eval set, provider, region, schedule,
 * with the mainline snapshot), agent → IDLE unless it still runs another job. The live
 * events follow in their own transaction (see notify()), or go to `deferNotify` to be
 * batched by the caller. A job that already has its result answers `duplicate` and stores
 * nothing new.
 */
export async function completeJob(
  sql: Sql,
  jobId: number,
  agentId: number,
  report: RunReport,
  opts: { deferNotify?: (events: Notification[]) => void } = {},
): Promise<CompleteOutcome> {
  const m = report.metrics;
  const [row] = await sql`
    WITH j AS (
      UPDATE eval_jobs SET status = 'completed', finished_at = now(), error = NULL, progress = NULL
      WHERE id = ${jobId} AND agent_id = ${agentId} AND status = 'running'
      RETURNING id, workflow_id, eval_set_id, region, schedule_id, agent_id
    ), r AS (
      INSERT INTO eval_results (
        job_id, workflow_id, eval_set_id, provider_id, region, schedule_id, agent_id, is_mainline,
        response_latency_median, response_latency_sd, response_latency_p90, response_latency_n,
        interrupt_latency_median, interrupt_latency_sd, interrupt_latency_p90, interrupt_latency_n,
        network_resilience, naturalness, noise_reduction, turns, methods, report)
      SELECT j.id, j.workflow_id, j.eval_set_id, w.provider_id, j.region, j.schedule_id, j.agent_id,
             w.is_mainline AND e.is_mainline,
             ${m.response_latency.median}, ${m.response_latency.sd}, ${m.response_latency.p90},
             ${m.response_latency.n},
             ${m.interrupt_latency.median}, ${m.interrupt_latency.sd}, ${m.interrupt_latency.p90},
             ${m.interrupt_latency.n},
             ${m.network_resilience}, ${m.naturalness}, ${m.noise_reduction},
             ${sql.json(report.turns as Json)}, ${sql.json(report.methods ?? {})}, ${sql.json(report as Json)}
      FROM j JOIN workflows w ON w.id = j.workflow_id JOIN eval_sets e ON e.id = j.eval_set_id
      ON CONFLICT (job_id) DO NOTHING
      RETURNING id, job_id, provider_id, region, is_mainline, created_at, response_latency_median,
                interrupt_latency_median, network_resilience, naturalness, noise_reduction
    ), a AS (
      UPDATE eval_agents SET last_job_id = ${jobId}, last_job_at = now(),
        state = CASE WHEN EXISTS (
          SELECT 1 FROM eval_jobs x WHERE x.agent_id = ${agentId} AND x.status = 'running' AND x.id <> ${jobId}
        ) THEN 'OCCUPIED' ELSE 'IDLE' END
      WHERE id = ${agentId} AND EXISTS (SELECT 1 FROM j)
    )
    SELECT (SELECT count(*) FROM j)::int AS updated, r.id AS result_id,
      json_build_object('jobId', r.job_id, 'status', 'completed', 'agentId', ${agentId}::bigint,
                        'resultId', r.id)::text AS job_event,
      CASE WHEN r.is_mainline THEN json_build_object(
        'resultId', r.id, 'jobId', r.job_id, 'providerId', r.provider_id, 'region', r.region,
        'createdAt', r.created_at, 'responseLatency', r.response_latency_median,
        'interruptLatency', r.interrupt_latency_median, 'networkResilience', r.network_resilience,
        'naturalness', r.naturalness, 'noiseReduction', r.noise_reduction)::text END AS result_event
    FROM (SELECT 1) one LEFT JOIN r ON true`;
  if (row.updated > 0 && row.resultId) {
    const events: Notification[] = [{ channel: JOB_EVENTS_CHANNEL, payload: row.jobEvent }];
    if (row.resultEvent) events.push({ channel: RESULTS_CHANNEL, payload: row.resultEvent });
    if (opts.deferNotify) opts.deferNotify(events);
    else await notify(sql, events);
    return { ok: true, duplicate: false, resultId: row.resultId };
  }
  const [existing] = await sql`
    SELECT j.status, r.id AS result_id FROM eval_jobs j LEFT JOIN eval_results r ON r.job_id = j.id
    WHERE j.id = ${jobId}`;
  if (existing?.resultId) return { ok: true, duplicate: true, resultId: existing.resultId };
  return { ok: false, status: existing?.status ?? null };
}

/** One result to store with completeJobs(); `next` asks for the agent's next job when it is stored. */
export interface ResultItem {
  jobId: number;
  agentId: number;
  report: RunReport;
  next: boolean;
}

/** What completeJobs() did for one item: stored (with the next offer, if any) or not. */
export type BatchOutcome =
  | { stored: true; resultId: number; offer: JobOffer | null }
  | { stored: false };

/**
 * Stores many results and claims the next job for each agent that asked, all of `region`,
 * in one statement (one plan, one commit for the batch). Per item it does what
 * completeJob() then claimJobs() do: the job (running, held by the agent) → completed, the
 * result row inserted (`ON CONFLICT (job_id) DO NOTHING`), and only for a stored result a
 * pending job of the same region claimed `FOR UPDATE SKIP LOCKED` for the agent; each agent
 * row is written once (OCCUPIED when it got a job or still runs another, else IDLE). Rows
 * are locked jobs first, then agents, each in id order, like every other multi-row writer.
 * An item that stored nothing (duplicate, not held) is `{stored: false}`: ask completeJob()
 * for the reason. Live events go to `deferNotify`, as in completeJob().
 *
 * Why: per job the two autocommit statements cost Postgres ~930 µs of CPU in the bench,
 * about a third of it planning the two CTE statements again (custom plans) and a commit
 * each; with 50 agents the results that arrive while one batch runs go out together.
 */
export async function completeJobs(
  sql: Db,
  region: string,
  items: ResultItem[],
  deferNotify: (events: Notification[]) => void,
): Promise<BatchOutcome[]> {
  if (items.length === 0) return [];
  const input = items.map((it, i) => {
    const m = it.report.metrics;
    return {
      ord: i + 1,
      job_id: it.jobId,
      agent_id: it.agentId,
      next: it.next,
      rl_median: m.response_latency.median,
      rl_sd: m.response_latency.sd,
      rl_p90: m.response_latency.p90,
      rl_n: m.response_latency.n,
      il_median: m.interrupt_latency.median,
      il_sd: m.interrupt_latency.sd,
      il_p90: m.interrupt_latency.p90,
      il_n: m.interrupt_latency.n,
      resilience: m.network_resilience,
      naturalness: m.naturalness,
      noise: m.noise_reduction,
      turns: it.report.turns,
      methods: it.report.methods ?? {},
      report: it.report,
    };
  });
  const [row] = await sql`
    WITH input AS (
      -- One row per (job, agent): a result sent twice in one batch is stored once.
      SELECT DISTINCT ON (job_id, agent_id) * FROM jsonb_to_recordset(${sql.json(input as Json)}) AS v(
        ord int, job_id bigint, agent_id bigint, next boolean,
        rl_median float8, rl_sd float8, rl_p90 float8, rl_n int,
        il_median float8, il_sd float8, il_p90 float8, il_n int,
        resilience float8, naturalness float8, noise float8, turns jsonb, methods jsonb, report jsonb)
      ORDER BY job_id, agent_id, ord
    ), j AS (
      UPDATE eval_jobs x SET status = 'completed', finished_at = now(), error = NULL, progress = NULL
      FROM input i
      WHERE x.id = i.job_id AND x.agent_id = i.agent_id AND x.status = 'running'
        AND x.id IN (SELECT id FROM eval_jobs WHERE id IN (SELECT job_id FROM input) ORDER BY id FOR UPDATE)
      RETURNING x.id, x.workflow_id, x.eval_set_id, x.region, x.schedule_id, x.agent_id
    ), r AS (
      INSERT INTO eval_results (
        job_id, workflow_id, eval_set_id, provider_id, region, schedule_id, agent_id, is_mainline,
        response_latency_median, response_latency_sd, response_latency_p90, response_latency_n,
        interrupt_latency_median, interrupt_latency_sd, interrupt_latency_p90, interrupt_latency_n,
        network_resilience, naturalness, noise_reduction, turns, methods, report)
      SELECT j.id, j.workflow_id, j.eval_set_id, w.provider_id, j.region, j.schedule_id, j.agent_id,
             w.is_mainline AND e.is_mainline,
             i.rl_median, i.rl_sd, i.rl_p90, i.rl_n, i.il_median, i.il_sd, i.il_p90, i.il_n,
             i.resilience, i.naturalness, i.noise, i.turns, i.methods, i.report
      FROM j JOIN input i ON i.job_id = j.id AND i.agent_id = j.agent_id
      JOIN workflows w ON w.id = j.workflow_id JOIN eval_sets e ON e.id = j.eval_set_id
      ORDER BY j.id
      ON CONFLICT (job_id) DO NOTHING
      RETURNING id, job_id, agent_id, provider_id, region, is_mainline, created_at, response_latency_median,
                interrupt_latency_median, network_resilience, naturalness, noise_reduction
    ), slots AS (
      SELECT i.agent_id, row_number() OVER (ORDER BY i.ord) AS ord
      FROM input i JOIN r ON r.job_id = i.job_id AND r.agent_id = i.agent_id
      WHERE i.next
    ), ${claimCtes(sql, region, sql`(SELECT count(*) FROM slots)`)}, done AS (
      SELECT j.agent_id, max(j.id) AS job_id, (SELECT max(c.id) FROM claimed c WHERE c.agent_id = j.agent_id) AS next_id
      FROM j GROUP BY j.agent_id
    ), a AS (
      UPDATE eval_agents a
      SET last_job_id = coalesce(d.next_id, d.job_id), last_job_at = now(),
          state = CASE WHEN d.next_id IS NOT NULL OR EXISTS (
            SELECT 1 FROM eval_jobs x WHERE x.agent_id = a.id AND x.status = 'running'
              AND x.id NOT IN (SELECT job_id FROM input)
          ) THEN 'OCCUPIED' ELSE 'IDLE' END
      FROM done d
      WHERE a.id = d.agent_id
        AND a.id IN (SELECT id FROM eval_agents WHERE id IN (SELECT agent_id FROM done) ORDER BY id FOR UPDATE)
    )
    SELECT
      (SELECT json_agg(json_build_object(
         'jobId', r.job_id, 'agentId', r.agent_id, 'resultId', r.id,
         'jobEvent', json_build_object('jobId', r.job_id, 'status', 'completed', 'agentId', r.agent_id,
                                       'resultId', r.id)::text,
         'resultEvent', CASE WHEN r.is_mainline THEN json_build_object(
           'resultId', r.id, 'jobId', r.job_id, 'providerId', r.provider_id, 'region', r.region,
           'createdAt', r.created_at, 'responseLatency', r.response_latency_median,
           'interruptLatency', r.interrupt_latency_median, 'networkResilience', r.network_resilience,
           'naturalness', r.naturalness, 'noiseReduction', r.noise_reduction)::text END)) FROM r) AS stored,
      (SELECT json_agg(json_build_object(
         'agentId', c.agent_id, 'id', c.id, 'attempts', c.attempts, 'maxAttempts', c.max_attempts,
         'region', c.region, 'repeat', c.repeat, 'wId', w.id, 'wName', w.name, 'wProviderId', w.provider_id,
         'wConfig', w.config, 'eId', e.id, 'eName', e.name, 'eConfig', e.config) ORDER BY c.id)
       FROM claimed c JOIN workflows w ON w.id = c.workflow_id JOIN eval_sets e ON e.id = c.eval_set_id) AS offers`;
  type Stored = {
    jobId: number;
    agentId: number;
    resultId: number;
    jobEvent: string;
    resultEvent: string | null;
  };
  const stored = new Map<string, Stored>();
  for (const s of (row.stored ?? []) as Stored[]) stored.set(`${s.jobId}:${s.agentId}`, s);
  const offers = new Map<number, JobOffer>();
  for (const o of (row.offers ?? []) as Record<string, unknown>[]) {
    offers.set(o.agentId as number, toOffer(o));
  }
  const events: Notification[] = [];
  for (const s of stored.values()) {
    events.push({ channel: JOB_EVENTS_CHANNEL, payload: s.jobEvent });
    if (s.resultEvent) events.push({ channel: RESULTS_CHANNEL, payload: s.resultEvent });
  }
  deferNotify(events);
  return items.map((it) => {
    const key = `${it.jobId}:${it.agentId}`;
    const s = stored.get(key);
    if (!s) return { stored: false };
    // A second copy in the same batch is a duplicate: completeJob() will say so.
    stored.delete(key);
    const offer = it.next ? offers.get(it.agentId) ?? null : null;
    if (offer) offers.delete(it.agentId);
    return { stored: true, resultId: s.resultId, offer };
  });
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
        json_build_object('jobId', id, 'status', status, 'agentId', ${agentId}::bigint, 'error', error)::text)
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
      pg_notify(${JOB_EVENTS_CHANNEL}, json_build_object('jobId', id, 'status', status,
        'agentId', previous_agent_id, 'error', error)::text)
    FROM j`;
  return rows.map((r: Record<string, unknown>) => ({
    id: r.id as number,
    status: r.status as "pending" | "failed",
    previousAgentId: r.previousAgentId as number | null,
    region: r.region as string,
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
    SELECT id, pg_notify(${JOB_EVENTS_CHANNEL},
      json_build_object('jobId', id, 'status', 'cancelled')::text) FROM j`;
  if (row) return { cancelled: true, status: "cancelled" };
  const [cur] = await sql`SELECT status FROM eval_jobs WHERE id = ${jobId}`;
  return cur ? { cancelled: false, status: cur.status } : null;
}

/** One job by id. */
export async function getJob(sql: Db, jobId: number): Promise<Job | null> {
  const [row] = await sql`SELECT ${JOB_COLUMNS(sql)} FROM eval_jobs WHERE id = ${jobId}`;
  return row ? toJob(row) : null;
}

/**
 * Stores an artifact of a running job, only for an agent registered with `tokenId` that
 * holds it. Storing a name twice keeps the first copy.
 */
export async function storeArtifact(
  sql: Db,
  input: {
    jobId: number;
    tokenId: number;
    name: string;
    kind: string;
    contentType: string;
    data: Uint8Array;
  },
): Promise<"created" | "exists" | "not_held"> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", input.data as Uint8Array<ArrayBuffer>));
  const sha = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  const held = await sql`
    SELECT 1 FROM eval_jobs j JOIN eval_agents a ON a.id = j.agent_id
    WHERE j.id = ${input.jobId} AND j.status = 'running' AND a.token_id = ${input.tokenId}`;
  if (held.length === 0) return "not_held";
  const rows = await sql`
    INSERT INTO eval_artifacts (job_id, kind, name, content_type, size_bytes, sha256, data)
    VALUES (${input.jobId}, ${input.kind}, ${input.name}, ${input.contentType}, ${input.data.length},
            ${sha}, ${input.data})
    ON CONFLICT (job_id, name) DO NOTHING RETURNING id`;
  return rows.length > 0 ? "created" : "exists";
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
