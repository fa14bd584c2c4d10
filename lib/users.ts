// The users table as the rest of Vox reads it: the row, the caller made from it, the view the
// API shows, and lookups. What people do with their account is in lib/accounts.ts, first-run
// setup in lib/setup.ts, the administrator's actions in lib/admin_users.ts.
import type { Sql } from "./db.ts";
import { HttpError } from "./errors.ts";
import { type AuthUser, isRole, type Role } from "./roles.ts";
import { randomToken } from "./auth/tokens.ts";

/** The columns of a UserRow, for `SELECT ${sql.unsafe(USER_COLUMNS)}` and `RETURNING`. */
export const USER_COLUMNS =
  "id, name, username, email, role, is_admin, organization_id, org_role, activated_at, deactivated_at";

/** A users row, as USER_COLUMNS reads it. */
export interface UserRow extends Omit<AuthUser, "via"> {
  activatedAt: Date | null;
  deactivatedAt: Date | null;
}

/** The AuthUser for a users row. */
export function toAuthUser(row: UserRow, via: AuthUser["via"]): AuthUser {
  return {
    id: row.id,
    name: row.name,
    username: row.username,
    email: row.email,
    role: isRole(row.role) ? row.role : "basic",
    isAdmin: row.isAdmin,
    organizationId: row.organizationId,
    orgRole: row.orgRole,
    via,
  };
}

/** What the API shows about a user (to the user themself and to the admin). */
export interface UserView {
  id: number;
  name: string;
  username: string;
  email: string;
  role: Role;
  isAdmin: boolean;
  organizationId: number | null;
  orgRole: "member" | "admin" | null;
  activated: boolean;
  deactivated: boolean;
  createdAt?: string;
}

/** The public view of a users row. */
export function userView(row: UserRow & { createdAt?: Date }): UserView {
  return {
    id: row.id,
    name: row.name,
    username: row.username,
    email: row.email,
    role: row.role,
    isAdmin: row.isAdmin,
    organizationId: row.organizationId,
    orgRole: row.orgRole,
    activated: row.activatedAt !== null,
    deactivated: row.deactivatedAt !== null,
    ...(row.createdAt ? { createdAt: row.createdAt.toISOString() } : {}),
  };
}

/** One user by id, or null. */
export async function findUserById(sql: Sql, id: number): Promise<(UserRow & { createdAt: Date }) | null> {
  const [row] = await sql<(UserRow & { createdAt: Date })[]>`
    SELECT ${sql.unsafe(USER_COLUMNS)}, created_at FROM users WHERE id = ${id}`;
  return row ?? null;
}

/**
 * The username for a new account: `wanted` when given (409 when taken), else the email's local
 * part, made unique with a random suffix when taken.
 */
export async function freeUsername(sql: Sql, email: string, wanted?: string): Promise<string> {
  if (wanted) {
    const [taken] = await sql`SELECT 1 FROM users WHERE lower(username) = lower(${wanted})`;
    if (taken) throw new HttpError(409, "username_taken", `The username "${wanted}" is already taken`);
    return wanted;
  }
  let base = email.split("@")[0].replace(/[^A-Za-z0-9_.-]/g, "").slice(0, 30);
  if (base.length < 2) base = `user${base}`;
  for (let i = 0; i < 5; i++) {
    const candidate = i === 0 ? base : `${base}-${randomToken(5).slice(0, 5)}`;
    const [taken] = await sql`SELECT 1 FROM users WHERE lower(username) = lower(${candidate})`;
    if (!taken) return candidate;
  }
  return `user-${randomToken(10).slice(0, 12)}`;
}
