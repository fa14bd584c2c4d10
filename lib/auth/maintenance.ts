import type { Sql } from "../db.ts";
import { pruneRateLimits } from "./rate_limit.ts";
import { pruneSessions } from "./sessions.ts";

/**
 * Deletes what identity no longer needs: expired sessions, rate-limit windows older than a day,
 * and activation tokens used or expired more than a week ago (kept that long so a late click
 * still says "already used" rather than "not valid"). Safe to run from every process at once.
 */
export async function pruneIdentity(
  sql: Sql,
): Promise<{ sessions: number; rateLimits: number; tokens: number }> {
  const sessions = await pruneSessions(sql);
  const rateLimits = await pruneRateLimits(sql);
  const tokens = await sql`
    DELETE FROM activation_tokens
    WHERE coalesce(used_at, expires_at) < now() - interval '7 days'`;
  return { sessions, rateLimits, tokens: tokens.count };
}
