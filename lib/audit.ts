import type { Sql } from "./db.ts";

/** Security-relevant actions Vox records (never with a secret in them). */
export type AuditAction =
  | "setup.completed"
  | "auth.login.succeeded"
  | "auth.login.failed"
  | "auth.login.locked"
  | "auth.logout"
  | "auth.oauth.linked"
  | "auth.oauth.signup"
  | "auth.oauth.succeeded"
  | "user.signup"
  | "user.activated"
  | "user.activation_reissued"
  | "user.password_changed"
  | "user.role_changed"
  | "user.deactivated"
  | "user.reactivated"
  | "setting.changed"
  | "api_key.created"
  | "api_key.revoked"
  | "api_key.deleted"
  | "organization.created"
  | "organization.updated"
  | "organization.verified"
  | "organization.unverified"
  | "organization.member_invited"
  | "organization.invite_revoked"
  | "organization.member_joined"
  | "organization.member_removed"
  | "organization.member_left"
  | "organization.role_changed"
  | "pricing.changed"
  | "billing.plan_changed"
  | "billing.seats_changed"
  | "billing.subscription_cancelled"
  | "fund_return.requested"
  | "fund_return.approved"
  | "fund_return.rejected"
  | "board.excluded"
  | "board.restored"
  | "provider.curated"
  | "plan_limits.changed"
  | "session.ended";

export interface AuditEntry {
  action: AuditAction;
  actorUserId?: number | null;
  targetType?: string;
  targetId?: string | number;
  ip?: string;
  /** Plain facts (ids, roles, reasons). Callers must not put secrets or typed input here. */
  details?: Record<string, string | number | boolean | null>;
}

/** Appends one entry to audit_log. */
export async function recordAudit(sql: Sql, entry: AuditEntry): Promise<void> {
  await sql`
    INSERT INTO audit_log (actor_user_id, action, target_type, target_id, ip, details)
    VALUES (
      ${entry.actorUserId ?? null}, ${entry.action}, ${entry.targetType ?? null},
      ${entry.targetId === undefined ? null : String(entry.targetId)}, ${entry.ip ?? null},
      ${sql.json(entry.details ?? {})}
    )`;
}

export interface AuditRow {
  id: number;
  at: string;
  actorUserId: number | null;
  action: string;
  targetType: string | null;
  targetId: string | null;
  ip: string | null;
  details: Record<string, unknown>;
}

/** Most recent entries first, optionally for one action prefix (e.g. "auth."). */
export async function listAudit(
  sql: Sql,
  opts: { limit?: number; actionPrefix?: string } = {},
): Promise<AuditRow[]> {
  const rows = await sql<(Omit<AuditRow, "at"> & { at: Date })[]>`
    SELECT id, at, actor_user_id, action, target_type, target_id, ip, details
    FROM audit_log
    WHERE ${opts.actionPrefix ? sql`action LIKE ${opts.actionPrefix + "%"}` : sql`true`}
    ORDER BY at DESC, id DESC
    LIMIT ${Math.min(Math.max(opts.limit ?? 100, 1), 500)}`;
  return rows.map((r) => ({ ...r, at: r.at.toISOString() }));
}
