import type { Context } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { recordAudit } from "../audit.ts";
import type { Config } from "../config.ts";
import type { AppEnv, ResolvedDeps } from "../context.ts";
import type { Sql } from "../db.ts";
import type { AuthUser } from "../roles.ts";
import { toAuthUser, type UserRow } from "../users.ts";
import { clientIp, isHttps } from "./client.ts";
import { rememberDevice } from "./devices.ts";
import { parseSetting, readSetting, storedSettingSql } from "../settings.ts";
import { hashToken, randomToken } from "./tokens.ts";

/** Cookie name over plain http (local installs). */
export const SESSION_COOKIE = "vox_session";
/** Over https the __Host- prefix pins the cookie to this host, path / and Secure. */
export const SECURE_SESSION_COOKIE = "__Host-vox_session";

// Sliding expiry writes at most once a minute per session, not on every request.
const TOUCH_AFTER_SECONDS = 60;

export interface NewSession {
  /** The raw token: goes into the cookie and nowhere else. */
  token: string;
  expiresAt: Date;
}

/**
 * Starts a session: a fresh 160-bit token of which only hex(sha256) is stored, with idle and
 * absolute expiry from system_config. A login always gets a new token, so a token planted
 * before sign-in (session fixation) is never promoted.
 */
export async function createSession(
  sql: Sql,
  userId: number,
  meta: { ip?: string; userAgent?: string } = {},
): Promise<NewSession> {
  const idle = await readSetting(sql, "auth.session_idle_seconds");
  const absolute = await readSetting(sql, "auth.session_absolute_seconds");
  const token = randomToken(20);
  const [row] = await sql<{ absoluteExpiresAt: Date }[]>`
    INSERT INTO sessions (id, user_id, idle_expires_at, absolute_expires_at, ip, user_agent)
    VALUES (
      ${hashToken(token)}, ${userId},
      now() + make_interval(secs => ${Math.min(idle, absolute)}),
      now() + make_interval(secs => ${absolute}),
      ${meta.ip ?? null}, ${meta.userAgent?.slice(0, 300) ?? null}
    )
    RETURNING absolute_expires_at`;
  return { token, expiresAt: row.absoluteExpiresAt };
}

/**
 * The user behind a session token, or null when the token is unknown, idle or past its
 * absolute lifetime, or its user is deactivated or not activated (such sessions are deleted).
 * A valid session's idle expiry slides forward, never past the absolute expiry.
 */
export async function validateSession(
  sql: Sql,
  token: string,
): Promise<{ user: AuthUser; sessionId: string } | null> {
  if (!/^[a-z2-7]{32}$/.test(token)) return null;
  const id = hashToken(token);
  const [row] = await sql<(UserRow & { live: boolean; stale: boolean; idleSeconds: unknown })[]>`
    SELECT u.id, u.name, u.username, u.email,
           -- A basic member holding a paid organization seat acts as premium (00006).
           vox_effective_role(u.id, u.role) AS role, u.is_admin, u.organization_id, u.org_role,
           u.activated_at, u.deactivated_at,
           (s.idle_expires_at > now() AND s.absolute_expires_at > now()) AS live,
           s.last_seen_at < now() - make_interval(secs => ${TOUCH_AFTER_SECONDS}) AS stale,
           ${storedSettingSql(sql, "auth.session_idle_seconds")} AS idle_seconds
    FROM sessions s JOIN users u ON u.id = s.user_id
    WHERE s.id = ${id}`;
  if (!row) return null;
  if (!row.live || !row.activatedAt || row.deactivatedAt) {
    await sql`DELETE FROM sessions WHERE id = ${id}`;
    return null;
  }
  if (row.stale) {
    const idle = parseSetting("auth.session_idle_seconds", row.idleSeconds);
    await sql`
      UPDATE sessions
      SET last_seen_at = now(),
          idle_expires_at = least(now() + make_interval(secs => ${idle}), absolute_expires_at)
      WHERE id = ${id}`;
  }
  return { user: toAuthUser(row, "session"), sessionId: id };
}

/** Ends one session by its raw token. */
export async function invalidateSession(sql: Sql, token: string): Promise<void> {
  await sql`DELETE FROM sessions WHERE id = ${hashToken(token)}`;
}

/** Ends every session of a user (password change, deactivation); returns how many. */
export async function invalidateUserSessions(sql: Sql, userId: number): Promise<number> {
  const rows = await sql`DELETE FROM sessions WHERE user_id = ${userId}`;
  return rows.count;
}

/** Deletes sessions past their idle or absolute expiry. */
export async function pruneSessions(sql: Sql): Promise<number> {
  const rows = await sql`DELETE FROM sessions WHERE idle_expires_at <= now() OR absolute_expires_at <= now()`;
  return rows.count;
}

/**
 * The raw session token the request carries, if any. Over https only the `__Host-` cookie
 * counts: a plain `vox_session` can be planted by a sibling subdomain or over http (cookie
 * tossing), a `__Host-` one only by this host over https.
 */
export function readSessionCookie(c: Context, config: Config): string | undefined {
  if (isHttps(c, config)) return getCookie(c, SECURE_SESSION_COOKIE);
  return getCookie(c, SECURE_SESSION_COOKIE) ?? getCookie(c, SESSION_COOKIE);
}

/** Sets the session cookie: HttpOnly, SameSite=Lax, Secure (and __Host-) behind https. */
export function setSessionCookie(c: Context, config: Config, session: NewSession): void {
  const secure = isHttps(c, config);
  setCookie(c, secure ? SECURE_SESSION_COOKIE : SESSION_COOKIE, session.token, {
    path: "/",
    httpOnly: true,
    sameSite: "Lax",
    secure,
    expires: session.expiresAt,
  });
}

/** Removes the session cookie under either name. */
export function clearSessionCookie(c: Context, config: Config): void {
  if (getCookie(c, SESSION_COOKIE) !== undefined) deleteCookie(c, SESSION_COOKIE, { path: "/" });
  if (getCookie(c, SECURE_SESSION_COOKIE) !== undefined || isHttps(c, config)) {
    deleteCookie(c, SECURE_SESSION_COOKIE, { path: "/", secure: true });
  }
}

/**
 * Starts a session for `user` after a successful sign-in (API or page), replacing any session
 * the browser had, sets its cookie and marks the browser a known device of the user.
 */
export async function startSession(c: Context<AppEnv>, deps: ResolvedDeps, user: AuthUser): Promise<void> {
  const previous = readSessionCookie(c, deps.config);
  if (previous) await invalidateSession(deps.sql, previous);
  const session = await createSession(deps.sql, user.id, {
    ip: clientIp(c, deps.config),
    userAgent: c.req.header("user-agent"),
  });
  setSessionCookie(c, deps.config, session);
  await rememberDevice(c, deps.config, deps.secretKey, user.id);
}

/** Ends the browser's session, if any, clears its cookie and records the logout. */
export async function endSession(c: Context<AppEnv>, deps: ResolvedDeps): Promise<void> {
  const token = readSessionCookie(c, deps.config);
  if (token) await invalidateSession(deps.sql, token);
  clearSessionCookie(c, deps.config);
  const user = c.var.user;
  if (user) {
    await recordAudit(deps.sql, {
      action: "auth.logout",
      actorUserId: user.id,
      targetType: "user",
      targetId: user.id,
      ip: clientIp(c, deps.config),
    });
  }
}
