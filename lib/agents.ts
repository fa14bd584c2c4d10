import type { Sql } from "./db.ts";
import type { JobStatus } from "./job_status.ts";
import { AGENTS_CHANNEL, jobEventNotification, JOBS_CHANNEL, type Notification } from "./notify.ts";
import { settingSql } from "./settings.ts";

/** What anyone may see about an eval agent (SPEC §6: the agents list is public). */
export interface PublicAgent {
  id: number;
  name: string;
  region: string;
  state: "IDLE" | "OCCUPIED" | "OFFLINE";
  lastSeenAt: string | null;
  lastJobAt: string | null;
}

/** What the admin sees of an agent: the public fields and the jobs it is running now. */
export interface AdminAgent extends PublicAgent {
  currentJobs: { id: number; workflowName: string; startedAt: string | null }[];
}

/** The agents (as listPublicAgents) with the jobs each is running. */
export async function listAgentsWithJobs(sql: Sql): Promise<AdminAgent[]> {
  const [agents, running] = await Promise.all([
    listPublicAgents(sql),
    sql<{ id: number; agentId: number; workflowName: string; startedAt: unknown }[]>`
      SELECT j.id, j.agent_id, w.name AS workflow_name, j.started_at
      FROM eval_jobs j JOIN workflows w ON w.id = j.workflow_id
      WHERE j.status = 'running' AND j.agent_id IS NOT NULL
      ORDER BY j.started_at, j.id`,
  ]);
  return agents.map((a) => ({
    ...a,
    currentJobs: running.filter((j) => Number(j.agentId) === a.id).map((j) => ({
      id: Number(j.id),
      workflowName: j.workflowName,
      startedAt: toIso(j.startedAt),
    })),
  }));
}

/** Lists agents that are not expired, busiest regions first; no token data. */
export async function listPublicAgents(sql: Sql): Promise<PublicAgent[]> {
  const rows = await sql<PublicAgent[]>`
    SELECT id, name, region, state, last_seen_at, last_job_at
    FROM eval_agents
    WHERE expires_at IS NULL OR expires_at > now()
    ORDER BY region, state, last_seen_at DESC NULLS LAST, id`;
  return rows.map((r) => ({
    ...r,
    lastSeenAt: toIso(r.lastSeenAt),
    lastJobAt: toIso(r.lastJobAt),
  }));
}

function toIso(v: unknown): string | null {
  return v instanceof Date ? v.toISOString() : (v as string | null);
}

/** What registerAgent() settled for a (re)connecting agent. */
export interface Registration {
  agentId: number;
  /** Jobs the agent reported that are still its own. */
  resumed: number[];
  /** Jobs the agent reported that are no longer its own. */
  dropped: number[];
}

/**
 * Records a connecting agent (one row per token and name, reused on reconnect) as held by
 * `serverId` through `connectionId`, in one statement. Of the jobs the database says it
 * holds, those it still runs (`activeJobs`) stay assigned; the others were lost with the
 * previous connection and go back to the queue now rather than after the heartbeat timeout.
 *
 * One statement and no NOTIFY (the caller sends `notifications` after the commit) because
 * reconnect storms are the hot path: 10,000 agents reconnecting after a restart would
 * otherwise queue behind each other's commits (notifying commits are serialised) and on the
 * token row (last_used_at is refreshed at most once a minute for the same reason).
 */
export async function registerAgent(
  sql: Sql,
  input: {
    tokenId: number;
    name: string;
    region: string;
    version: string;
    capacity: number;
    serverId: string;
    connectionId: string;
    expiresAt: Date | null;
    activeJobs: number[];
  },
): Promise<Registration & { notifications: Notification[] }> {
  const active = input.activeJobs;
  const [row] = await sql`
    WITH a AS (
      INSERT INTO eval_agents AS t (token_id, name, region, state, version, capacity, server_id, connection_id,
                                    expires_at, last_seen_at)
      VALUES (${input.tokenId}, ${input.name}, ${input.region}, 'IDLE', ${input.version}, ${input.capacity},
              ${input.serverId}, ${input.connectionId}, ${input.expiresAt}, now())
      ON CONFLICT (token_id, name) DO UPDATE
      SET region = excluded.region, version = excluded.version, capacity = excluded.capacity,
          server_id = excluded.server_id, connection_id = excluded.connection_id,
          expires_at = excluded.expires_at, last_seen_at = now(),
          state = CASE WHEN EXISTS (
            SELECT 1 FROM eval_jobs j WHERE j.agent_id = t.id AND j.status = 'running'
              AND j.id = ANY(${active}::bigint[])) THEN 'OCCUPIED' ELSE 'IDLE' END
      RETURNING id
    ), resumed AS (
      UPDATE eval_jobs j SET heartbeat_at = now()
      FROM a WHERE j.agent_id = a.id AND j.status = 'running' AND j.id = ANY(${active}::bigint[])
      RETURNING j.id
    ), lost AS (
      UPDATE eval_jobs j
      SET status = CASE WHEN j.attempts < j.max_attempts THEN 'pending' ELSE 'failed' END,
          agent_id = NULL, heartbeat_at = NULL, accepted_at = NULL, started_at = NULL,
          finished_at = CASE WHEN j.attempts < j.max_attempts THEN NULL ELSE now() END,
          error = format('agent %s restarted without the job during attempt %s of %s',
                         a.id, j.attempts, j.max_attempts)
      FROM a WHERE j.agent_id = a.id AND j.status = 'running' AND NOT (j.id = ANY(${active}::bigint[]))
      RETURNING j.id, j.status, j.region, j.error
    ), tok AS (
      UPDATE eval_agent_tokens SET last_used_at = now()
      WHERE id = ${input.tokenId} AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')
    )
    SELECT (SELECT id FROM a) AS agent_id,
           coalesce((SELECT array_agg(id ORDER BY id) FROM resumed), '{}') AS resumed,
           coalesce((SELECT json_agg(lost) FROM lost), '[]') AS lost`;
  const resumed = (row.resumed as number[]).map(Number);
  const lost = row.lost as { id: number; status: JobStatus; region: string; error: string }[];
  const notifications: Notification[] = [
    {
      channel: AGENTS_CHANNEL,
      payload: JSON.stringify({ agentId: row.agentId, connectionId: input.connectionId }),
    },
    ...lost.flatMap((j) => [
      ...(j.status === "pending" ? [{ channel: JOBS_CHANNEL, payload: j.region }] : []),
      jobEventNotification({ jobId: j.id, status: j.status, error: j.error }),
    ]),
  ];
  return {
    agentId: row.agentId,
    resumed,
    dropped: active.filter((id) => !resumed.includes(id)),
    notifications,
  };
}

/**
 * Marks an agent OFFLINE when its socket closes, unless a newer connection took over.
 * Its running jobs stay assigned until the heartbeat timeout so a reconnect can resume them.
 */
/**
 * The connection an agent's row names now: the last registration that committed. A
 * "registered" notification can arrive after a newer registration of the same agent
 * (notifications are delivered later than the upsert commits), so a socket is closed as
 * replaced only when the row names another connection.
 */
export async function currentConnectionId(sql: Sql, agentId: number): Promise<string | null> {
  const [row] = await sql`SELECT connection_id FROM eval_agents WHERE id = ${agentId}`;
  return (row?.connectionId as string | null | undefined) ?? null;
}

export async function markAgentDisconnected(sql: Sql, agentId: number, connectionId: string): Promise<void> {
  await sql`
    UPDATE eval_agents SET state = 'OFFLINE', server_id = NULL, last_seen_at = now()
    WHERE id = ${agentId} AND connection_id = ${connectionId}`;
}

/** Marks every agent this server process held OFFLINE (on shutdown). */
export async function markServerAgentsOffline(sql: Sql, serverId: string): Promise<void> {
  await sql`UPDATE eval_agents SET state = 'OFFLINE', server_id = NULL WHERE server_id = ${serverId}`;
}

/**
 * Writes the last-seen times of many agents in one statement, and extends the heartbeat of
 * the jobs they run. The gateway batches heartbeats into one call per interval instead of
 * one UPDATE per heartbeat (10,000 agents every 10 s would be 1,000 statements a second).
 */
export async function flushLastSeen(sql: Sql, seen: { id: number; at: Date }[]): Promise<void> {
  if (seen.length === 0) return;
  const rows = seen.map((s) => ({ id: s.id, at: s.at.toISOString() }));
  // Two statements, each taking its row locks in id order (SKIP LOCKED for jobs: a job
  // being completed right now needs no heartbeat). Holding agent rows while waiting for
  // job rows, in whatever order a join yields, could deadlock with a result being stored
  // (job row, then agent row).
  await sql`
    UPDATE eval_agents a SET last_seen_at = greatest(a.last_seen_at, v.at)
    FROM jsonb_to_recordset(${sql.json(rows)}) AS v(id bigint, at timestamptz)
    WHERE a.id = v.id AND a.id IN (
      SELECT id FROM eval_agents WHERE id = ANY(${seen.map((s) => s.id)}::bigint[]) ORDER BY id FOR UPDATE)`;
  await sql`
    UPDATE eval_jobs j SET heartbeat_at = greatest(j.heartbeat_at, v.at)
    FROM (
      SELECT x.id, v.at FROM jsonb_to_recordset(${sql.json(rows)}) AS v(id bigint, at timestamptz)
      JOIN LATERAL (
        SELECT id FROM eval_jobs WHERE agent_id = v.id AND status = 'running' ORDER BY id FOR UPDATE SKIP LOCKED
      ) x ON true
    ) v
    WHERE j.id = v.id`;
}

/** Agents not heard from within the heartbeat timeout are OFFLINE (their server may have died). */
export async function markSilentAgentsOffline(sql: Sql): Promise<number> {
  const rows = await sql`
    UPDATE eval_agents SET state = 'OFFLINE', server_id = NULL
    WHERE state <> 'OFFLINE'
      AND last_seen_at < now() - make_interval(secs => ${settingSql(sql, "jobs.heartbeat_timeout_seconds")})
    RETURNING id`;
  return rows.length;
}
