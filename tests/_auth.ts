// Identity helpers for tests of any area: users, sessions, API keys and requests made as them.
import { createApiKey } from "../lib/auth/api_keys.ts";
import { hashPassword } from "../lib/auth/passwords.ts";
import { createSession, SESSION_COOKIE } from "../lib/auth/sessions.ts";
import type { Sql } from "../lib/db.ts";
import type { AuthUser, Role } from "../lib/roles.ts";
import { memoryMailer } from "../lib/mailer.ts";
import { createDefaultProject } from "../lib/projects_default.ts";
import { toAuthUser, type UserRow } from "../lib/users.ts";

export { memoryMailer };

let counter = 0;

export interface TestUser {
  id: number;
  email: string;
  username: string;
  /** The raw password, when the user has one. */
  password: string | null;
  user: AuthUser;
  defaultProjectId: number;
}

export interface TestUserOptions {
  role?: Role;
  isAdmin?: boolean;
  /** An organization to be a member of, with `orgRole` (default "member"). */
  organizationId?: number | null;
  orgRole?: string | null;
  email?: string;
  username?: string;
  name?: string;
  /** A password to hash and store (Argon2id costs ~50 ms); none by default. */
  password?: string;
  /** Default true. */
  activated?: boolean;
  deactivated?: boolean;
}

/** Inserts a user (active, `basic`, with a Default project unless told otherwise). */
export async function createUser(sql: Sql, opts: TestUserOptions = {}): Promise<TestUser> {
  const n = `${Date.now().toString(36)}${++counter}`;
  const username = opts.username ?? `user_${n}`;
  const email = opts.email ?? `${username}@example.test`;
  const hash = opts.password ? await hashPassword(opts.password) : null;
  const organizationId = opts.organizationId ?? null;
  const orgRole = organizationId === null ? null : opts.orgRole ?? "member";
  const [row] = await sql<UserRow[]>`
    INSERT INTO users (name, username, email, role, is_admin, organization_id, org_role, password_hash,
                       activated_at, deactivated_at)
    VALUES (${opts.name ?? username}, ${username}, ${email}, ${opts.role ?? "basic"}, ${
    opts.isAdmin ?? false
  },
            ${organizationId}, ${orgRole}, ${hash}, ${opts.activated === false ? null : new Date()},
            ${opts.deactivated ? new Date() : null})
    RETURNING id, name, username, email, role, is_admin, organization_id, org_role, activated_at, deactivated_at`;
  const defaultProjectId = await createDefaultProject(sql, row.id);
  return {
    id: row.id,
    email,
    username,
    password: opts.password ?? null,
    user: toAuthUser(row, "session"),
    defaultProjectId,
  };
}

/** A session for `userId`; `cookie` goes into a Cookie header as is. */
export async function sessionFor(sql: Sql, userId: number): Promise<{ token: string; cookie: string }> {
  const { token } = await createSession(sql, userId);
  return { token, cookie: `${SESSION_COOKIE}=${token}` };
}

/** A new API key for `userId` (raw value). */
export async function apiKeyFor(sql: Sql, userId: number, name = "test key"): Promise<string> {
  return (await createApiKey(sql, userId, { name })).key;
}

/** A user with a session: spread `headers` into app.request() init. */
export async function signedIn(
  sql: Sql,
  opts: TestUserOptions = {},
): Promise<TestUser & { cookie: string; headers: Record<string, string> }> {
  const user = await createUser(sql, opts);
  const { cookie } = await sessionFor(sql, user.id);
  return { ...user, cookie, headers: { cookie } };
}

/** A user with an API key: spread `headers` into app.request() init for /api/v1/* calls. */
export async function withApiKey(
  sql: Sql,
  opts: TestUserOptions = {},
): Promise<TestUser & { apiKey: string; headers: Record<string, string> }> {
  const user = await createUser(sql, opts);
  const apiKey = await apiKeyFor(sql, user.id);
  return { ...user, apiKey, headers: { authorization: `Bearer ${apiKey}` } };
}

/** The session cookie a response set, as `name=value` for a Cookie header (null when none or cleared). */
export function sessionCookieOf(res: Response): string | null {
  for (const line of res.headers.getSetCookie()) {
    const m = /^((?:__Host-)?vox_session)=([^;]*)/.exec(line);
    if (m && m[2] !== "") return `${m[1]}=${m[2]}`;
  }
  return null;
}

/** Options for a JSON request with optional session cookie or API key. */
export function jsonInit(
  method: string,
  body?: unknown,
  auth: { cookie?: string; apiKey?: string; headers?: Record<string, string> } = {},
): RequestInit {
  const headers: Record<string, string> = { ...auth.headers };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (auth.cookie) headers.cookie = auth.cookie;
  if (auth.apiKey) headers.authorization = `Bearer ${auth.apiKey}`;
  return { method, headers, body: body === undefined ? undefined : JSON.stringify(body) };
}

/** The activation token inside a mail or page that contains an /activate/<token> link. */
export function activationTokenIn(text: string): string {
  const m = /\/activate\/([a-z2-7]{32})/.exec(text);
  if (!m) throw new Error(`no activation link in: ${text.slice(0, 200)}`);
  return m[1];
}
