import type { Context } from "hono";
import { recordAudit } from "./audit.ts";
import { clientIp } from "./auth/client.ts";
import type { ExternalIdentity } from "./auth/oauth.ts";
import type { AppEnv, ResolvedDeps } from "./context.ts";
import { type Config, publicUrl } from "./config.ts";
import type { Sql } from "./db.ts";
import { HttpError } from "./errors.ts";
import { type AuthUser, type Role, ROLES } from "./roles.ts";
import type { Logger } from "./log.ts";
import { type Mailer, MailError } from "./mailer.ts";
import { createDefaultProject } from "./projects_default.ts";
import { clearLoginFailures, lockedFor, recordLoginFailure } from "./auth/lockout.ts";
import { hashPassword, passwordProblem, verifyPassword } from "./auth/passwords.ts";
import { readSetting } from "./auth/settings.ts";
import { invalidateUserSessions, toAuthUser, type UserRow } from "./auth/sessions.ts";
import { constantTimeEqualText, hashToken, randomToken } from "./auth/tokens.ts";

const USER_COLUMNS =
  "id, name, username, email, role, is_admin, organization_id, org_role, activated_at, deactivated_at";

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

/** Identity-related context a request hands to these functions. */
export interface ActionContext {
  sql: Sql;
  config: Config;
  log: Logger;
  mailer: Mailer;
  ip?: string;
}

/** The ActionContext of a request. */
export function actionContext(c: Context<AppEnv>, deps: ResolvedDeps): ActionContext {
  return {
    sql: deps.sql,
    config: deps.config,
    log: c.var.log,
    mailer: deps.mailer,
    ip: clientIp(c, deps.config),
  };
}

/** One user by id, or null. */
export async function findUserById(sql: Sql, id: number): Promise<(UserRow & { createdAt: Date }) | null> {
  const [row] = await sql<(UserRow & { createdAt: Date })[]>`
    SELECT ${sql.unsafe(USER_COLUMNS)}, created_at FROM users WHERE id = ${id}`;
  return row ?? null;
}

/** Username from an email's local part, made unique with a random suffix when taken. */
async function freeUsername(sql: Sql, email: string, wanted?: string): Promise<string> {
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

/** Issues a single-use activation token (only its hash is stored); returns the raw token. */
async function issueActivationToken(sql: Sql, userId: number): Promise<string> {
  const ttl = await readSetting(sql, "auth.activation_ttl_seconds");
  const token = randomToken(20);
  // A new link replaces the older ones, so only the latest mail works.
  await sql`
    UPDATE activation_tokens SET used_at = now()
    WHERE user_id = ${userId} AND purpose = 'activation' AND used_at IS NULL`;
  await sql`
    INSERT INTO activation_tokens (token_hash, user_id, purpose, expires_at)
    VALUES (${hashToken(token)}, ${userId}, 'activation', now() + make_interval(secs => ${ttl}))`;
  return token;
}

/** The link that activates an account. */
export function activationUrl(config: Config, token: string): string {
  return `${publicUrl(config)}/activate/${token}`;
}

async function sendMail(ctx: ActionContext, message: Parameters<Mailer["send"]>[0]): Promise<void> {
  try {
    await ctx.mailer.send(message);
  } catch (err) {
    ctx.log.error("mail delivery failed", { error: err instanceof MailError ? err.message : String(err) });
    throw new HttpError(502, "mail_failed", "Could not send the email; try again later");
  }
}

export interface SignupInput {
  email: string;
  password: string;
  name?: string;
  username?: string;
}

/**
 * Sign-up with email and password: creates an inactive `basic` user with a "Default" project and
 * mails a single-use activation link. The outcome looks the same whether or not the address
 * already has an account (the owner of an existing account gets a notice by mail instead), so
 * sign-up cannot be used to find out who has an account.
 */
export async function signup(ctx: ActionContext, input: SignupInput): Promise<void> {
  const email = input.email.trim();
  const problem = passwordProblem(input.password, { email, username: input.username });
  if (problem) throw new HttpError(400, "weak_password", problem, { details: { field: "password" } });
  // Hash before looking the address up so both outcomes cost the same Argon2 work.
  const passwordHash = await hashPassword(input.password);
  const result = await ctx.sql.begin(async (tx) => {
    const sql = tx as unknown as Sql;
    const [existing] = await sql<{ id: number; activatedAt: Date | null; deactivatedAt: Date | null }[]>`
      SELECT id, activated_at, deactivated_at FROM users WHERE lower(email) = lower(${email}) FOR UPDATE`;
    if (existing) {
      if (existing.activatedAt || existing.deactivatedAt) return { kind: "exists" as const };
      // Signing up again before activating: the new password wins and a fresh link is sent.
      await sql`UPDATE users SET password_hash = ${passwordHash}, updated_at = now() WHERE id = ${existing.id}`;
      return {
        kind: "created" as const,
        userId: existing.id,
        token: await issueActivationToken(sql, existing.id),
      };
    }
    const username = await freeUsername(sql, email, input.username);
    const [user] = await sql<{ id: number }[]>`
      INSERT INTO users (name, username, email, role, password_hash)
      VALUES (${input.name?.trim() || username}, ${username}, ${email}, 'basic', ${passwordHash})
      RETURNING id`;
    await createDefaultProject(sql, user.id);
    return { kind: "created" as const, userId: user.id, token: await issueActivationToken(sql, user.id) };
  });
  if (result.kind === "exists") {
    await sendMail(ctx, {
      to: email,
      subject: "Vox: you already have an account",
      text: `Someone (hopefully you) tried to sign up to Vox with this address, which already has an ` +
        `account.\n\nSign in at ${
          publicUrl(ctx.config)
        }/login. If it was not you, you can ignore this message.\n`,
    });
    return;
  }
  await recordAudit(ctx.sql, {
    action: "user.signup",
    actorUserId: result.userId,
    targetType: "user",
    targetId: result.userId,
    ip: ctx.ip,
  });
  await sendMail(ctx, {
    to: email,
    subject: "Vox: activate your account",
    text:
      `Welcome to Vox.\n\nOpen this link to activate your account:\n${
        activationUrl(ctx.config, result.token)
      }\n\n` +
      `The link works once and expires. If you did not sign up, ignore this message.\n`,
  });
}

/** Facts about an activation token, for the page that asks to confirm it. */
export async function inspectActivationToken(
  sql: Sql,
  token: string,
): Promise<{ state: "valid" | "used" | "expired" | "unknown"; needsPassword: boolean; email?: string }> {
  if (!/^[a-z2-7]{32}$/.test(token)) return { state: "unknown", needsPassword: false };
  const [row] = await sql<{ usedAt: Date | null; expired: boolean; hasPassword: boolean; email: string }[]>`
    SELECT t.used_at, t.expires_at <= now() AS expired, u.password_hash IS NOT NULL AS has_password, u.email
    FROM activation_tokens t JOIN users u ON u.id = t.user_id
    WHERE t.token_hash = ${hashToken(token)} AND t.purpose = 'activation'`;
  if (!row) return { state: "unknown", needsPassword: false };
  if (row.usedAt) return { state: "used", needsPassword: false };
  if (row.expired) return { state: "expired", needsPassword: false };
  return { state: "valid", needsPassword: !row.hasPassword, email: row.email };
}

/**
 * Redeems an activation token: activates its user, once. An account created without a
 * password (the Scout) must choose one here. Refuses unknown, used and expired tokens.
 */
export async function activate(ctx: ActionContext, token: string, password?: string): Promise<UserView> {
  const invalid = new HttpError(400, "token_invalid", "This activation link is not valid");
  if (!/^[a-z2-7]{32}$/.test(token)) throw invalid;
  const newHash = password ? await hashPassword(password) : null;
  const user = await ctx.sql.begin(async (tx) => {
    const sql = tx as unknown as Sql;
    const [row] = await sql<
      {
        userId: number;
        usedAt: Date | null;
        expired: boolean;
        hasPassword: boolean;
        email: string;
        username: string;
      }[]
    >`
      SELECT t.user_id, t.used_at, t.expires_at <= now() AS expired,
             u.password_hash IS NOT NULL AS has_password, u.email, u.username
      FROM activation_tokens t JOIN users u ON u.id = t.user_id
      WHERE t.token_hash = ${hashToken(token)} AND t.purpose = 'activation'
      FOR UPDATE OF t`;
    if (!row) throw invalid;
    if (row.usedAt) throw new HttpError(400, "token_used", "This activation link was already used");
    if (row.expired) {
      throw new HttpError(
        400,
        "token_expired",
        "This activation link has expired; sign up again to get a new one",
      );
    }
    if (!row.hasPassword && !password) {
      throw new HttpError(400, "password_required", "Choose a password to activate this account", {
        details: { field: "password" },
      });
    }
    if (password) {
      const problem = passwordProblem(password, { email: row.email, username: row.username });
      if (problem) throw new HttpError(400, "weak_password", problem, { details: { field: "password" } });
    }
    await sql`UPDATE activation_tokens SET used_at = now() WHERE token_hash = ${hashToken(token)}`;
    const [u] = await sql<UserRow[]>`
      UPDATE users
      SET activated_at = coalesce(activated_at, now()),
          password_hash = coalesce(${newHash}, password_hash),
          password_changed_at = CASE WHEN ${newHash !== null} THEN now() ELSE password_changed_at END,
          updated_at = now()
      WHERE id = ${row.userId}
      RETURNING ${sql.unsafe(USER_COLUMNS)}`;
    return u;
  });
  await recordAudit(ctx.sql, {
    action: "user.activated",
    actorUserId: user.id,
    targetType: "user",
    targetId: user.id,
    ip: ctx.ip,
  });
  return userView(user);
}

export const INVALID_CREDENTIALS = "Email or password is incorrect";

/**
 * Checks a login (email or username) and password. Unknown accounts, accounts without a
 * password and wrong passwords all cost one Argon2 verification and get the same 401; only
 * someone who knows the password learns that the account is inactive or not an admin.
 * Repeated failures for one login lock it for a while (429 with Retry-After).
 */
export async function passwordLogin(
  ctx: ActionContext,
  input: { login: string; password: string; adminOnly?: boolean },
): Promise<AuthUser> {
  const login = input.login.trim();
  const locked = await lockedFor(ctx.sql, login);
  if (locked > 0) {
    throw new HttpError(
      429,
      "account_locked",
      `Too many failed sign-ins for this account; try again in ${Math.ceil(locked / 60)} minute(s)`,
      { headers: { "Retry-After": String(locked) }, details: { retryAfterSeconds: locked } },
    );
  }
  const column = login.includes("@") ? ctx.sql`lower(email)` : ctx.sql`lower(username)`;
  const [row] = await ctx.sql<(UserRow & { passwordHash: string | null })[]>`
    SELECT ${ctx.sql.unsafe(USER_COLUMNS)}, password_hash FROM users WHERE ${column} = lower(${login})`;
  const ok = await verifyPassword(row?.passwordHash ?? null, input.password);
  if (!row || !ok) {
    const lockedNow = await recordLoginFailure(ctx.sql, login);
    await recordAudit(ctx.sql, {
      action: lockedNow ? "auth.login.locked" : "auth.login.failed",
      targetType: row ? "user" : undefined,
      targetId: row?.id,
      ip: ctx.ip,
      details: { reason: row ? "wrong_password" : "unknown_login" },
    });
    throw new HttpError(401, "invalid_credentials", INVALID_CREDENTIALS);
  }
  await clearLoginFailures(ctx.sql, login);
  if (!row.activatedAt) {
    throw new HttpError(
      403,
      "account_inactive",
      "This account is not activated yet: open the activation link sent by email",
    );
  }
  if (row.deactivatedAt) {
    throw new HttpError(403, "account_deactivated", "This account has been deactivated by the administrator");
  }
  if (input.adminOnly && !row.isAdmin) {
    await recordAudit(ctx.sql, {
      action: "auth.login.failed",
      actorUserId: row.id,
      targetType: "user",
      targetId: row.id,
      ip: ctx.ip,
      details: { reason: "not_admin" },
    });
    throw new HttpError(403, "not_admin", "Only the administrator can sign in here; use /login");
  }
  await recordAudit(ctx.sql, {
    action: "auth.login.succeeded",
    actorUserId: row.id,
    targetType: "user",
    targetId: row.id,
    ip: ctx.ip,
    details: { method: "password", admin: Boolean(input.adminOnly) },
  });
  return toAuthUser(row, "session");
}

/** Changes a password after checking the current one, and ends every session of the user. */
export async function changePassword(
  ctx: ActionContext,
  user: AuthUser,
  input: { currentPassword: string; newPassword: string },
): Promise<void> {
  const [row] = await ctx.sql<
    { passwordHash: string | null }[]
  >`SELECT password_hash FROM users WHERE id = ${user.id}`;
  // Accounts created through Google have no password yet and may set one without a current one.
  if (row?.passwordHash && !(await verifyPassword(row.passwordHash, input.currentPassword))) {
    throw new HttpError(403, "wrong_password", "The current password is incorrect", {
      details: { field: "currentPassword" },
    });
  }
  const problem = passwordProblem(input.newPassword, { email: user.email, username: user.username });
  if (problem) throw new HttpError(400, "weak_password", problem, { details: { field: "newPassword" } });
  const hash = await hashPassword(input.newPassword);
  await ctx.sql`
    UPDATE users SET password_hash = ${hash}, password_changed_at = now(), updated_at = now() WHERE id = ${user.id}`;
  const ended = await invalidateUserSessions(ctx.sql, user.id);
  await recordAudit(ctx.sql, {
    action: "user.password_changed",
    actorUserId: user.id,
    targetType: "user",
    targetId: user.id,
    ip: ctx.ip,
    details: { sessionsEnded: ended },
  });
}

/** Whether the first-run setup still has to happen (no administrator exists). */
export async function setupNeeded(sql: Sql): Promise<boolean> {
  const [row] = await sql`SELECT 1 FROM users WHERE is_admin LIMIT 1`;
  return !row;
}

export interface SetupInput {
  initCode: string;
  admin: { email: string; password: string; name?: string; username?: string };
  scout: { email: string; name?: string; username?: string };
}

// Serialises concurrent setup attempts across server processes.
const SETUP_LOCK = 7_346_021_003;

/**
 * First run: with the right INIT_CODE and while no administrator exists, creates the admin
 * (isAdmin, active) and the Scout (role principal, not activated, no password: the activation
 * link lets the Scout choose one). Returns the Scout's activation link, which is shown once.
 */
export async function runSetup(
  ctx: ActionContext,
  input: SetupInput,
): Promise<{ admin: UserView; scout: UserView; scoutActivationUrl: string }> {
  if (!ctx.config.INIT_CODE) {
    throw new HttpError(
      403,
      "setup_disabled",
      "Setup is disabled: set INIT_CODE in the server's environment",
    );
  }
  if (!(await setupNeeded(ctx.sql))) {
    throw new HttpError(409, "setup_done", "Setup has already been completed");
  }
  const codeOk = constantTimeEqualText(hashToken(input.initCode), hashToken(ctx.config.INIT_CODE));
  if (!codeOk) throw new HttpError(403, "wrong_init_code", "The setup code is wrong");
  const adminProblem = passwordProblem(input.admin.password, input.admin);
  if (adminProblem) {
    throw new HttpError(400, "weak_password", adminProblem, { details: { field: "admin.password" } });
  }
  if (input.admin.email.trim().toLowerCase() === input.scout.email.trim().toLowerCase()) {
    throw new HttpError(400, "same_email", "The admin and the Scout need different email addresses", {
      details: { field: "scout.email" },
    });
  }
  const passwordHash = await hashPassword(input.admin.password);
  const result = await ctx.sql.begin(async (tx) => {
    const sql = tx as unknown as Sql;
    await sql`SELECT pg_advisory_xact_lock(${SETUP_LOCK})`;
    if (!(await setupNeeded(sql))) throw new HttpError(409, "setup_done", "Setup has already been completed");
    const adminEmail = input.admin.email.trim();
    const scoutEmail = input.scout.email.trim();
    const adminUsername = await freeUsername(sql, adminEmail, input.admin.username || "admin");
    const [admin] = await sql<UserRow[]>`
      INSERT INTO users (name, username, email, role, is_admin, password_hash, activated_at, password_changed_at)
      VALUES (${input.admin.name?.trim() || "Administrator"}, ${adminUsername}, ${adminEmail}, 'basic', true,
              ${passwordHash}, now(), now())
      RETURNING ${sql.unsafe(USER_COLUMNS)}`;
    await createDefaultProject(sql, admin.id);
    const scoutUsername = await freeUsername(sql, scoutEmail, input.scout.username || "scout");
    const [scout] = await sql<UserRow[]>`
      INSERT INTO users (name, username, email, role)
      VALUES (${input.scout.name?.trim() || "Scout"}, ${scoutUsername}, ${scoutEmail}, 'principal')
      RETURNING ${sql.unsafe(USER_COLUMNS)}`;
    await createDefaultProject(sql, scout.id);
    const token = await issueActivationToken(sql, scout.id);
    return { admin, scout, token };
  });
  const url = activationUrl(ctx.config, result.token);
  await recordAudit(ctx.sql, {
    action: "setup.completed",
    actorUserId: result.admin.id,
    targetType: "user",
    targetId: result.scout.id,
    ip: ctx.ip,
    details: { adminId: result.admin.id, scoutId: result.scout.id },
  });
  // Deliberate (issue: the Scout's link is shown once and written to the server log).
  ctx.log.info("setup completed; the Scout activates their account with this link", {
    scoutEmail: result.scout.email,
    scoutActivationUrl: url,
  });
  return { admin: userView(result.admin), scout: userView(result.scout), scoutActivationUrl: url };
}

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
  if (!ROLES.includes(role)) throw new HttpError(400, "bad_role", `Role must be one of ${ROLES.join(", ")}`);
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

/**
 * Signs in with an external identity: the account already linked to it; else the account with
 * the same email, linked only when the provider verified that email; else a new active `basic`
 * user. An unverified email is refused outright. Linking to an account that was never activated
 * drops its password, since whoever set it never proved they own the address.
 */
export async function oauthSignIn(ctx: ActionContext, identity: ExternalIdentity): Promise<AuthUser> {
  const outcome = await ctx.sql.begin(async (tx) => {
    const sql = tx as unknown as Sql;
    const [linked] = await sql<UserRow[]>`
      SELECT ${sql.unsafe(USER_COLUMNS.replace(/(\w+)/g, "u.$1"))}
      FROM oauth_accounts o JOIN users u ON u.id = o.user_id
      WHERE o.provider = ${identity.provider} AND o.provider_user_id = ${identity.providerUserId}`;
    if (linked) {
      await sql`
        UPDATE oauth_accounts SET last_login_at = now()
        WHERE provider = ${identity.provider} AND provider_user_id = ${identity.providerUserId}`;
      return { user: linked, action: "auth.oauth.succeeded" as const };
    }
    if (!identity.email || !identity.emailVerified) {
      throw new HttpError(
        403,
        "email_unverified",
        "Your Google account's email address is not verified; verify it with Google first",
      );
    }
    const [existing] = await sql<UserRow[]>`
      SELECT ${sql.unsafe(USER_COLUMNS)} FROM users WHERE lower(email) = lower(${identity.email}) FOR UPDATE`;
    let user: UserRow;
    let action: "auth.oauth.linked" | "auth.oauth.signup";
    if (existing) {
      if (existing.activatedAt) {
        user = existing;
      } else {
        [user] = await sql<UserRow[]>`
          UPDATE users SET activated_at = now(), password_hash = NULL, updated_at = now()
          WHERE id = ${existing.id} RETURNING ${sql.unsafe(USER_COLUMNS)}`;
        await sql`UPDATE activation_tokens SET used_at = now() WHERE user_id = ${existing.id} AND used_at IS NULL`;
      }
      action = "auth.oauth.linked";
    } else {
      const username = await freeUsername(sql, identity.email);
      [user] = await sql<UserRow[]>`
        INSERT INTO users (name, username, email, role, activated_at)
        VALUES (${
        identity.name?.trim().slice(0, 200) || username
      }, ${username}, ${identity.email}, 'basic', now())
        RETURNING ${sql.unsafe(USER_COLUMNS)}`;
      await createDefaultProject(sql, user.id);
      action = "auth.oauth.signup";
    }
    await sql`
      INSERT INTO oauth_accounts (provider, provider_user_id, user_id, email, last_login_at)
      VALUES (${identity.provider}, ${identity.providerUserId}, ${user.id}, ${identity.email}, now())`;
    return { user, action };
  });
  if (outcome.user.deactivatedAt) {
    throw new HttpError(403, "account_deactivated", "This account has been deactivated by the administrator");
  }
  await recordAudit(ctx.sql, {
    action: outcome.action,
    actorUserId: outcome.user.id,
    targetType: "user",
    targetId: outcome.user.id,
    ip: ctx.ip,
    details: { provider: identity.provider },
  });
  return toAuthUser(outcome.user, "session");
}
