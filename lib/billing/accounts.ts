// Who pays and what they have paid: the billing owner (a solo user or an organization), its
// customer at the payment provider (the reference sealed, SPEC §5), its subscriptions and its
// payment history as the console shows them.
import type { Db, Sql } from "../db.ts";
import { HttpError } from "../errors.ts";
import type { AuthUser } from "../roles.ts";
import { open, seal } from "../secrets.ts";
import type { BillingOwner, PaymentProvider } from "./provider.ts";

/** A billing owner as routes resolve it from the caller. */
export type Owner =
  | { kind: "user"; userId: number; email: string; name: string; role: string }
  | { kind: "organization"; organizationId: number; name: string; email: string };

/** The caller as a solo billing owner. */
export function userOwner(user: AuthUser): Owner {
  return {
    kind: "user",
    userId: user.id,
    email: user.email,
    name: user.name || user.username,
    role: user.role,
  };
}

/**
 * The organization `id` as a billing owner for `user`: 404 unless they belong to it (an outsider
 * learns nothing, not even that it exists), 403 unless they are one of its admins.
 */
export async function organizationOwner(sql: Sql, user: AuthUser, id: number): Promise<Owner> {
  const [org] = await sql<
    { id: number; name: string }[]
  >`SELECT id, name FROM organizations WHERE id = ${id}`;
  if (!org || user.organizationId !== id) {
    throw new HttpError(404, "not_found", `There is no organization ${id}`);
  }
  if (user.orgRole !== "admin") {
    throw new HttpError(403, "forbidden", "Only the organization's admins may see or change its billing");
  }
  return { kind: "organization", organizationId: id, name: org.name, email: user.email };
}

const context = (o: Owner) =>
  o.kind === "user"
    ? `billing_customer:user:${o.userId}`
    : `billing_customer:organization:${o.organizationId}`;

/** The owner's customer reference at the provider, created (and stored sealed) on first use. */
export async function ensureCustomer(
  sql: Sql,
  key: CryptoKey,
  provider: PaymentProvider,
  owner: Owner,
): Promise<string> {
  const existing = await storedCustomer(sql, key, owner);
  if (existing) return existing;
  const who: BillingOwner = owner.kind === "user"
    ? { kind: "user", userId: owner.userId, email: owner.email, name: owner.name }
    : { kind: "organization", organizationId: owner.organizationId, email: owner.email, name: owner.name };
  const ref = await provider.createCustomer(who);
  const sealed = await seal(key, ref, context(owner));
  // Two first purchases at once: the first stored reference wins and both use it.
  const won = owner.kind === "user"
    ? await sql`UPDATE users SET billing_customer_enc = ${sealed}
                WHERE id = ${owner.userId} AND billing_customer_enc IS NULL RETURNING id`
    : await sql`UPDATE organizations SET billing_customer_enc = ${sealed}
                WHERE id = ${owner.organizationId} AND billing_customer_enc IS NULL RETURNING id`;
  return won.length ? ref : (await storedCustomer(sql, key, owner))!;
}

/** The owner's customer reference, or null before their first purchase. */
export async function storedCustomer(sql: Db, key: CryptoKey, owner: Owner): Promise<string | null> {
  const [row] = owner.kind === "user"
    ? await sql<
      { enc: string | null }[]
    >`SELECT billing_customer_enc AS enc FROM users WHERE id = ${owner.userId}`
    : await sql<{ enc: string | null }[]>`
        SELECT billing_customer_enc AS enc FROM organizations WHERE id = ${owner.organizationId}`;
  return row?.enc ? await open(key, row.enc, context(owner)) : null;
}

/** SQL condition selecting the owner's rows of a table with user_id / organization_id. */
export function ownerWhere(sql: Db, owner: Owner, table = "") {
  const t = table ? `${table}.` : "";
  return owner.kind === "user"
    ? sql`${sql.unsafe(t)}user_id = ${owner.userId} AND ${sql.unsafe(t)}organization_id IS NULL`
    : sql`${sql.unsafe(t)}organization_id = ${owner.organizationId}`;
}

/** One subscription as the API shows it. */
export interface SubscriptionView {
  id: number;
  kind: "solo" | "organization";
  seats: number;
  status: string;
  active: boolean;
  cancelAtPeriodEnd: boolean;
  currentPeriodEnd: string | null;
  paidThrough: string | null;
  endsAt: string | null;
  createdAt: string;
}

/** SQL: whether a billing_subscriptions row (alias s) gives its powers at `now`. */
export function entitledSql(sql: Db, now: Date, alias = "s") {
  const a = sql.unsafe(alias);
  return sql`(${a}.paid_through IS NOT NULL AND ${a}.revoked_at IS NULL
    AND coalesce(${a}.status, 'active') NOT IN ('incomplete', 'incomplete_expired')
    AND (${a}.ends_at IS NULL OR ${a}.ends_at > ${now}))`;
}

/** The owner's subscriptions, newest first. */
export async function listSubscriptions(
  sql: Db,
  owner: Owner,
  now = new Date(),
): Promise<SubscriptionView[]> {
  const rows = await sql<
    {
      id: number;
      kind: "solo" | "organization";
      seats: number;
      status: string | null;
      active: boolean;
      cancelAtPeriodEnd: boolean;
      currentPeriodEnd: Date | null;
      paidThrough: Date | null;
      endsAt: Date | null;
      revokedAt: Date | null;
      createdAt: Date;
    }[]
  >`
    SELECT s.id, s.kind, s.seats, s.status, ${entitledSql(sql, now)} AS active, s.cancel_at_period_end,
           s.current_period_end, s.paid_through, s.ends_at, s.revoked_at, s.created_at
    FROM billing_subscriptions s WHERE ${ownerWhere(sql, owner, "s")}
    ORDER BY s.id DESC`;
  return rows.map((r) => ({
    id: r.id,
    kind: r.kind,
    seats: r.seats,
    status: r.revokedAt ? "refunded" : r.status ?? (r.paidThrough ? "active" : "pending"),
    active: r.active,
    cancelAtPeriodEnd: r.cancelAtPeriodEnd,
    currentPeriodEnd: r.currentPeriodEnd?.toISOString() ?? null,
    paidThrough: r.paidThrough?.toISOString() ?? null,
    endsAt: (r.revokedAt ?? r.endsAt)?.toISOString() ?? null,
    createdAt: r.createdAt.toISOString(),
  }));
}

/** One payment (or refund) as the API shows it. */
export interface PaymentView {
  id: number;
  kind: string;
  seats: number;
  amountCents: number;
  refundedCents: number;
  /** What a fund return may still ask for: paid, not returned, not already requested. */
  refundableCents: number;
  currency: string;
  status: string;
  description: string;
  periodEnd: string | null;
  createdAt: string;
}

/** The owner's payments and refunds, newest first. */
export async function listPayments(sql: Db, owner: Owner): Promise<PaymentView[]> {
  const rows = await sql<
    (Omit<PaymentView, "createdAt" | "periodEnd"> & { createdAt: Date; periodEnd: Date | null })[]
  >`
    SELECT p.id, p.kind, p.seats, p.amount_cents, p.refunded_cents, p.currency, p.status, p.description,
           p.period_end, p.created_at,
           CASE WHEN p.kind = 'refund' OR p.status NOT IN ('succeeded', 'partially_refunded') THEN 0
                ELSE greatest(0, p.amount_cents - p.refunded_cents - coalesce((
                  SELECT sum(f.amount_cents) FROM fund_return_requests f
                  WHERE f.payment_history_id = p.id AND f.status = 'pending'), 0))::int
           END AS refundable_cents
    FROM payment_histories p WHERE ${ownerWhere(sql, owner, "p")}
    ORDER BY p.created_at DESC, p.id DESC LIMIT 200`;
  return rows.map((r) => ({
    ...r,
    periodEnd: r.periodEnd?.toISOString() ?? null,
    createdAt: r.createdAt.toISOString(),
  }));
}

/** The seats an organization has paid for and may use now (lib/orgs.ts counts them). */
export { paidSeats } from "../orgs.ts";
