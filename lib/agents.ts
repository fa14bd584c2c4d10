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
