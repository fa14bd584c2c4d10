// Stand-in for the identity module's authenticate (sessions, API keys) while it is built in
// parallel: the caller is the user whose id is in the `x-test-user` header. Swap this for
// real sessions once identity is merged; the routes only read c.var.user.
import type { Context } from "hono";
import type { AppDeps, AppEnv } from "../lib/context.ts";
import type { Sql } from "../lib/db.ts";
import type { AuthUser } from "../lib/guards.ts";
import { createTestApp } from "./_app.ts";

/** An authenticate() that resolves `x-test-user: <id>` to that user (null without the header). */
export function fakeAuthenticate(sql: Sql) {
  return async (c: Context<AppEnv>): Promise<AuthUser | null> => {
    const id = Number(c.req.header("x-test-user"));
    if (!Number.isSafeInteger(id) || id <= 0) return null;
    const [u] = await sql`
      SELECT id, name, username, email, role, is_admin, organization_id, org_role
      FROM users WHERE id = ${id} AND deactivated_at IS NULL`;
    if (!u) return null;
    return {
      id: u.id,
      name: u.name,
      username: u.username,
      email: u.email,
      role: u.role,
      isAdmin: u.isAdmin,
      organizationId: u.organizationId,
      orgRole: u.orgRole,
      via: "api_key",
    };
  };
}

/** createTestApp() with the fake authenticate. */
export function createFakeAuthApp(sql: Sql, overrides: Partial<AppDeps> = {}) {
  return createTestApp(sql, { authenticate: fakeAuthenticate(sql), ...overrides });
}

/** Headers that make a request come from `userId`. */
export function as(userId: number, extra: Record<string, string> = {}): Record<string, string> {
  return { "x-test-user": String(userId), ...extra };
}
