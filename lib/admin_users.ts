// The administrator's actions on accounts: listing, role changes, deactivation and
// reactivation, fresh activation links. Each change is written to the audit log (lib/audit.ts).
import { type ActionContext, activationUrl, issueActivationToken } from "./accounts.ts";
import { recordAudit } from "./audit.ts";
import type { Sql } from "./db.ts";
import { HttpError } from "./errors.ts";
import { type AuthUser, isRole, type Role, ROLES } from "./roles.ts";
import { findUserById, USER_COLUMNS, type UserRow, type UserView, userView } from "./users.ts";
import { invalidateUserSessions } from "./auth/sessions.ts";

/** Admin: users, newest first, optionally filtered by a search over email, username and name. */
export async function listUsers(
  sql: Sql,
  opts: { search?: string; limit?: number; offset?: number } = {},
): Promise<{ users: UserView[]; total: number }> {
  const pattern = opts.search ? `%${opts.search.replace(/[\\%_]/g, (m) => "\\" + m)}%` : null;
  const where = pattern
    ? sql`WHERE email ILIKE ${pattern} OR username ILIKE ${pattern} OR name ILIKE ${pattern}`
    : sql``;
  const rows = await sql<(UserRow & { createdAt: Date })[]>`
    SELECT ${sql.unsafe(USER_COLUMNS)}, created_at FROM users ${where}
    ORDER BY id DESC LIMIT ${opts.limit ?? 50} OFFSET ${opts.offset ?? 0}`;
  const [{ count }] = await sql<{ count: number }[]>`SELECT count(*)::int AS count FROM users ${where}`;
  return { users: rows.map(userView), total: count };
}

/** Admin: sets a user's role (e.g. grants `fellow`). */
export async function changeRole(
  ctx: ActionContext,
  actor: AuthUser,
  userId: number,
  role: Role,
): Promise<UserView> {
  if (!isRole(role)) throw new HttpError(400, "bad_role", `Role must be one of ${ROLES.join(", ")}`);
  const before = await findUserById(ctx.sql, userId);
  if (!before) throw new HttpError(404, "user_not_found", `No user with id ${userId}`);
  const [row] = await ctx.sql<(UserRow & { createdAt: Date })[]>`
    UPDATE users SET role = ${role}, updated_at = now() WHERE id = ${userId}
    RETURNING ${ctx.sql.unsafe(USER_COLUMNS)}, created_at`;
  if (before.role !== role) {
    await recordAudit(ctx.sql, {
      action: "user.role_changed",
      actorUserId: actor.id,
      targetType: "user",
      targetId: userId,
      ip: ctx.ip,
      details: { from: before.role, to: role },
    });
  }
  return userView(row);
}

/** Admin: deactivates a user (ends their sessions; their API keys stop working) or reactivates them. */
export async function setDeactivated(
  ctx: ActionContext,
  actor: AuthUser,
  userId: number,
  deactivated: boolean,
): Promise<UserView> {
  if (deactivated && userId === actor.id) {
    throw new HttpError(
      409,
      "cannot_deactivate_self",
      "The administrator cannot deactivate their own account",
    );
  }
  const [row] = await ctx.sql<(UserRow & { createdAt: Date })[]>`
    UPDATE users
    SET deactivated_at = CASE WHEN ${deactivated} THEN coalesce(deactivated_at, now()) ELSE NULL END,
        updated_at = now()
    WHERE id = ${userId}
    RETURNING ${ctx.sql.unsafe(USER_COLUMNS)}, created_at`;
  if (!row) throw new HttpError(404, "user_not_found", `No user with id ${userId}`);
  if (deactivated) await invalidateUserSessions(ctx.sql, userId);
  await recordAudit(ctx.sql, {
    action: deactivated ? "user.deactivated" : "user.reactivated",
    actorUserId: actor.id,
    targetType: "user",
    targetId: userId,
    ip: ctx.ip,
  });
  return userView(row);
}

/**
 * Admin: a fresh activation link for a user who has not activated yet (the Scout's link was
 * lost, a mail never arrived). Older links stop working. The link is returned once, not mailed.
 */
export async function reissueActivation(
  ctx: ActionContext,
  actor: AuthUser,
  userId: number,
): Promise<string> {
  const token = await ctx.sql.begin(async (tx) => {
    const sql = tx as unknown as Sql;
    const [row] = await sql<
      { activatedAt: Date | null }[]
    >`SELECT activated_at FROM users WHERE id = ${userId} FOR UPDATE`;
    if (!row) throw new HttpError(404, "user_not_found", `No user with id ${userId}`);
    if (row.activatedAt) throw new HttpError(409, "already_active", "This account is already activated");
    return await issueActivationToken(sql, userId);
  });
  await recordAudit(ctx.sql, {
    action: "user.activation_reissued",
    actorUserId: actor.id,
    targetType: "user",
    targetId: userId,
    ip: ctx.ip,
  });
  return activationUrl(ctx.config, token);
}
