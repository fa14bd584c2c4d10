import { sha256 } from "@oslojs/crypto/sha2";
import { encodeBase32LowerCaseNoPadding } from "@oslojs/encoding";
import { batcherPer } from "../batch.ts";
import type { Sql } from "../db.ts";
import { HttpError } from "../errors.ts";
import type { AuthUser } from "../roles.ts";
import { toAuthUser, type UserRow } from "../users.ts";
import { constantTimeEqualText, hashToken, randomToken } from "./tokens.ts";

/**
 * API keys look like `vox_live_<id>_<secret><check>`:
 * - id: 12 characters, public, the row's primary key (lookups go by it);
 * - secret: 32 base32 characters = 160 random bits, stored only as hex(sha256(secret));
 * - check: 6 base32 characters of sha256 over everything before it, so a mistyped or truncated
 *   key is refused without touching the database.
 */
const KEY_PATTERN = /^vox_live_([0-9a-z]{12})_([a-z2-7]{32})([a-z2-7]{6})$/;
const PREFIX = "vox_live_";

export interface ParsedApiKey {
  id: string;
  secret: string;
}

export interface ApiKeyInfo {
  id: string;
  name: string;
  prefix: string;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
  usageCount: number;
  revokedAt: string | null;
  status: "active" | "revoked" | "expired";
}

function checksum(body: string): string {
  return encodeBase32LowerCaseNoPadding(sha256(new TextEncoder().encode(body))).slice(0, 6);
}

/** The raw key for an id and secret, checksum included. */
export function formatApiKey(id: string, secret: string): string {
  const body = `${PREFIX}${id}_${secret}`;
  return body + checksum(body);
}

/** A new key's raw value and its parts. */
export function generateApiKey(): { raw: string; id: string; secret: string } {
  const id = randomToken(8).slice(0, 12);
  const secret = randomToken(20);
  return { raw: formatApiKey(id, secret), id, secret };
}

/**
 * Splits a raw key into id and secret, or says why it is malformed (wrong shape or a
 * checksum that does not match). Pure: no database access.
 */
export function parseApiKey(raw: string): ParsedApiKey | { problem: string } {
  const m = KEY_PATTERN.exec(raw);
  if (!m) return { problem: "API key is malformed: expected vox_live_<id>_<secret>" };
  const [, id, secret, check] = m;
  if (!constantTimeEqualText(checksum(`${PREFIX}${id}_${secret}`), check)) {
    return { problem: "API key is malformed: its checksum does not match (mistyped or truncated?)" };
  }
  return { id, secret };
}

/** Creates a key for `userId`; the raw value is returned here once and never stored. */
export async function createApiKey(
  sql: Sql,
  userId: number,
  input: { name: string; expiresAt?: Date | null },
): Promise<{ key: string; apiKey: ApiKeyInfo }> {
  const { raw, id, secret } = generateApiKey();
  const [row] = await sql<KeyRow[]>`
    INSERT INTO api_keys (id, user_id, name, secret_hash, display_prefix, expires_at)
    VALUES (${id}, ${userId}, ${input.name}, ${hashToken(secret)}, ${PREFIX + id}, ${input.expiresAt ?? null})
    RETURNING ${sql.unsafe(KEY_COLUMNS)}`;
  return { key: raw, apiKey: toInfo(row) };
}

/**
 * The user a raw key belongs to, counting the use. Throws 401 naming the problem for a
 * malformed, unknown, revoked or expired key, or one whose owner cannot sign in.
 */
export async function authenticateApiKey(sql: Sql, raw: string): Promise<AuthUser> {
  const parsed = parseApiKey(raw);
  if ("problem" in parsed) throw new HttpError(401, "invalid_api_key", parsed.problem);
  const [row] = await sql<(UserRow & { secretHash: string; revoked: boolean; expired: boolean })[]>`
    SELECT k.secret_hash, k.revoked_at IS NOT NULL AS revoked,
           (k.expires_at IS NOT NULL AND k.expires_at <= now()) AS expired,
           u.id, u.name, u.username, u.email,
           -- A basic member holding a paid organization seat acts as premium (00006).
           vox_effective_role(u.id, u.role) AS role, u.is_admin, u.organization_id, u.org_role,
           u.activated_at, u.deactivated_at
    FROM api_keys k JOIN users u ON u.id = k.user_id
    WHERE k.id = ${parsed.id}`;
  // Unknown id and wrong secret get the same answer.
  if (!row || !constantTimeEqualText(row.secretHash, hashToken(parsed.secret))) {
    throw new HttpError(401, "invalid_api_key", "API key is not valid");
  }
  if (row.revoked) throw new HttpError(401, "api_key_revoked", "API key has been revoked");
  if (row.expired) throw new HttpError(401, "api_key_expired", "API key has expired");
  if (row.deactivatedAt || !row.activatedAt) {
    throw new HttpError(401, "account_inactive", "The account that owns this API key cannot sign in");
  }
  await countUse(sql, parsed.id);
  return toAuthUser(row, "api_key");
}

/**
 * Counts one use of a key. Uses that arrive while an update is in flight are counted together
 * by the next one (lib/batch.ts), so a busy key costs one update per burst, not per request;
 * each request still waits until its use is written.
 */
const countUse = batcherPer((sql: Sql) => async (ids: string[]) => {
  const counts = Map.groupBy(ids, (id) => id);
  const keys = [...counts.keys()];
  await sql`
    UPDATE api_keys k SET last_used_at = now(), usage_count = k.usage_count + t.n
    FROM unnest(${keys}::text[], ${keys.map((id) => counts.get(id)!.length)}::int[]) AS t(id, n)
    WHERE k.id = t.id`;
  return ids.map(() => undefined);
});

/** The user's keys, newest first, without any secret material. */
export async function listApiKeys(sql: Sql, userId: number): Promise<ApiKeyInfo[]> {
  const rows = await sql<KeyRow[]>`
    SELECT ${sql.unsafe(KEY_COLUMNS)} FROM api_keys WHERE user_id = ${userId} ORDER BY created_at DESC, id`;
  return rows.map(toInfo);
}

/** Revokes one of the user's keys; null when the user has no such key. Idempotent. */
export async function revokeApiKey(sql: Sql, userId: number, id: string): Promise<ApiKeyInfo | null> {
  const [row] = await sql<KeyRow[]>`
    UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
    WHERE id = ${id} AND user_id = ${userId}
    RETURNING ${sql.unsafe(KEY_COLUMNS)}`;
  return row ? toInfo(row) : null;
}

/** Revokes every key of the user that is not revoked yet; returns how many. */
export async function revokeAllApiKeys(sql: Sql, userId: number): Promise<number> {
  const rows =
    await sql`UPDATE api_keys SET revoked_at = now() WHERE user_id = ${userId} AND revoked_at IS NULL`;
  return rows.count;
}

/** Deletes one of the user's keys; false when there was none. */
export async function deleteApiKey(sql: Sql, userId: number, id: string): Promise<boolean> {
  const rows = await sql`DELETE FROM api_keys WHERE id = ${id} AND user_id = ${userId}`;
  return rows.count > 0;
}

const KEY_COLUMNS =
  "id, name, display_prefix, created_at, expires_at, last_used_at, usage_count, revoked_at, " +
  "(expires_at IS NOT NULL AND expires_at <= now()) AS expired";

interface KeyRow {
  id: string;
  name: string;
  displayPrefix: string;
  createdAt: Date;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
  usageCount: number;
  revokedAt: Date | null;
  expired: boolean;
}

function toInfo(r: KeyRow): ApiKeyInfo {
  return {
    id: r.id,
    name: r.name,
    prefix: r.displayPrefix,
    createdAt: r.createdAt.toISOString(),
    expiresAt: r.expiresAt?.toISOString() ?? null,
    lastUsedAt: r.lastUsedAt?.toISOString() ?? null,
    usageCount: r.usageCount,
    revokedAt: r.revokedAt?.toISOString() ?? null,
    status: r.revokedAt ? "revoked" : r.expired ? "expired" : "active",
  };
}
