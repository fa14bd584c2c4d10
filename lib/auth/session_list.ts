// A user's signed-in browsers as the account page lists them, and ending one of them. A session
// is named by a handle (the first 16 hex digits of its id, itself a hash of the cookie's token),
// so nothing that could sign anyone in is shown or sent back.
import { recordAudit } from "../audit.ts";
import type { Sql } from "../db.ts";
import { hashToken } from "./tokens.ts";

export interface SessionView {
  /** 16 hex digits naming the session (not a credential). */
  id: string;
  createdAt: string;
  lastSeenAt: string;
  expiresAt: string;
  ip: string | null;
  userAgent: string | null;
  /** The session of the request that asked. */
  current: boolean;
}

/** The handle of the session whose cookie holds `token`. */
export const sessionHandle = (token: string): string => hashToken(token).slice(0, 16);

/** The user's live sessions, most recently used first. */
export async function listSessions(
  sql: Sql,
  userId: number,
  currentHandle: string | null,
): Promise<SessionView[]> {
  const rows = await sql`
    SELECT left(id, 16) AS handle, created_at, last_seen_at, least(idle_expires_at, absolute_expires_at) AS expires_at,
           ip, user_agent
    FROM sessions
    WHERE user_id = ${userId} AND idle_expires_at > now() AND absolute_expires_at > now()
    ORDER BY last_seen_at DESC, created_at DESC`;
  const iso = (v: unknown) => new Date(v as string).toISOString();
  return rows.map((r) => ({
    id: r.handle as string,
    createdAt: iso(r.createdAt),
    lastSeenAt: iso(r.lastSeenAt),
    expiresAt: iso(r.expiresAt),
    ip: (r.ip as string | null) ?? null,
    userAgent: (r.userAgent as string | null) ?? null,
    current: r.handle === currentHandle,
  }));
}

/** Ends sessions of the user: one by handle, or every one but `keepHandle`; how many ended. */
export async function endSessions(
  sql: Sql,
  userId: number,
  which: { handle: string } | { allBut: string | null },
  by: { ip?: string },
): Promise<number> {
  const rows = "handle" in which
    ? await sql`DELETE FROM sessions WHERE user_id = ${userId} AND left(id, 16) = ${which.handle} RETURNING 1`
    : await sql`
      DELETE FROM sessions WHERE user_id = ${userId}
        AND (${which.allBut}::text IS NULL OR left(id, 16) <> ${which.allBut}) RETURNING 1`;
  if (rows.length) {
    await recordAudit(sql, {
      action: "session.ended",
      actorUserId: userId,
      targetType: "user",
      targetId: userId,
      ip: by.ip,
      details: { sessions: rows.length, which: "handle" in which ? which.handle : "all others" },
    });
  }
  return rows.length;
}
