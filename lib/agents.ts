import type { Sql } from "./db.ts";

/** What anyone may see about an eval agent (SPEC §6: the agents list is public). */
export interface PublicAgent {
  id: number;
  name: string;
  region: string;
  state: "IDLE" | "OCCUPIED" | "OFFLINE";
  lastSeenAt: string | null;
  lastJobAt: string | null;
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
 * `serverId` through `connectionId`. Of the jobs the database says it holds, those it still
 * runs (`activeJobs`) stay assigned; the others were lost with the previous connection and
 * go back to the queue now rather than after the heartbeat timeout. Announces the new
 * connection so another process still holding an older socket of the agent closes it.
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
): Promise<Registration> {
  return await sql.begin(async (tx) => {
    const [agent] = await tx<{ id: number }[]>`
      INSERT INTO eval_agents (token_id, name, region, state, version, capacity, server_id, connection_id,
                               expires_at, last_seen_at)
      VALUES (${input.tokenId}, ${input.name}, ${input.region}, 'IDLE', ${input.version}, ${input.capacity},
              ${input.serverId}, ${input.connectionId}, ${input.expiresAt}, now())
      ON CONFLICT (token_id, name) DO UPDATE
      SET region = excluded.region, version = excluded.version, capacity = excluded.capacity,
          server_id = excluded.server_id, connection_id = excluded.connection_id,
          expires_at = excluded.expires_at, last_seen_at = now()
      RETURNING id`;
    const held = await tx<{ id: number }[]>`
      SELECT id FROM eval_jobs WHERE agent_id = ${agent.id} AND status = 'running' FOR UPDATE`;
    const active = new Set(input.activeJobs);
    const resumed = held.filter((j) => active.has(j.id)).map((j) => j.id);
    const lost = held.filter((j) => !active.has(j.id)).map((j) => j.id);
    if (resumed.length > 0) {
      await tx`UPDATE eval_jobs SET heartbeat_at = now() WHERE id = ANY(${resumed}::bigint[])`;
    }
    if (lost.length > 0) {
      await tx`
        WITH j AS (
          UPDATE eval_jobs
          SET status = CASE WHEN attempts < max_attempts THEN 'pending' ELSE 'failed' END,
              agent_id = NULL, heartbeat_at = NULL, accepted_at = NULL, started_at = NULL,
              finished_at = CASE WHEN attempts < max_attempts THEN NULL ELSE now() END,
              error = format('agent %s restarted without the job during attempt %s of %s',
                             ${agent.id}::bigint, attempts, max_attempts)
          WHERE id = ANY(${lost}::bigint[])
          RETURNING id, status, region, error)
        SELECT CASE WHEN status = 'pending' THEN pg_notify('vox_jobs', region) END,
          pg_notify('vox_job_events', json_build_object('jobId', id, 'status', status, 'error', error)::text)
        FROM j`;
    }
    await tx`
      UPDATE eval_agents SET state = ${resumed.length > 0 ? "OCCUPIED" : "IDLE"} WHERE id = ${agent.id}`;
    await tx`UPDATE eval_agent_tokens SET last_used_at = now() WHERE id = ${input.tokenId}`;
    await tx`SELECT pg_notify('vox_agents', ${
      JSON.stringify({ agentId: agent.id, connectionId: input.connectionId })
    })`;
    const dropped = input.activeJobs.filter((id) => !resumed.includes(id));
    return { agentId: agent.id, resumed, dropped };
  });
}

/**
 * Marks an agent OFFLINE when its socket closes, unless a newer connection took over.
 * Its running jobs stay assigned until the heartbeat timeout so a reconnect can resume them.
 */
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
  await sql`
    WITH v AS (SELECT * FROM jsonb_to_recordset(${sql.json(rows)}) AS v(id bigint, at timestamptz)),
    a AS (
      UPDATE eval_agents a SET last_seen_at = greatest(a.last_seen_at, v.at)
      FROM v WHERE a.id = v.id
    )
    UPDATE eval_jobs j SET heartbeat_at = greatest(j.heartbeat_at, v.at)
    FROM v WHERE j.agent_id = v.id AND j.status = 'running'`;
}

/** Agents not heard from within the heartbeat timeout are OFFLINE (their server may have died). */
export async function markSilentAgentsOffline(sql: Sql): Promise<number> {
  const rows = await sql`
    UPDATE eval_agents SET state = 'OFFLINE', server_id = NULL
    WHERE state <> 'OFFLINE' AND last_seen_at < now() - make_interval(secs => coalesce(
      (SELECT (value #>> '{}')::float8 FROM system_config WHERE key = 'jobs.heartbeat_timeout_seconds'), 30))
    RETURNING id`;
  return rows.length;
}
