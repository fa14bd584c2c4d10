// Subscriptions as the payment provider reports them, and what they grant: a live solo
// subscription makes its user Premium; an organization's live seat purchases are its seats.
// Facts arrive in any order (webhooks are not ordered), so each is merged on its own terms and
// the grant is recomputed from the merged row every time.
import { recordAudit } from "../audit.ts";
import type { Db, Sql } from "../db.ts";
import { entitledSql } from "./accounts.ts";

/** Who a subscription is for, from the metadata Vox put on it at checkout. */
export interface SubscriptionOwner {
  kind: "solo" | "organization";
  userId: number | null;
  organizationId: number | null;
  seats: number;
}

/** The owner named by provider metadata (voxKind, voxUserId, voxOrganizationId, voxSeats), or null. */
export function ownerFromMeta(meta: unknown): SubscriptionOwner | null {
  const m = (meta ?? {}) as Record<string, string | undefined>;
  const seats = Number(m.voxSeats ?? "1");
  const id = (v: string | undefined) => (v && /^\d+$/.test(v) ? Number(v) : null);
  if (!Number.isInteger(seats) || seats < 1) return null;
  if (m.voxKind === "solo" && id(m.voxUserId)) {
    return { kind: "solo", userId: id(m.voxUserId), organizationId: null, seats };
  }
  if (m.voxKind === "organization" && id(m.voxOrganizationId)) {
    return { kind: "organization", userId: null, organizationId: id(m.voxOrganizationId), seats };
  }
  return null;
}

/** The row for `ref`, created from `owner` when no event has named it yet; null if the owner is gone. */
export async function subscriptionRow(
  tx: Db,
  ref: string,
  owner: SubscriptionOwner,
): Promise<{ id: number } | null> {
  const exists = owner.userId !== null
    ? await tx`SELECT 1 FROM users WHERE id = ${owner.userId}`
    : await tx`SELECT 1 FROM organizations WHERE id = ${owner.organizationId}`;
  if (!exists.length) return null;
  const [row] = await tx<{ id: number }[]>`
    INSERT INTO billing_subscriptions (provider_ref, user_id, organization_id, kind, seats)
    VALUES (${ref}, ${owner.userId}, ${owner.organizationId}, ${owner.kind}, ${owner.seats})
    ON CONFLICT (provider, provider_ref) DO UPDATE SET updated_at = now()
    RETURNING id`;
  return row;
}

/** What a subscription event says, at the provider's event time. */
export interface StatusFacts {
  status: string;
  at: Date;
  seats: number;
  cancelAtPeriodEnd: boolean;
  currentPeriodEnd: Date | null;
  endedAt: Date | null;
}

/**
 * Merges a subscription event unless a newer one was merged already (an older event delivered
 * late changes nothing), and a cancelled subscription never comes back to life.
 */
export async function mergeStatus(tx: Db, id: number, f: StatusFacts): Promise<void> {
  const [cur] = await tx<{ status: string | null; statusEventAt: Date | null; endsAt: Date | null }[]>`
    SELECT status, status_event_at, ends_at FROM billing_subscriptions WHERE id = ${id} FOR UPDATE`;
  if (cur.statusEventAt && cur.statusEventAt > f.at) return;
  if (cur.status === "canceled" && f.status !== "canceled") return;
  let endsAt: Date | null;
  if (f.status === "canceled" || f.status === "incomplete_expired") endsAt = f.endedAt ?? f.at;
  else if (f.status === "unpaid") endsAt = cur.endsAt ?? f.currentPeriodEnd;
  else if (f.status === "past_due") endsAt = cur.endsAt;
  else endsAt = f.cancelAtPeriodEnd ? f.currentPeriodEnd : null;
  await tx`
    UPDATE billing_subscriptions
    SET status = ${f.status}, status_event_at = ${f.at}, seats = ${f.seats},
        cancel_at_period_end = ${f.cancelAtPeriodEnd},
        current_period_end = coalesce(${f.currentPeriodEnd}, current_period_end),
        ends_at = ${endsAt}, updated_at = now()
    WHERE id = ${id}`;
}

/** A paid period: powers last at least until `periodEnd`. */
export async function markPaid(tx: Db, id: number, periodEnd: Date | null): Promise<void> {
  await tx`
    UPDATE billing_subscriptions
    SET paid_through = greatest(paid_through, coalesce(${periodEnd}, now())),
        current_period_end = greatest(current_period_end, ${periodEnd}), updated_at = now()
    WHERE id = ${id}`;
}

/** The last payment failed for good: powers end when the paid period does. */
export async function markFinalFailure(tx: Db, id: number, fallbackEnd: Date | null): Promise<void> {
  await tx`
    UPDATE billing_subscriptions
    SET ends_at = coalesce(ends_at, paid_through, current_period_end, ${fallbackEnd}), updated_at = now()
    WHERE id = ${id}`;
}

/** The subscription's latest payment was refunded in full: powers end now. */
export async function revoke(tx: Db, id: number, at = new Date()): Promise<void> {
  await tx`UPDATE billing_subscriptions SET revoked_at = coalesce(revoked_at, ${at}), updated_at = now()
           WHERE id = ${id}`;
}

/**
 * Applies what the owner's subscriptions grant at `now`: a user with a live solo subscription
 * is Premium; one whose solo subscriptions all ended goes back to Basic (their private items
 * stay theirs and readable; lib/workflows.ts refuses new private ones). Principal, fellow and
 * a Premium role given by the admin without any subscription are left alone. For an
 * organization, each seat purchase is active while its subscription is.
 */
export async function syncGrant(tx: Db, subscriptionId: number, now = new Date()): Promise<void> {
  const [s] = await tx<{ userId: number | null; organizationId: number | null }[]>`
    SELECT user_id, organization_id FROM billing_subscriptions WHERE id = ${subscriptionId}`;
  if (!s) return;
  if (s.userId !== null) await syncUserPlan(tx, s.userId, now);
  else await syncOrgSeats(tx, subscriptionId, now);
}

async function syncUserPlan(tx: Db, userId: number, now: Date): Promise<void> {
  const [u] = await tx<{ role: string; live: boolean; any: boolean }[]>`
    SELECT u.role,
           EXISTS (SELECT 1 FROM billing_subscriptions s WHERE s.user_id = u.id AND ${
    entitledSql(tx, now)
  }) AS live,
           EXISTS (SELECT 1 FROM billing_subscriptions s WHERE s.user_id = u.id AND s.paid_through IS NOT NULL) AS any
    FROM users u WHERE u.id = ${userId} FOR UPDATE`;
  if (!u) return;
  const next = u.live && u.role === "basic"
    ? "premium"
    : !u.live && u.any && u.role === "premium"
    ? "basic"
    : null;
  if (!next) return;
  await tx`UPDATE users SET role = ${next}, updated_at = now() WHERE id = ${userId}`;
  await recordAudit(tx as Sql, {
    action: "billing.plan_changed",
    targetType: "user",
    targetId: userId,
    details: { from: u.role, to: next },
  });
}

async function syncOrgSeats(tx: Db, subscriptionId: number, now: Date): Promise<void> {
  const [s] = await tx<{ organizationId: number; seats: number; live: boolean; status: string | null }[]>`
    SELECT s.organization_id, s.seats, ${entitledSql(tx, now)} AS live, s.status
    FROM billing_subscriptions s WHERE s.id = ${subscriptionId}`;
  const status = s.live ? "active" : s.status === "canceled" ? "cancelled" : "expired";
  const changed = await tx<{ id: number }[]>`
    UPDATE organization_seats SET status = ${status}, seats = ${s.seats},
           expires_at = CASE WHEN ${status} = 'active' THEN NULL ELSE coalesce(expires_at, ${now}) END
    WHERE subscription_id = ${subscriptionId} AND (status <> ${status} OR seats <> ${s.seats})
    RETURNING id`;
  if (changed.length) {
    await recordAudit(tx as Sql, {
      action: "billing.seats_changed",
      targetType: "organization",
      targetId: s.organizationId,
      details: { subscriptionId, seats: s.seats, status },
    });
  }
}

/**
 * Ends the grants whose time has come (cancelled at period end, final payment failure): run
 * periodically, so a lapse takes effect even if the provider's last event never arrives.
 * Answers how many subscriptions it re-applied.
 */
export async function applyLapsed(sql: Sql, now = new Date()): Promise<number> {
  const due = await sql<{ id: number }[]>`
    SELECT s.id FROM billing_subscriptions s
    WHERE s.ends_at <= ${now} AND (
      EXISTS (SELECT 1 FROM users u WHERE u.id = s.user_id AND u.role = 'premium')
      OR EXISTS (SELECT 1 FROM organization_seats o WHERE o.subscription_id = s.id AND o.status = 'active'))`;
  for (const { id } of due) await sql.begin((tx) => syncGrant(tx, id, now));
  return due.length;
}
