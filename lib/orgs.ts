// Organizations (SPEC §2): creation, members and their org roles, invites, seats, and the
// system administrator's verification. Seats: every member and every open invite takes one of
// the seats the organization has paid for (organization_seats, kept by billing); no free seat,
// no invite. A member holding a paid seat has Premium powers while it is paid — the database
// decides that (vox_effective_role() in migrations/00006_organizations.sql) when it resolves
// the caller, so every check of a role sees it. Nobody outside an organization learns it
// exists: its routes answer them 404.
import { recordAudit } from "./audit.ts";
import { type Config, publicUrl } from "./config.ts";
import type { Db, Sql } from "./db.ts";
import { HttpError } from "./errors.ts";
import type { Logger } from "./log.ts";
import { type Mailer, MailError } from "./mailer.ts";
import { createDefaultProject } from "./projects_default.ts";
import type { AuthUser } from "./roles.ts";
import { freeUsername } from "./users.ts";
import { hashPassword, passwordProblem } from "./auth/passwords.ts";
import { hashToken, randomToken } from "./auth/tokens.ts";

/** The creator plus at most 3 appointed admins (SPEC §2). */
export const MAX_ORG_ADMINS = 4;
/** How long an invite link works. */
export const INVITE_TTL_SECONDS = 7 * 24 * 3600;

export type OrgRole = "member" | "admin";

export interface OrgSeats {
  /** Seats paid for right now. */
  paid: number;
  members: number;
  /** Open invites that have not expired; each holds a seat until accepted, revoked or expired. */
  pendingInvites: number;
  /** members + pendingInvites. */
  used: number;
  /** Seats an invite may still take: max(0, paid − used). */
  free: number;
}

export interface Organization {
  id: number;
  name: string;
  address: string | null;
  verified: boolean;
  verifiedAt: string | null;
  createdBy: number | null;
  createdAt: string;
  updatedAt: string;
  seats: OrgSeats;
  admins: number;
  /** The caller's role in it; null for the system administrator looking in from outside. */
  myRole: OrgRole | null;
}

export interface Member {
  id: number;
  name: string;
  username: string;
  email: string;
  orgRole: OrgRole;
  joinedAt: string | null;
  /** Whether one of the paid seats covers them (admins first, then by joining). */
  holdsPaidSeat: boolean;
  /** The role they act with: "premium" for a basic member holding a paid seat. */
  effectiveRole: string;
}

export interface Invite {
  id: number;
  email: string;
  orgRole: OrgRole;
  invitedBy: number | null;
  createdAt: string;
  expiresAt: string;
  status: "open" | "expired" | "used" | "revoked";
}

/** What an account action needs (the same shape as lib/accounts.ts's ActionContext). */
export interface OrgContext {
  sql: Sql;
  config: Config;
  log: Logger;
  mailer: Mailer;
  ip?: string;
}

const iso = (v: Date | null) => v ? v.toISOString() : null;

function notFound(id: number): HttpError {
  return new HttpError(404, "not_found", `No organization ${id}`);
}

/** Paid, used and free seats of an organization. */
export async function orgSeats(sql: Db, organizationId: number): Promise<OrgSeats> {
  const [r] = await sql<{ paid: number; members: number; pendingInvites: number }[]>`
    SELECT vox_org_paid_seats(${organizationId}) AS paid,
           (SELECT count(*)::int FROM users WHERE organization_id = ${organizationId}) AS members,
           (SELECT count(*)::int FROM invite_tokens
            WHERE organization_id = ${organizationId} AND used_at IS NULL AND revoked_at IS NULL
              AND expires_at > now()) AS pending_invites`;
  const used = r.members + r.pendingInvites;
  return { ...r, used, free: Math.max(0, r.paid - used) };
}

/** Seats paid for right now (active organization_seats purchases within their period). */
export async function paidSeats(sql: Db, organizationId: number): Promise<number> {
  const [r] = await sql<{ n: number }[]>`SELECT vox_org_paid_seats(${organizationId}) AS n`;
  return r.n;
}

/** A purchase of seats, as billing records it in organization_seats. */
export interface SeatPurchase {
  organizationId: number;
  seats: number;
  unitCents: number;
  discountBps: number;
  totalCents: number;
  paymentHistoryId?: number | null;
  /** "pending" until paid; only "active" seats count. */
  status: "pending" | "active" | "cancelled" | "expired";
  startsAt?: Date;
  /** End of the paid period; null: until billing changes the status. */
  expiresAt?: Date | null;
}

/**
 * Records a purchase of seats (billing calls it; price it with lib/pricing.ts quote()). Active
 * seats raise the organization's paid seats at once; returns the organization_seats id.
 */
export async function recordSeatPurchase(sql: Db, p: SeatPurchase): Promise<number> {
  const [row] = await sql<{ id: number }[]>`
    INSERT INTO organization_seats (organization_id, seats, unit_price_cents, discount_bps, total_cents,
                                    payment_history_id, status, starts_at, expires_at)
    VALUES (${p.organizationId}, ${p.seats}, ${p.unitCents}, ${p.discountBps}, ${p.totalCents},
            ${p.paymentHistoryId ?? null}, ${p.status}, ${p.startsAt ?? new Date()}, ${p.expiresAt ?? null})
    RETURNING id`;
  return row.id;
}

/**
 * Changes a seat purchase: paid (active, optionally until a new period end), lapsed
 * (expired/cancelled) or resized. Lapsed seats lower the paid count; members keep their data
 * and membership, only the newest lose Premium powers.
 */
export async function updateSeatPurchase(
  sql: Db,
  id: number,
  change: { status?: SeatPurchase["status"]; seats?: number; expiresAt?: Date | null },
): Promise<void> {
  await sql`
    UPDATE organization_seats
    SET status = coalesce(${change.status ?? null}, status),
        seats = coalesce(${change.seats ?? null}::int, seats),
        expires_at = CASE WHEN ${change.expiresAt !== undefined} THEN ${change.expiresAt ?? null}::timestamptz
                          ELSE expires_at END
    WHERE id = ${id}`;
}

/**
 * Sets an organization's paid seat count to `seats` outright (an admin correction, or a
 * provider that reports only a quantity): the active purchases are closed and one active row
 * for `seats` replaces them. Prefer recordSeatPurchase()/updateSeatPurchase() for purchases.
 */
export async function setOrgPaidSeats(sql: Sql, organizationId: number, seats: number): Promise<void> {
  await sql.begin(async (tx) => {
    await tx`SELECT id FROM organizations WHERE id = ${organizationId} FOR UPDATE`;
    await tx`
      UPDATE organization_seats SET status = 'cancelled', expires_at = least(coalesce(expires_at, now()), now())
      WHERE organization_id = ${organizationId} AND status = 'active'`;
    if (seats > 0) {
      await recordSeatPurchase(tx, {
        organizationId,
        seats,
        unitCents: 0,
        discountBps: 0,
        totalCents: 0,
        status: "active",
      });
    }
  });
}

/** Whether a user holds one of their organization's paid seats right now. */
export async function holdsPaidSeat(sql: Db, userId: number): Promise<boolean> {
  const [r] = await sql<{ held: boolean }[]>`SELECT vox_holds_paid_seat(${userId}) AS held`;
  return r.held;
}

async function loadOrg(sql: Db, id: number, myRole: OrgRole | null): Promise<Organization> {
  const [r] = await sql<
    {
      id: number;
      name: string;
      address: string | null;
      verified: boolean;
      verifiedAt: Date | null;
      createdBy: number | null;
      createdAt: Date;
      updatedAt: Date;
      admins: number;
    }[]
  >`
    SELECT o.id, o.name, o.address, o.verified, o.verified_at, o.created_by, o.created_at, o.updated_at,
           (SELECT count(*)::int FROM users u WHERE u.organization_id = o.id AND u.org_role = 'admin') AS admins
    FROM organizations o WHERE o.id = ${id}`;
  if (!r) throw notFound(id);
  return {
    id: r.id,
    name: r.name,
    address: r.address,
    verified: r.verified,
    verifiedAt: iso(r.verifiedAt),
    createdBy: r.createdBy,
    createdAt: r.createdAt.toISOString(),
    updatedAt: r.updatedAt.toISOString(),
    admins: r.admins,
    seats: await orgSeats(sql, id),
    myRole,
  };
}

/**
 * The caller's role in organization `id`, read from the database (not the session's snapshot).
 * 404 for anyone outside it, so outsiders cannot tell it exists; the system administrator may
 * look (role null) when `adminMayLook`.
 */
async function roleIn(sql: Db, user: AuthUser, id: number, adminMayLook = false): Promise<OrgRole | null> {
  const [r] = await sql<{ organizationId: number | null; orgRole: OrgRole | null }[]>`
    SELECT organization_id, org_role FROM users WHERE id = ${user.id}`;
  if (r?.organizationId === id) return r.orgRole;
  if (adminMayLook && user.isAdmin) {
    const [o] = await sql`SELECT 1 FROM organizations WHERE id = ${id}`;
    if (o) return null;
  }
  throw notFound(id);
}

/**
 * The organization for an admin of it (billing's seat purchases, invites, settings): 404 for
 * outsiders, 403 for members who are not its admins.
 */
export async function requireOrgAdmin(sql: Db, user: AuthUser, id: number): Promise<Organization> {
  const role = await roleIn(sql, user, id);
  if (role !== "admin") {
    throw new HttpError(403, "forbidden", "Only an admin of this organization may do this");
  }
  return await loadOrg(sql, id, role);
}

/** The organization for one of its members (or the system administrator). */
export async function getOrganization(sql: Db, user: AuthUser, id: number): Promise<Organization> {
  return await loadOrg(sql, id, await roleIn(sql, user, id, true));
}

/** The admins' email addresses (billing's receipts and notices). */
export async function orgAdminEmails(sql: Db, organizationId: number): Promise<string[]> {
  const rows = await sql<{ email: string }[]>`
    SELECT email FROM users WHERE organization_id = ${organizationId} AND org_role = 'admin'
      AND deactivated_at IS NULL ORDER BY id`;
  return rows.map((r) => r.email);
}

/**
 * Creates an organization with the caller as its admin. A user belongs to one organization at
 * a time: a member of one must leave it first (409).
 */
export async function createOrganization(
  ctx: Pick<OrgContext, "sql" | "ip">,
  user: AuthUser,
  input: { name: string; address?: string | null },
): Promise<Organization> {
  const id = await ctx.sql.begin(async (tx) => {
    const [me] = await tx<{ organizationId: number | null }[]>`
      SELECT organization_id FROM users WHERE id = ${user.id} FOR UPDATE`;
    if (me.organizationId !== null) {
      throw new HttpError(
        409,
        "already_in_organization",
        "You already belong to an organization; leave it before creating another",
      );
    }
    const [o] = await tx<{ id: number }[]>`
      INSERT INTO organizations (name, address, created_by)
      VALUES (${input.name}, ${input.address ?? null}, ${user.id}) RETURNING id`;
    await tx`UPDATE users SET organization_id = ${o.id}, org_role = 'admin', updated_at = now() WHERE id = ${user.id}`;
    return o.id;
  });
  await recordAudit(ctx.sql, {
    action: "organization.created",
    actorUserId: user.id,
    targetType: "organization",
    targetId: id,
    ip: ctx.ip,
  });
  return await loadOrg(ctx.sql, id, "admin");
}

/** Renames an organization or changes its address (its admins only). */
export async function updateOrganization(
  ctx: Pick<OrgContext, "sql" | "ip">,
  user: AuthUser,
  id: number,
  patch: { name?: string; address?: string | null },
): Promise<Organization> {
  await requireOrgAdmin(ctx.sql, user, id);
  await ctx.sql`
    UPDATE organizations
    SET name = coalesce(${patch.name ?? null}, name),
        address = CASE WHEN ${patch.address !== undefined} THEN ${patch.address ?? null} ELSE address END,
        updated_at = now()
    WHERE id = ${id}`;
  await recordAudit(ctx.sql, {
    action: "organization.updated",
    actorUserId: user.id,
    targetType: "organization",
    targetId: id,
    ip: ctx.ip,
    details: { fields: Object.keys(patch).join(",") },
  });
  return await loadOrg(ctx.sql, id, "admin");
}

/** The members, admins first then by joining (the order paid seats cover them). */
export async function listMembers(sql: Db, user: AuthUser, id: number): Promise<Member[]> {
  await roleIn(sql, user, id, true);
  const rows = await sql<
    {
      id: number;
      name: string;
      username: string;
      email: string;
      orgRole: OrgRole;
      orgJoinedAt: Date | null;
      holdsPaidSeat: boolean;
      effectiveRole: string;
    }[]
  >`
    SELECT id, name, username, email, org_role, org_joined_at, vox_holds_paid_seat(id) AS holds_paid_seat,
           vox_effective_role(id, role) AS effective_role
    FROM users WHERE organization_id = ${id}
    ORDER BY org_role = 'admin' DESC, org_joined_at, id`;
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    username: r.username,
    email: r.email,
    orgRole: r.orgRole,
    joinedAt: iso(r.orgJoinedAt),
    holdsPaidSeat: r.holdsPaidSeat,
    effectiveRole: r.effectiveRole,
  }));
}

function adminLimitError(admins: number, pendingAdminInvites: number): HttpError {
  return new HttpError(
    403,
    "admin_limit",
    `An organization may have at most ${MAX_ORG_ADMINS} admins (its creator and ${
      MAX_ORG_ADMINS - 1
    } more); it has ${admins}` +
      (pendingAdminInvites ? ` and ${pendingAdminInvites} open admin invite(s)` : ""),
    { details: { limit: "max_org_admins", max: MAX_ORG_ADMINS, admins, pendingAdminInvites } },
  );
}

async function adminCounts(tx: Db, id: number): Promise<{ admins: number; pendingAdminInvites: number }> {
  const [r] = await tx<{ admins: number; pendingAdminInvites: number }[]>`
    SELECT (SELECT count(*)::int FROM users WHERE organization_id = ${id} AND org_role = 'admin') AS admins,
           (SELECT count(*)::int FROM invite_tokens WHERE organization_id = ${id} AND org_role = 'admin'
              AND used_at IS NULL AND revoked_at IS NULL AND expires_at > now()) AS pending_admin_invites`;
  return r;
}

/**
 * Makes a member an admin or an admin a member (the organization's admins only). At most
 * MAX_ORG_ADMINS admins (403 admin_limit); the last admin cannot step down (409).
 */
export async function setMemberRole(
  ctx: Pick<OrgContext, "sql" | "ip">,
  user: AuthUser,
  id: number,
  memberId: number,
  orgRole: OrgRole,
): Promise<Member> {
  await ctx.sql.begin(async (tx) => {
    await tx`SELECT id FROM organizations WHERE id = ${id} FOR UPDATE`;
    await requireOrgAdmin(tx, user, id);
    const [m] = await tx<{ orgRole: OrgRole }[]>`
      SELECT org_role FROM users WHERE id = ${memberId} AND organization_id = ${id}`;
    if (!m) {
      throw new HttpError(404, "member_not_found", `User ${memberId} is not a member of this organization`);
    }
    if (m.orgRole === orgRole) return;
    const { admins, pendingAdminInvites } = await adminCounts(tx, id);
    if (orgRole === "admin" && admins + pendingAdminInvites >= MAX_ORG_ADMINS) {
      throw adminLimitError(admins, pendingAdminInvites);
    }
    if (orgRole === "member" && admins <= 1) {
      throw new HttpError(409, "last_admin", "The organization's last admin cannot become a member");
    }
    await tx`UPDATE users SET org_role = ${orgRole}, updated_at = now() WHERE id = ${memberId}`;
  });
  await recordAudit(ctx.sql, {
    action: "organization.role_changed",
    actorUserId: user.id,
    targetType: "user",
    targetId: memberId,
    ip: ctx.ip,
    details: { organizationId: id, orgRole },
  });
  const member = (await listMembers(ctx.sql, user, id)).find((m) => m.id === memberId)!;
  return member;
}

/**
 * Removes a member (the organization's admins only); their seat frees at once. Their personal
 * projects stay theirs; the organization's projects stay the organization's. Admins leave with
 * leaveOrganization() rather than removing themselves.
 */
export async function removeMember(
  ctx: Pick<OrgContext, "sql" | "ip">,
  user: AuthUser,
  id: number,
  memberId: number,
): Promise<void> {
  await ctx.sql.begin(async (tx) => {
    await tx`SELECT id FROM organizations WHERE id = ${id} FOR UPDATE`;
    await requireOrgAdmin(tx, user, id);
    if (memberId === user.id) {
      throw new HttpError(400, "use_leave", "To remove yourself, leave the organization instead");
    }
    const [m] = await tx`
      UPDATE users SET organization_id = NULL, org_role = NULL, updated_at = now()
      WHERE id = ${memberId} AND organization_id = ${id} RETURNING id`;
    if (!m) {
      throw new HttpError(404, "member_not_found", `User ${memberId} is not a member of this organization`);
    }
  });
  await recordAudit(ctx.sql, {
    action: "organization.member_removed",
    actorUserId: user.id,
    targetType: "user",
    targetId: memberId,
    ip: ctx.ip,
    details: { organizationId: id },
  });
}

/**
 * The caller leaves organization `id`; their seat frees. The last admin of an organization that
 * has other members must appoint another admin first (409).
 */
export async function leaveOrganization(
  ctx: Pick<OrgContext, "sql" | "ip">,
  user: AuthUser,
  id: number,
): Promise<void> {
  await ctx.sql.begin(async (tx) => {
    await tx`SELECT id FROM organizations WHERE id = ${id} FOR UPDATE`;
    const role = await roleIn(tx, user, id);
    if (role === "admin") {
      const [r] = await tx<{ admins: number; members: number }[]>`
        SELECT count(*) FILTER (WHERE org_role = 'admin')::int AS admins, count(*)::int AS members
        FROM users WHERE organization_id = ${id}`;
      if (r.admins <= 1 && r.members > 1) {
        throw new HttpError(
          409,
          "last_admin",
          "You are the organization's last admin: make another member an admin before leaving",
        );
      }
    }
    await tx`UPDATE users SET organization_id = NULL, org_role = NULL, updated_at = now() WHERE id = ${user.id}`;
  });
  await recordAudit(ctx.sql, {
    action: "organization.member_left",
    actorUserId: user.id,
    targetType: "organization",
    targetId: id,
    ip: ctx.ip,
  });
}

type InviteRow = {
  id: number;
  email: string;
  orgRole: OrgRole;
  invitedBy: number | null;
  createdAt: Date;
  expiresAt: Date;
  usedAt: Date | null;
  revokedAt: Date | null;
};

function toInvite(r: InviteRow): Invite {
  return {
    id: r.id,
    email: r.email,
    orgRole: r.orgRole,
    invitedBy: r.invitedBy,
    createdAt: r.createdAt.toISOString(),
    expiresAt: r.expiresAt.toISOString(),
    status: r.usedAt
      ? "used"
      : r.revokedAt
      ? "revoked"
      : r.expiresAt.getTime() <= Date.now()
      ? "expired"
      : "open",
  };
}

/** Open and recent invites of an organization, newest first (its admins only). */
export async function listInvites(sql: Db, user: AuthUser, id: number): Promise<Invite[]> {
  await requireOrgAdmin(sql, user, id);
  const rows = await sql<InviteRow[]>`
    SELECT id, email, org_role, invited_by, created_at, expires_at, used_at, revoked_at
    FROM invite_tokens WHERE organization_id = ${id}
    ORDER BY (used_at IS NULL AND revoked_at IS NULL AND expires_at > now()) DESC, created_at DESC, id DESC
    LIMIT 200`;
  return rows.map(toInvite);
}

/** The link that accepts an invite. */
export function inviteUrl(config: Config, token: string): string {
  return `${publicUrl(config)}/invite/${token}`;
}

/**
 * Invites `email` into organization `id` (its admins only): a single-use link that expires,
 * stored as the hash of its token, mailed to the address. The invite takes a free seat at once;
 * with none free it is refused (403 no_free_seat, saying how the seats are used). An admin
 * invite also counts toward the admin limit. Returns the invite and the link (shown once).
 */
export async function createInvite(
  ctx: OrgContext,
  user: AuthUser,
  id: number,
  input: { email: string; orgRole?: OrgRole },
): Promise<{ invite: Invite; acceptUrl: string }> {
  const email = input.email.trim();
  const orgRole = input.orgRole ?? "member";
  const token = randomToken(20);
  const { invite, orgName } = await ctx.sql.begin(async (tx) => {
    // The organization's row serializes invites, accepts and removals: two invites cannot both
    // take the last seat.
    await tx`SELECT id FROM organizations WHERE id = ${id} FOR UPDATE`;
    const org = await requireOrgAdmin(tx, user, id);
    const [member] = await tx`
      SELECT 1 FROM users WHERE organization_id = ${id} AND lower(email) = lower(${email})`;
    if (member) {
      throw new HttpError(409, "already_member", `${email} is already a member of this organization`);
    }
    // An expired invite no longer holds a seat or the address; close it so a new one can go out.
    await tx`
      UPDATE invite_tokens SET revoked_at = now()
      WHERE organization_id = ${id} AND lower(email) = lower(${email}) AND used_at IS NULL
        AND revoked_at IS NULL AND expires_at <= now()`;
    const [open] = await tx`
      SELECT 1 FROM invite_tokens WHERE organization_id = ${id} AND lower(email) = lower(${email})
        AND used_at IS NULL AND revoked_at IS NULL`;
    if (open) {
      throw new HttpError(
        409,
        "already_invited",
        `${email} already has an open invite; revoke it to send a new one`,
      );
    }
    const seats = org.seats;
    if (seats.free < 1) {
      throw new HttpError(
        403,
        "no_free_seat",
        `No free seat: the organization has paid for ${seats.paid} seat(s), and ${seats.members} member(s) ` +
          `and ${seats.pendingInvites} open invite(s) use ${seats.used}. Buy more seats or revoke an invite first`,
        { details: { limit: "seats", ...seats } },
      );
    }
    if (orgRole === "admin") {
      const { admins, pendingAdminInvites } = await adminCounts(tx, id);
      if (admins + pendingAdminInvites >= MAX_ORG_ADMINS) throw adminLimitError(admins, pendingAdminInvites);
    }
    const [row] = await tx<InviteRow[]>`
      INSERT INTO invite_tokens (token_hash, organization_id, email, org_role, invited_by, expires_at)
      VALUES (${hashToken(token)}, ${id}, ${email}, ${orgRole}, ${user.id},
              now() + make_interval(secs => ${INVITE_TTL_SECONDS}))
      RETURNING id, email, org_role, invited_by, created_at, expires_at, used_at, revoked_at`;
    return { invite: toInvite(row), orgName: org.name };
  });
  const acceptUrl = inviteUrl(ctx.config, token);
  await recordAudit(ctx.sql, {
    action: "organization.member_invited",
    actorUserId: user.id,
    targetType: "organization",
    targetId: id,
    ip: ctx.ip,
    details: { inviteId: invite.id, orgRole },
  });
  try {
    await ctx.mailer.send({
      to: email,
      subject: `Vox: you are invited to join ${orgName}`,
      text: `${user.name || user.username} invited you to join the organization "${orgName}" on Vox` +
        ` as ${
          orgRole === "admin" ? "an admin" : "a member"
        }.\n\nOpen this link to accept:\n${acceptUrl}\n\n` +
        `The link works once and expires in ${INVITE_TTL_SECONDS / 86400} days. ` +
        `If you did not expect it, ignore this message.\n`,
    });
  } catch (err) {
    // The invite stands (its link is shown to the admin once); the admin can pass it on.
    ctx.log.error("invite mail failed", { error: err instanceof MailError ? err.message : String(err) });
  }
  return { invite, acceptUrl };
}

/** Revokes an open invite (the organization's admins only); its seat frees. */
export async function revokeInvite(
  ctx: Pick<OrgContext, "sql" | "ip">,
  user: AuthUser,
  id: number,
  inviteId: number,
): Promise<void> {
  await requireOrgAdmin(ctx.sql, user, id);
  const [r] = await ctx.sql`
    UPDATE invite_tokens SET revoked_at = now()
    WHERE id = ${inviteId} AND organization_id = ${id} AND used_at IS NULL AND revoked_at IS NULL
    RETURNING id`;
  if (!r) throw new HttpError(404, "invite_not_found", `No open invite ${inviteId} in this organization`);
  await recordAudit(ctx.sql, {
    action: "organization.invite_revoked",
    actorUserId: user.id,
    targetType: "organization",
    targetId: id,
    ip: ctx.ip,
    details: { inviteId },
  });
}

/** What the invite page shows to whoever holds the link. */
export interface InviteInfo {
  status: "open" | "expired" | "used" | "revoked" | "unknown";
  organization?: { id: number; name: string; verified: boolean };
  email?: string;
  orgRole?: OrgRole;
  expiresAt?: string;
  /** Whether an account with the invited address exists (sign in to accept, else create one). */
  accountExists?: boolean;
}

const TOKEN_RE = /^[a-z2-7]{32}$/;

/** Facts about an invite link for the page that accepts it; never throws for a bad token. */
export async function inspectInvite(sql: Db, token: string): Promise<InviteInfo> {
  if (!TOKEN_RE.test(token)) return { status: "unknown" };
  const [r] = await sql<
    (InviteRow & { orgId: number; orgName: string; verified: boolean; exists: boolean })[]
  >`
    SELECT t.id, t.email, t.org_role, t.invited_by, t.created_at, t.expires_at, t.used_at, t.revoked_at,
           o.id AS org_id, o.name AS org_name, o.verified,
           EXISTS (SELECT 1 FROM users u WHERE lower(u.email) = lower(t.email)) AS exists
    FROM invite_tokens t JOIN organizations o ON o.id = t.organization_id
    WHERE t.token_hash = ${hashToken(token)}`;
  if (!r) return { status: "unknown" };
  const invite = toInvite(r);
  if (invite.status !== "open") return { status: invite.status };
  return {
    status: "open",
    organization: { id: r.orgId, name: r.orgName, verified: r.verified },
    email: r.email,
    orgRole: r.orgRole,
    expiresAt: invite.expiresAt,
    accountExists: r.exists,
  };
}

/** Locks an invite and refuses one that cannot be accepted; inside the accepting transaction. */
async function openInvite(tx: Db, token: string): Promise<InviteRow & { organizationId: number }> {
  const invalid = new HttpError(404, "invite_invalid", "This invite link is not valid");
  if (!TOKEN_RE.test(token)) throw invalid;
  const [r] = await tx<(InviteRow & { organizationId: number })[]>`
    SELECT id, organization_id, email, org_role, invited_by, created_at, expires_at, used_at, revoked_at
    FROM invite_tokens WHERE token_hash = ${hashToken(token)} FOR UPDATE`;
  if (!r) throw invalid;
  if (r.usedAt) throw new HttpError(410, "invite_used", "This invite was already accepted");
  if (r.revokedAt) throw new HttpError(410, "invite_revoked", "This invite was revoked by the organization");
  if (r.expiresAt.getTime() <= Date.now()) {
    throw new HttpError(410, "invite_expired", "This invite has expired; ask the organization for a new one");
  }
  await tx`SELECT id FROM organizations WHERE id = ${r.organizationId} FOR UPDATE`;
  // An admin invite counts toward the admin limit from the start, so accepting cannot exceed it.
  return r;
}

async function join(tx: Db, invite: InviteRow & { organizationId: number }, userId: number): Promise<void> {
  await tx`
    UPDATE users SET organization_id = ${invite.organizationId}, org_role = ${invite.orgRole}, updated_at = now()
    WHERE id = ${userId}`;
  await tx`UPDATE invite_tokens SET used_at = now(), used_by = ${userId} WHERE id = ${invite.id}`;
}

/**
 * The signed-in caller accepts an invite sent to their address: they join with the invite's
 * role and its seat. A member of another organization must leave it first (409).
 */
export async function acceptInvite(
  ctx: Pick<OrgContext, "sql" | "ip">,
  user: AuthUser,
  token: string,
): Promise<Organization> {
  const invite = await ctx.sql.begin(async (tx) => {
    const invite = await openInvite(tx, token);
    const [me] = await tx<{ email: string; organizationId: number | null }[]>`
      SELECT email, organization_id FROM users WHERE id = ${user.id} FOR UPDATE`;
    if (me.email.toLowerCase() !== invite.email.toLowerCase()) {
      throw new HttpError(
        403,
        "invite_other_address",
        "This invite was sent to another email address; sign in with that account to accept it",
      );
    }
    if (me.organizationId === invite.organizationId) {
      throw new HttpError(409, "already_member", "You are already a member of this organization");
    }
    if (me.organizationId !== null) {
      throw new HttpError(
        409,
        "already_in_organization",
        "You belong to another organization; leave it before accepting this invite",
      );
    }
    await join(tx, invite, user.id);
    return invite;
  });
  await recordAudit(ctx.sql, {
    action: "organization.member_joined",
    actorUserId: user.id,
    targetType: "organization",
    targetId: invite.organizationId,
    ip: ctx.ip,
    details: { inviteId: invite.id },
  });
  return await loadOrg(ctx.sql, invite.organizationId, invite.orgRole);
}

/**
 * Accepts an invite by creating the account: the link was mailed to the address, which proves
 * the mailbox, so the account is active at once with the password chosen here. An address that
 * already has an account is refused (409): its owner signs in and accepts. Returns the user id.
 */
export async function acceptInviteAsNewUser(
  ctx: Pick<OrgContext, "sql" | "ip">,
  token: string,
  input: { password: string; name?: string; username?: string },
): Promise<{ userId: number; organizationId: number }> {
  const peek = await inspectInvite(ctx.sql, token);
  if (peek.status === "open" && peek.email) {
    const problem = passwordProblem(input.password, { email: peek.email, username: input.username });
    if (problem) throw new HttpError(400, "weak_password", problem, { details: { field: "password" } });
  }
  const passwordHash = await hashPassword(input.password);
  const result = await ctx.sql.begin(async (tx) => {
    const sql = tx as unknown as Sql;
    const invite = await openInvite(sql, token);
    const [existing] = await sql`SELECT 1 FROM users WHERE lower(email) = lower(${invite.email})`;
    if (existing) {
      throw new HttpError(
        409,
        "account_exists",
        "An account with this address exists: sign in with it, then open the invite link again",
      );
    }
    const username = await freeUsername(sql, invite.email, input.username);
    const [u] = await sql<{ id: number }[]>`
      INSERT INTO users (name, username, email, role, password_hash, activated_at, password_changed_at)
      VALUES (${input.name?.trim() || username}, ${username}, ${invite.email}, 'basic', ${passwordHash},
              now(), now())
      RETURNING id`;
    await createDefaultProject(sql, u.id);
    await join(sql, invite, u.id);
    return { userId: u.id, organizationId: invite.organizationId, inviteId: invite.id };
  });
  await recordAudit(ctx.sql, {
    action: "organization.member_joined",
    actorUserId: result.userId,
    targetType: "organization",
    targetId: result.organizationId,
    ip: ctx.ip,
    details: { inviteId: result.inviteId, newAccount: true },
  });
  return { userId: result.userId, organizationId: result.organizationId };
}

/** One organization as the system administrator's list shows it. */
export interface OrgSummary {
  id: number;
  name: string;
  address: string | null;
  verified: boolean;
  verifiedAt: string | null;
  createdAt: string;
  members: number;
  paidSeats: number;
  providers: { id: string; name: string }[];
}

/** Every organization, unverified first (the system administrator's list). */
export async function listOrganizations(sql: Db): Promise<OrgSummary[]> {
  const rows = await sql<
    (Omit<OrgSummary, "verifiedAt" | "createdAt"> & { verifiedAt: Date | null; createdAt: Date })[]
  >`
    SELECT o.id, o.name, o.address, o.verified, o.verified_at, o.created_at,
           (SELECT count(*)::int FROM users u WHERE u.organization_id = o.id) AS members,
           vox_org_paid_seats(o.id) AS paid_seats,
           coalesce((SELECT json_agg(json_build_object('id', p.id, 'name', p.name) ORDER BY p.name)
                     FROM providers p WHERE p.organization_id = o.id), '[]'::json) AS providers
    FROM organizations o ORDER BY o.verified, o.created_at DESC, o.id DESC LIMIT 500`;
  return rows.map((r) => ({ ...r, verifiedAt: iso(r.verifiedAt), createdAt: r.createdAt.toISOString() }));
}

/**
 * The system administrator marks an organization verified (or not) and, optionally, names the
 * providers that are the organization's: public pages show the verified badge beside them.
 */
export async function setVerified(
  ctx: Pick<OrgContext, "sql" | "ip">,
  admin: AuthUser,
  id: number,
  input: { verified: boolean; providerIds?: string[] },
): Promise<OrgSummary> {
  await ctx.sql.begin(async (tx) => {
    const [o] = await tx`
      UPDATE organizations
      SET verified = ${input.verified}, verified_at = CASE WHEN ${input.verified} THEN now() END,
          updated_at = now()
      WHERE id = ${id} RETURNING id`;
    if (!o) throw notFound(id);
    if (input.providerIds) {
      const ids = input.providerIds;
      const found = await tx<{ id: string }[]>`SELECT id FROM providers WHERE id IN ${
        tx(ids.length ? ids : [""])
      }`;
      const missing = ids.filter((p) => !found.some((f) => f.id === p));
      if (missing.length) {
        throw new HttpError(400, "invalid_input", `providerIds: no provider ${missing.join(", ")}`, {
          details: { issues: [{ field: "providerIds", message: `no provider ${missing.join(", ")}` }] },
        });
      }
      await tx`UPDATE providers SET organization_id = NULL WHERE organization_id = ${id}`;
      if (ids.length) await tx`UPDATE providers SET organization_id = ${id} WHERE id IN ${tx(ids)}`;
    }
  });
  await recordAudit(ctx.sql, {
    action: input.verified ? "organization.verified" : "organization.unverified",
    actorUserId: admin.id,
    targetType: "organization",
    targetId: id,
    ip: ctx.ip,
    details: input.providerIds ? { providerIds: input.providerIds.join(",") } : undefined,
  });
  return (await listOrganizations(ctx.sql)).find((o) => o.id === id)!;
}

/**
 * Providers public pages mark with the verified badge, by id: those whose organization is
 * verified (with the organization's name) and entries curators verified (with their own).
 */
export async function verifiedProviders(sql: Db): Promise<Map<string, string>> {
  const rows = await sql<{ id: string; orgName: string }[]>`
    SELECT p.id, coalesce(o.name, p.name) AS org_name
    FROM providers p LEFT JOIN organizations o ON o.id = p.organization_id AND o.verified
    WHERE o.id IS NOT NULL OR p.verified`;
  return new Map(rows.map((r) => [r.id, r.orgName]));
}
