import { AGENT_TOKEN_PATTERN } from "../agent/protocol.ts";
import { hashToken } from "./auth/tokens.ts";
import type { Sql } from "./db.ts";
import { AGENT_TOKENS_CHANNEL } from "./notify.ts";

/** An eval agent token as the admin sees it; never the secret or its hash. */
export interface AgentTokenInfo {
  id: number;
  name: string;
  region: string;
  displayPrefix: string;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
  agents: number;
}

/** A token row as the gateway needs it to admit a connection. */
export interface AgentTokenAuth {
  id: number;
  region: string;
  expiresAt: Date | null;
}

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** `vox_agent_` + 40 characters from 62 (≈ 238 bits), drawn without modulo bias. */
export function generateAgentToken(): string {
  let out = "";
  while (out.length < 40) {
    for (const b of crypto.getRandomValues(new Uint8Array(64))) {
      if (b < 248 && out.length < 40) out += ALPHABET[b % 62];
    }
  }
  return `vox_agent_${out}`;
}

/**
 * Creates a token for `region`; returns the raw value, which exists only in this return
 * value (the database keeps its SHA-256).
 */
export async function createAgentToken(
  sql: Sql,
  input: { name: string; region: string; expiresAt?: Date | null; createdBy?: number | null },
): Promise<{ token: string; info: AgentTokenInfo }> {
  const token = generateAgentToken();
  const hash = await hashToken(token);
  const prefix = token.slice(0, "vox_agent_".length + 6);
  const [row] = await sql<{ id: number }[]>`
    INSERT INTO eval_agent_tokens (name, region, token_hash, display_prefix, created_by, expires_at)
    VALUES (${input.name}, ${input.region}, ${hash}, ${prefix}, ${input.createdBy ?? null},
            ${input.expiresAt ?? null})
    RETURNING id`;
  const info = (await listAgentTokens(sql, row.id))[0];
  return { token, info };
}

/** Every token (or one), newest first, with how many agents registered with it. */
export async function listAgentTokens(sql: Sql, id?: number): Promise<AgentTokenInfo[]> {
  const rows = await sql`
    SELECT t.id, t.name, t.region, t.display_prefix, t.created_at, t.expires_at, t.revoked_at,
           t.last_used_at, (SELECT count(*) FROM eval_agents a WHERE a.token_id = t.id)::int AS agents
    FROM eval_agent_tokens t
    WHERE ${id === undefined ? sql`true` : sql`t.id = ${id}`}
    ORDER BY t.id DESC`;
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    region: r.region,
    displayPrefix: r.displayPrefix,
    createdAt: iso(r.createdAt)!,
    expiresAt: iso(r.expiresAt),
    revokedAt: iso(r.revokedAt),
    lastUsedAt: iso(r.lastUsedAt),
    agents: r.agents,
  }));
}

/**
 * Revokes a token and tells every server process (NOTIFY, same transaction) to close the
 * sockets that use it. Returns false when there is no such token; revoking twice is a no-op.
 */
export async function revokeAgentToken(sql: Sql, id: number): Promise<boolean> {
  return await sql.begin(async (tx) => {
    const rows = await tx`
      UPDATE eval_agent_tokens SET revoked_at = coalesce(revoked_at, now())
      WHERE id = ${id} RETURNING id`;
    if (rows.length === 0) return false;
    await tx`UPDATE eval_agents SET state = 'OFFLINE' WHERE token_id = ${id}`;
    await tx`SELECT pg_notify(${AGENT_TOKENS_CHANNEL}, ${String(id)})`;
    return true;
  });
}

/** Why a token was refused, or the token. Never throws for bad input. */
export type TokenCheck =
  | { ok: true; token: AgentTokenAuth }
  | { ok: false; reason: "malformed" | "unknown" | "revoked" | "expired" };

/** Looks a raw token up by its hash; a lookup by SHA-256 leaks nothing about the secret through timing. */
export async function verifyAgentToken(sql: Sql, raw: string | null | undefined): Promise<TokenCheck> {
  if (!raw || !AGENT_TOKEN_PATTERN.test(raw)) return { ok: false, reason: "malformed" };
  const hash = await hashToken(raw);
  const [row] = await sql`
    SELECT id, region, expires_at, revoked_at FROM eval_agent_tokens WHERE token_hash = ${hash}`;
  if (!row) return { ok: false, reason: "unknown" };
  if (row.revokedAt) return { ok: false, reason: "revoked" };
  if (row.expiresAt && (row.expiresAt as Date).getTime() <= Date.now()) {
    return { ok: false, reason: "expired" };
  }
  return { ok: true, token: { id: row.id, region: row.region, expiresAt: row.expiresAt } };
}

function iso(v: unknown): string | null {
  return v instanceof Date ? v.toISOString() : (v as string | null) ?? null;
}
