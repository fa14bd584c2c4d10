// What server processes tell each other through Postgres LISTEN/NOTIFY: the channels, their
// payloads (a JobEvent is built by jobEventSql() inside every statement that changes a job, a
// result summary by resultEventSql()), and sending them. Every process LISTENs to these
// channels (lib/orchestrator.ts) and relays them to its sockets and live streams.
import type { Db, Fragment, Json, Sql } from "./db.ts";
import type { JobStatus } from "./job_status.ts";
import type { Logger } from "./log.ts";

/** Channel carrying the region of every job that became claimable. */
export const JOBS_CHANNEL = "vox_jobs";
/** Channel carrying job state changes and progress (JSON, see JobEvent). */
export const JOB_EVENTS_CHANNEL = "vox_job_events";
/** Channel carrying every new mainline result (JSON, see resultEventSql()) to the public metric streams. */
export const RESULTS_CHANNEL = "vox_results";
/** Channel carrying `{agentId, connectionId}` of each agent connection, so older sockets of it close. */
export const AGENTS_CHANNEL = "vox_agents";
/** Channel carrying the id of each revoked agent token, so its sockets close. */
export const AGENT_TOKENS_CHANNEL = "vox_agent_tokens";

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

/** A notification to send with pg_notify. */
export interface Notification {
  channel: string;
  payload: string;
}

/** A JobEvent sent from code rather than from the statement that changed the job. */
export function jobEventNotification(event: JobEvent): Notification {
  return { channel: JOB_EVENTS_CHANNEL, payload: JSON.stringify(event) };
}

/**
 * The JobEvent of a statement's row as JSON text, for pg_notify() in that statement or for
 * the caller to send later. Each field is SQL over the row, or a value bound as a parameter;
 * fields left out stay out of the event (a cancelled job's event names no agent).
 */
export function jobEventSql(
  sql: Db,
  e: {
    jobId: Fragment;
    status: JobStatus | Fragment;
    agentId?: number | Fragment;
    progress?: Json;
    error?: Fragment;
    resultId?: Fragment;
  },
): Fragment {
  let fields = sql`'jobId', ${e.jobId}, 'status', ${
    typeof e.status === "string" ? sql`${e.status}::text` : e.status
  }`;
  if (e.agentId !== undefined) {
    fields = sql`${fields}, 'agentId', ${
      typeof e.agentId === "number" ? sql`${e.agentId}::bigint` : e.agentId
    }`;
  }
  if (e.progress !== undefined) fields = sql`${fields}, 'progress', ${sql.json(e.progress)}::jsonb`;
  if (e.error !== undefined) fields = sql`${fields}, 'error', ${e.error}`;
  if (e.resultId !== undefined) fields = sql`${fields}, 'resultId', ${e.resultId}`;
  return sql`json_build_object(${fields})::text`;
}

/**
 * The RESULTS_CHANNEL payload of a stored result `r` (an eval_results row, e.g. the RETURNING
 * of its insert) as JSON text, or NULL when the result is not mainline: only mainline
 * results feed the public metric streams.
 */
export function resultEventSql(sql: Db): Fragment {
  return sql`CASE WHEN r.is_mainline THEN json_build_object(
        'resultId', r.id, 'jobId', r.job_id, 'providerId', r.provider_id, 'region', r.region,
        'createdAt', r.created_at, 'responseLatency', r.response_latency_median,
        'interruptLatency', r.interrupt_latency_median, 'networkResilience', r.network_resilience,
        'naturalness', r.naturalness, 'noiseReduction', r.noise_reduction)::text END`;
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
 * Batches notify(): whatever is queued while one batch is being sent goes out together in
 * the next, so a busy process sends a few NOTIFY transactions a second instead of one per
 * result.
 */
export class Notifier {
  #queued: Notification[] = [];
  #sending: Promise<void> | null = null;

  /** `track` is told of each sending loop, so a shutdown can wait for it. */
  constructor(
    readonly sql: Sql,
    readonly log: Logger,
    readonly track: <T>(p: Promise<T>) => Promise<T> = (p) => p,
  ) {}

  /** Queues notifications; sending failures are logged (the events only feed live streams). */
  send(events: Notification[]): void {
    // With nothing queued the loop below would end before #sending is assigned, leaving it
    // set for good and every later event queued but never sent.
    if (events.length === 0) return;
    this.#queued.push(...events);
    if (this.#sending) return;
    this.#sending = this.track((async () => {
      try {
        while (this.#queued.length > 0) {
          const batch = this.#queued;
          this.#queued = [];
          await notify(this.sql, batch);
        }
      } catch (err) {
        this.log.error("could not send live events", { error: err });
      } finally {
        this.#sending = null;
      }
    })());
  }
}
