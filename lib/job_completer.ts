// Completing jobs with their results (River keeps its job completer apart from the queue the
// same way): the statements that mark a running job completed and store its eval_results
// row — one job (completeJob()) or a batch that also claims each agent's next job
// (completeJobs()) — and JobCompleter, which gathers the results arriving on a server
// process into those batches.
import type { RunReport } from "../agent/protocol.ts";
import { type Db, type Fragment, type Json, retrying, type Sql } from "./db.ts";
import type { JobStatus } from "./job_status.ts";
import type { Logger } from "./log.ts";
import {
  JOB_EVENTS_CHANNEL,
  jobEventSql,
  type Notification,
  notify,
  resultEventSql,
  RESULTS_CHANNEL,
} from "./notify.ts";
import { claimCtes, claimJobs, type JobOffer, toOffer } from "./queue.ts";
import { offerClipsSql } from "./audio.ts";
import { MAINLINE_ROLES } from "./roles.ts";
import { settingSql } from "./settings.ts";

/**
 * Whether a result of job `j` (workflow `w`, eval set `e`) counts toward the public boards,
 * decided when the result is stored: both items are mainline at that moment, and the run is
 * owned by a principal, a fellow or the admin whose account is not deactivated — the job's
 * creator and, for a scheduled job, the schedule's creator too (a job whose owner was deleted
 * does not count). The demo's system user (`users.is_system`, deactivated so nobody signs in
 * as it) still counts. Everyone else's runs of public mainline items are their own results.
 */
export function boardResultSql(sql: Db): Fragment {
  const curator = (userId: Fragment) =>
    sql`EXISTS (SELECT 1 FROM users u WHERE u.id = ${userId}
      AND (u.is_admin OR u.role IN ${sql(MAINLINE_ROLES as unknown as string[])})
      AND (u.deactivated_at IS NULL OR u.is_system))`;
  return sql`(w.is_mainline AND e.is_mainline AND ${curator(sql`j.created_by`)}
    AND (j.schedule_id IS NULL OR EXISTS (
      SELECT 1 FROM eval_schedules s WHERE s.id = j.schedule_id AND ${curator(sql`s.created_by`)})))`;
}

// The eval_results columns a completion writes, in the order both statements select them.
const RESULT_COLUMNS = (sql: Db): Fragment =>
  sql`job_id, workflow_id, eval_set_id, provider_id, region, schedule_id, agent_id, is_mainline,
      response_latency_median, response_latency_sd, response_latency_p90, response_latency_n,
      interrupt_latency_median, interrupt_latency_sd, interrupt_latency_p90, interrupt_latency_n,
      network_resilience, naturalness, noise_reduction, turns, methods, report`;

// What both statements read back from a stored result `r` (ids and resultEventSql()'s fields).
const STORED_COLUMNS = (sql: Db): Fragment =>
  sql`id, job_id, agent_id, provider_id, region, is_mainline, created_at, response_latency_median,
      interrupt_latency_median, network_resilience, naturalness, noise_reduction`;

/** Outcome of submitting a result. */
export type CompleteOutcome =
  | { ok: true; duplicate: boolean; resultId: number }
  | { ok: false; status: JobStatus | null };

/**
 * Completes a running job held by `agentId` and stores its result, in one statement:
 * job → completed, result row (linked to workflow, eval set, provider, region, schedule,
 * with the mainline snapshot of boardResultSql()), agent → IDLE unless it still runs another job. The live
 * events follow in their own transaction (see notify() in lib/notify.ts), or go to `deferNotify` to be
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
      RETURNING id, workflow_id, eval_set_id, region, schedule_id, agent_id, created_by
    ), r AS (
      INSERT INTO eval_results (${RESULT_COLUMNS(sql)})
      SELECT j.id, j.workflow_id, j.eval_set_id, w.provider_id, j.region, j.schedule_id, j.agent_id,
             ${boardResultSql(sql)},
             ${m.response_latency.median}, ${m.response_latency.sd}, ${m.response_latency.p90},
             ${m.response_latency.n},
             ${m.interrupt_latency.median}, ${m.interrupt_latency.sd}, ${m.interrupt_latency.p90},
             ${m.interrupt_latency.n},
             ${m.network_resilience}, ${m.naturalness}, ${m.noise_reduction},
             ${sql.json(report.turns as Json)}, ${sql.json(report.methods ?? {})}, ${sql.json(report as Json)}
      FROM j JOIN workflows w ON w.id = j.workflow_id JOIN eval_sets e ON e.id = j.eval_set_id
      ON CONFLICT (job_id) DO NOTHING
      RETURNING ${STORED_COLUMNS(sql)}
    ), a AS (
      UPDATE eval_agents SET last_job_id = ${jobId}, last_job_at = now(),
        state = CASE WHEN EXISTS (
          SELECT 1 FROM eval_jobs x WHERE x.agent_id = ${agentId} AND x.status = 'running' AND x.id <> ${jobId}
        ) THEN 'OCCUPIED' ELSE 'IDLE' END
      WHERE id = ${agentId} AND EXISTS (SELECT 1 FROM j)
    )
    SELECT (SELECT count(*) FROM j)::int AS updated, r.id AS result_id,
      ${
    jobEventSql(sql, { jobId: sql`r.job_id`, status: "completed", agentId, resultId: sql`r.id` })
  } AS job_event,
      ${resultEventSql(sql)} AS result_event
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
      RETURNING x.id, x.workflow_id, x.eval_set_id, x.region, x.schedule_id, x.agent_id, x.created_by
    ), r AS (
      INSERT INTO eval_results (${RESULT_COLUMNS(sql)})
      SELECT j.id, j.workflow_id, j.eval_set_id, w.provider_id, j.region, j.schedule_id, j.agent_id,
             ${boardResultSql(sql)},
             i.rl_median, i.rl_sd, i.rl_p90, i.rl_n, i.il_median, i.il_sd, i.il_p90, i.il_n,
             i.resilience, i.naturalness, i.noise, i.turns, i.methods, i.report
      FROM j JOIN input i ON i.job_id = j.id AND i.agent_id = j.agent_id
      JOIN workflows w ON w.id = j.workflow_id JOIN eval_sets e ON e.id = j.eval_set_id
      ORDER BY j.id
      ON CONFLICT (job_id) DO NOTHING
      RETURNING ${STORED_COLUMNS(sql)}
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
         'jobEvent', ${
    jobEventSql(sql, {
      jobId: sql`r.job_id`,
      status: "completed",
      agentId: sql`r.agent_id`,
      resultId: sql`r.id`,
    })
  },
         'resultEvent', ${resultEventSql(sql)})) FROM r) AS stored,
      (SELECT json_agg(json_build_object(
         'agentId', c.agent_id, 'id', c.id, 'attempts', c.attempts, 'maxAttempts', c.max_attempts,
         'region', c.region, 'repeat', c.repeat, 'wId', w.id, 'wName', w.name, 'wProviderId', w.provider_id,
         'wConfig', w.config, 'wSecretsEnc', w.secrets_enc, 'eId', e.id, 'eName', e.name, 'eConfig', e.config, 'eAudio', ${
    offerClipsSql(sql)
  },
         'waitedMs', c.waited_ms,
         'maxRuntime', ${settingSql(sql, "jobs.max_runtime_seconds")}) ORDER BY c.id)
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

/** Results of one region written by one statement at most. */
const MAX_RESULT_BATCH = 64;
/** Result batches of one region in flight at once: others run while one waits for its commit. */
const MAX_RESULT_WRITERS = 4;

/** One result to store: the job, the agent holding it (of `region`) and its report. */
export interface Completion {
  jobId: number;
  agentId: number;
  region: string;
  report: RunReport;
  /** The agent has a slot for its next job. */
  next: boolean;
}

/** What complete() settled: the outcome to acknowledge and, if one was claimed, the agent's next job. */
export interface Completed {
  outcome: CompleteOutcome;
  offer: JobOffer | null;
}

/** What a JobCompleter needs from the process it serves. */
export interface JobCompleterOptions {
  sql: Sql;
  log: Logger;
  /** Takes the live events of stored results (the caller batches their NOTIFY). */
  notify: (events: Notification[]) => void;
  /** Told of each batch in flight, so a shutdown can wait for it. */
  track: <T>(p: Promise<T>) => Promise<T>;
  /** False once no next jobs may be claimed (the process is stopping). */
  claiming: () => boolean;
}

// A result waiting for its region's next batch.
interface PendingResult extends Completion {
  resolve: (completed: Completed) => void;
  reject: (err: unknown) => void;
}

/**
 * Gathers results into batches per region. Results that arrive while a batch of their
 * region is being written wait for the next one, and each batch is one statement
 * (completeJobs()): a lone result goes out at once, a busy region pays one plan and one
 * commit for many results.
 */
export class JobCompleter {
  #regions = new Map<string, { pending: PendingResult[]; running: number }>();

  constructor(readonly opts: JobCompleterOptions) {}

  /** Stores a result and, when `next` and a job is pending in its region, claims the agent's next job. */
  complete(c: Completion): Promise<Completed> {
    return new Promise((resolve, reject) => {
      let batcher = this.#regions.get(c.region);
      if (!batcher) this.#regions.set(c.region, batcher = { pending: [], running: 0 });
      batcher.pending.push({ ...c, resolve, reject });
      this.#write(c.region);
    });
  }

  // Starts a batch for `region` unless MAX_RESULT_WRITERS are already writing; each writer
  // takes everything pending (up to MAX_RESULT_BATCH) and looks again when it is done.
  #write(region: string): void {
    const batcher = this.#regions.get(region);
    if (!batcher || batcher.running >= MAX_RESULT_WRITERS || batcher.pending.length === 0) return;
    const batch = batcher.pending.splice(0, MAX_RESULT_BATCH);
    batcher.running++;
    this.opts.track((async () => {
      try {
        await this.#store(region, batch);
      } finally {
        batcher.running--;
        this.#write(region);
      }
    })());
  }

  async #store(region: string, batch: PendingResult[]): Promise<void> {
    const { sql, log } = this.opts;
    const events: Notification[] = [];
    let outcomes: BatchOutcome[] | null = null;
    try {
      outcomes = await retrying(() =>
        completeJobs(
          sql,
          region,
          batch.map((p) => ({
            jobId: p.jobId,
            agentId: p.agentId,
            report: p.report,
            next: p.next && this.opts.claiming(),
          })),
          (e) => events.push(...e),
        )
      );
    } catch (err) {
      // One bad item must not fail the others: store them one by one, as before batching.
      log.warn("batched result write failed; storing one by one", { region, error: err });
    }
    this.opts.notify(events);
    await Promise.all(batch.map(async (p, i) => {
      try {
        const o = outcomes?.[i];
        p.resolve(o ? await this.#settle(p, o) : await this.#completeOne(p));
      } catch (err) {
        p.reject(err);
      }
    }));
  }

  // An item of a written batch: stored, or the reason it was not.
  async #settle(p: PendingResult, o: BatchOutcome): Promise<Completed> {
    if (!o.stored) {
      // Duplicate or not held: completeJob() stores nothing new and says which.
      const outcome = await completeJob(this.opts.sql, p.jobId, p.agentId, p.report, {
        deferNotify: (e) => this.opts.notify(e),
      });
      return { outcome, offer: null };
    }
    return { outcome: { ok: true, duplicate: false, resultId: o.resultId }, offer: o.offer };
  }

  // Without batching: completeJob() then claimJobs(), two autocommit statements.
  async #completeOne(p: PendingResult): Promise<Completed> {
    const { sql } = this.opts;
    const events: Notification[] = [];
    const outcome = await retrying(() =>
      completeJob(sql, p.jobId, p.agentId, p.report, { deferNotify: (e) => events.push(...e) })
    );
    const offers = outcome.ok && !outcome.duplicate && p.next && this.opts.claiming()
      ? await retrying(() => claimJobs(sql, p.region, [{ agentId: p.agentId }]))
      : [];
    this.opts.notify(events);
    return { outcome, offer: offers[0] ?? null };
  }
}
