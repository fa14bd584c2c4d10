// First run: the administrator and the Scout, created once with the INIT_CODE.
import { type ActionContext, activationUrl, issueActivationToken } from "./accounts.ts";
import { recordAudit } from "./audit.ts";
import type { Sql } from "./db.ts";
import { HttpError } from "./errors.ts";
import { createDefaultProject } from "./projects_default.ts";
import { freeUsername, USER_COLUMNS, type UserRow, type UserView, userView } from "./users.ts";
import { hashPassword, passwordProblem } from "./auth/passwords.ts";
import { constantTimeEqualText, hashToken } from "./auth/tokens.ts";

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
 * link lets the Scout choose one). Returns the Scout's activation link, which is shown once and
 * mailed to the Scout.
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
  // The link is shown once (page or JSON) and mailed to the Scout; it goes to the server log
  // only as the log mailer's clearly marked message when no SMTP_URL is set.
  ctx.log.info("setup completed; the Scout's activation link was shown once and mailed to the Scout", {
    scoutEmail: result.scout.email,
    mailer: ctx.mailer.kind,
  });
  try {
    await ctx.mailer.send({
      to: result.scout.email,
      subject: "Vox: activate your Scout account",
      text: `The Vox administrator set up this server with you as its Scout.\n\nOpen this link to ` +
        `choose a password and activate your account:\n${url}\n\nThe link works once and expires.\n`,
    });
  } catch (err) {
    // Setup is done and the administrator has the link on screen; the mail is a convenience.
    ctx.log.warn("the Scout's activation mail could not be sent; pass the link on by hand", {
      error: err instanceof Error ? err.message : String(err),
    });
  }
  return { admin: userView(result.admin), scout: userView(result.scout), scoutActivationUrl: url };
}
