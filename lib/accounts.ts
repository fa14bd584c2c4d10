// What people do with their own account: sign up, activate it with the mailed link, sign in
// with a password, change the password. Setup (lib/setup.ts), the administrator
// (lib/admin_users.ts) and OAuth sign-in (lib/auth/oauth_accounts.ts) create and change accounts
// too and take the same ActionContext.
import { recordAudit } from "./audit.ts";
import { type Config, publicUrl } from "./config.ts";
import type { Sql } from "./db.ts";
import { HttpError } from "./errors.ts";
import type { Logger } from "./log.ts";
import { type Mailer, MailError } from "./mailer.ts";
import { createDefaultProject } from "./projects_default.ts";
import type { AuthUser } from "./roles.ts";
import { freeUsername, toAuthUser, USER_COLUMNS, type UserRow, type UserView, userView } from "./users.ts";
import {
  clearLoginFailures,
  type LoginClient,
  type LoginLock,
  loginLock,
  recordLoginFailure,
} from "./auth/lockout.ts";
import type { KnownDevice } from "./auth/devices.ts";
import { hashPassword, passwordProblem, verifyPassword } from "./auth/passwords.ts";
import { invalidateUserSessions } from "./auth/sessions.ts";
import { revokeAllApiKeys } from "./auth/api_keys.ts";
import { readSetting } from "./settings.ts";
import { hashToken, randomToken } from "./auth/tokens.ts";

/**
 * What an account action needs besides its input: the database, configuration, log and
 * mailer, and the client's address for the audit log. Routes build one per request with
 * actionContext() (lib/auth/action_context.ts).
 */
export interface ActionContext {
  sql: Sql;
  config: Config;
  log: Logger;
  mailer: Mailer;
  ip?: string;
}

/**
 * Issues a single-use activation token (only its hash is stored) and returns the raw token.
 * Older unused tokens of the user stop working. Runs inside the caller's transaction.
 */
export async function issueActivationToken(sql: Sql, userId: number): Promise<string> {
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
 * sign-up cannot be used to find out who has an account. A sign-up never sets the password of
 * an existing account: signing up again before activation drops the earlier password and the
 * new link asks for one (see below).
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
      // Signing up again before activation: neither sign-up proved it owns the address, so
      // neither password may stay (else whoever signed up first, or last, could sign in to
      // the account the address's owner activates). The password is dropped and the fresh
      // link, the only one that works now, makes the owner of the mailbox choose one.
      await sql`UPDATE users SET password_hash = NULL, updated_at = now() WHERE id = ${existing.id}`;
      return {
        kind: "repeated" as const,
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
    details: result.kind === "repeated" ? { repeated: true } : undefined,
  });
  if (result.kind === "repeated") {
    await sendMail(ctx, {
      to: email,
      subject: "Vox: activate your account",
      text: `Someone (hopefully you) signed up to Vox again with this address before the account was ` +
        `activated. Earlier activation links no longer work, and neither does any password given at ` +
        `sign-up.\n\nOpen this link to choose a password and activate the account:\n${
          activationUrl(ctx.config, result.token)
        }\n\nThe link works once and expires. If you did not sign up, ignore this message.\n`,
    });
    return;
  }
  await sendMail(ctx, {
    to: email,
    subject: "Vox: activate your account",
    text: `Welcome to Vox.\n\nOpen this link and enter the password you chose at sign-up to activate ` +
      `your account:\n${activationUrl(ctx.config, result.token)}\n\n` +
      `The link works once and expires. If you did not sign up, ignore this message.\n`,
  });
}

/**
 * Facts about an activation token, for the page that asks to confirm it: whether the account
 * must choose a password (none yet) or confirm the one given at sign-up.
 */
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
 * Redeems an activation token: activates its user, once. The link proves the mailbox; the
 * password proves the sign-up: an account created without a password (the Scout, or one signed
 * up for twice) chooses one here, and an account signed up with a password must give that
 * password, so a link mailed to someone who never signed up activates nothing for whoever did.
 * Refuses unknown, used and expired tokens.
 */
export async function activate(ctx: ActionContext, token: string, password?: string): Promise<UserView> {
  const invalid = new HttpError(400, "token_invalid", "This activation link is not valid");
  if (!/^[a-z2-7]{32}$/.test(token)) throw invalid;
  const user = await ctx.sql.begin(async (tx) => {
    const sql = tx as unknown as Sql;
    const [row] = await sql<
      {
        userId: number;
        usedAt: Date | null;
        expired: boolean;
        passwordHash: string | null;
        email: string;
        username: string;
      }[]
    >`
      SELECT t.user_id, t.used_at, t.expires_at <= now() AS expired, u.password_hash, u.email, u.username
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
    if (!password) {
      throw new HttpError(
        400,
        "password_required",
        row.passwordHash
          ? "Enter the password chosen at sign-up to activate this account"
          : "Choose a password to activate this account",
        { details: { field: "password" } },
      );
    }
    let newHash: string | null = null;
    if (row.passwordHash) {
      if (!(await verifyPassword(row.passwordHash, password))) {
        throw new HttpError(400, "wrong_password", "This is not the password chosen at sign-up", {
          details: { field: "password" },
        });
      }
    } else {
      const problem = passwordProblem(password, { email: row.email, username: row.username });
      if (problem) throw new HttpError(400, "weak_password", problem, { details: { field: "password" } });
      newHash = await hashPassword(password);
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

function lockedError(lock: LoginLock): HttpError {
  const minutes = Math.ceil(lock.seconds / 60);
  const message = lock.scope === "client"
    ? `Too many failed sign-ins for this account from here; try again in ${minutes} minute(s)`
    : `Too many failed sign-ins for this account from many places; sign in from a browser that signed ` +
      `in to it before, or try again in ${minutes} minute(s)`;
  return new HttpError(429, "account_locked", message, {
    headers: { "Retry-After": String(lock.seconds) },
    details: { retryAfterSeconds: lock.seconds, scope: lock.scope },
  });
}

/**
 * Checks a login (email or username) and password. Unknown accounts, accounts without a
 * password and wrong passwords all cost one Argon2 verification and get the same 401; only
 * someone who knows the password learns that the account is inactive or not an admin.
 * Repeated failures lock the login for the client that made them, and many failures from
 * everywhere lock it for unknown devices (429 with Retry-After; lib/auth/lockout.ts).
 */
export async function passwordLogin(
  ctx: ActionContext,
  input: { login: string; password: string; adminOnly?: boolean; device?: KnownDevice | null },
): Promise<AuthUser> {
  const login = input.login.trim();
  const column = login.includes("@") ? ctx.sql`lower(email)` : ctx.sql`lower(username)`;
  const [row] = await ctx.sql<(UserRow & { passwordHash: string | null })[]>`
    SELECT ${ctx.sql.unsafe(USER_COLUMNS)}, password_hash FROM users WHERE ${column} = lower(${login})`;
  const client: LoginClient = { ip: ctx.ip ?? "unknown", device: input.device ?? null };
  const userId = row?.id ?? null;
  const lock = await loginLock(ctx.sql, login, client, userId);
  if (lock) throw lockedError(lock);
  const ok = await verifyPassword(row?.passwordHash ?? null, input.password);
  if (!row || !ok) {
    const lockedNow = await recordLoginFailure(ctx.sql, login, client, userId);
    await recordAudit(ctx.sql, {
      action: lockedNow ? "auth.login.locked" : "auth.login.failed",
      targetType: row ? "user" : undefined,
      targetId: row?.id,
      ip: ctx.ip,
      details: lockedNow
        ? {
          reason: row ? "wrong_password" : "unknown_login",
          lock: lockedNow.scope,
          lockSeconds: lockedNow.seconds,
        }
        : { reason: row ? "wrong_password" : "unknown_login" },
    });
    throw new HttpError(401, "invalid_credentials", INVALID_CREDENTIALS);
  }
  await clearLoginFailures(ctx.sql, login, client, userId);
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

/**
 * Changes a password after checking the current one, and ends every session of the user. With
 * `revokeApiKeys` every key of the user still in force is revoked too (a password change after a
 * suspected compromise must not leave a key the intruder made working). Returns how many
 * sessions ended and keys were revoked.
 */
export async function changePassword(
  ctx: ActionContext,
  user: AuthUser,
  input: { currentPassword: string; newPassword: string; revokeApiKeys?: boolean },
): Promise<{ sessionsEnded: number; apiKeysRevoked: number }> {
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
  const { ended, revoked } = await ctx.sql.begin(async (tx) => {
    const sql = tx as unknown as Sql;
    await sql`
      UPDATE users SET password_hash = ${hash}, password_changed_at = now(), updated_at = now()
      WHERE id = ${user.id}`;
    const ended = await invalidateUserSessions(sql, user.id);
    const revoked = input.revokeApiKeys ? await revokeAllApiKeys(sql, user.id) : 0;
    return { ended, revoked };
  });
  await recordAudit(ctx.sql, {
    action: "user.password_changed",
    actorUserId: user.id,
    targetType: "user",
    targetId: user.id,
    ip: ctx.ip,
    details: { sessionsEnded: ended, apiKeysRevoked: revoked },
  });
  return { sessionsEnded: ended, apiKeysRevoked: revoked };
}
