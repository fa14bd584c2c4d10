// Linking an identity an OAuth provider vouched for (lib/auth/oauth.ts) to a Vox account.
import type { ActionContext } from "../accounts.ts";
import { recordAudit } from "../audit.ts";
import type { Sql } from "../db.ts";
import { HttpError } from "../errors.ts";
import { createDefaultProject } from "../projects_default.ts";
import type { AuthUser } from "../roles.ts";
import { freeUsername, toAuthUser, USER_COLUMNS, type UserRow } from "../users.ts";
import type { ExternalIdentity } from "./oauth.ts";

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
