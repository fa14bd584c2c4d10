// Fund returns (SPEC §3): a Premium user, or an organization's admin, asks for money back on
// one payment; the system admin approves (the refund is issued through the provider, recorded,
// and the plan adjusted) or rejects with a reason. The requester is told by mail either way.
import { recordAudit } from "../audit.ts";
import type { Db, Sql } from "../db.ts";
import { HttpError } from "../errors.ts";
import type { Logger } from "../log.ts";
import type { Mailer } from "../mailer.ts";
import type { AuthUser } from "../roles.ts";
import { type Owner, ownerWhere } from "./accounts.ts";
import type { PaymentProvider } from "./provider.ts";
import { refundPayment } from "./webhooks.ts";

/** A fund return as the API shows it. */
export interface FundReturnView {
  id: number;
  paymentId: number;
  organizationId: number | null;
  requester: { id: number; username: string; email: string };
  amountCents: number;
  paymentAmountCents: number;
  currency: string;
  reason: string;
  status: "pending" | "approved" | "rejected";
  reviewNote: string | null;
  reviewedAt: string | null;
  createdAt: string;
}

interface Row {
  id: number;
  paymentHistoryId: number;
  organizationId: number | null;
  userId: number;
  username: string;
  email: string;
  amountCents: number;
  paymentAmountCents: number;
  currency: string;
  reason: string;
  status: FundReturnView["status"];
  reviewNote: string | null;
  reviewedAt: Date | null;
  createdAt: Date;
}

const view = (r: Row): FundReturnView => ({
  id: r.id,
  paymentId: r.paymentHistoryId,
  organizationId: r.organizationId,
  requester: { id: r.userId, username: r.username, email: r.email },
  amountCents: r.amountCents,
  paymentAmountCents: r.paymentAmountCents,
  currency: r.currency,
  reason: r.reason,
  status: r.status,
  reviewNote: r.reviewNote,
  reviewedAt: r.reviewedAt?.toISOString() ?? null,
  createdAt: r.createdAt.toISOString(),
});

const select = (sql: Db) =>
  sql`
  SELECT f.id, f.payment_history_id, f.organization_id, f.user_id, u.username, u.email, f.amount_cents,
         p.amount_cents AS payment_amount_cents, p.currency, f.reason, f.status, f.review_note, f.reviewed_at,
         f.created_at
  FROM fund_return_requests f
  JOIN users u ON u.id = f.user_id
  JOIN payment_histories p ON p.id = f.payment_history_id`;

/**
 * Files a request on one of the owner's payments. A solo requester must be Premium; the amount
 * may not exceed what was paid, less what was returned and what open requests ask for.
 */
export async function requestFundReturn(
  sql: Sql,
  requester: AuthUser,
  owner: Owner,
  input: { paymentId: number; amountCents: number; reason: string },
): Promise<FundReturnView> {
  if (owner.kind === "user" && requester.role !== "premium") {
    throw new HttpError(403, "forbidden", "Only Premium users may request a fund return");
  }
  const id = await sql.begin(async (tx) => {
    const [p] = await tx<
      { id: number; amountCents: number; refundedCents: number; status: string; open: number }[]
    >`
      SELECT p.id, p.amount_cents, p.refunded_cents, p.status,
             coalesce((SELECT sum(f.amount_cents) FROM fund_return_requests f
                       WHERE f.payment_history_id = p.id AND f.status = 'pending'), 0)::int AS open
      FROM payment_histories p
      WHERE p.id = ${input.paymentId} AND ${ownerWhere(tx, owner, "p")} AND p.kind <> 'refund'
      FOR UPDATE`;
    if (!p) throw new HttpError(404, "payment_not_found", `There is no payment ${input.paymentId} of yours`);
    if (!["succeeded", "partially_refunded"].includes(p.status)) {
      throw new HttpError(
        409,
        "not_refundable",
        `Payment ${p.id} is ${p.status.replace("_", " ")}: nothing to return`,
      );
    }
    if (p.open > 0) {
      throw new HttpError(
        409,
        "fund_return_open",
        `Payment ${p.id} already has a fund return waiting for review`,
      );
    }
    const left = p.amountCents - p.refundedCents;
    if (input.amountCents > left) {
      throw new HttpError(
        400,
        "invalid_input",
        `amountCents: at most ${left} cents of payment ${p.id} can be returned (paid ${p.amountCents}, returned ${p.refundedCents})`,
        { details: { issues: [{ field: "amountCents", message: `must be at most ${left}` }] } },
      );
    }
    const [row] = await tx<{ id: number }[]>`
      INSERT INTO fund_return_requests (user_id, organization_id, payment_history_id, amount_cents, reason)
      VALUES (${requester.id}, ${owner.kind === "organization" ? owner.organizationId : null}, ${p.id},
              ${input.amountCents}, ${input.reason})
      RETURNING id`;
    await recordAudit(tx as unknown as Sql, {
      action: "fund_return.requested",
      actorUserId: requester.id,
      targetType: "fund_return",
      targetId: row.id,
      details: { paymentId: p.id, amountCents: input.amountCents },
    });
    return row.id;
  });
  return (await fundReturn(sql, id))!;
}

/** One request, or null. */
export async function fundReturn(sql: Db, id: number): Promise<FundReturnView | null> {
  const [r] = await sql<Row[]>`${select(sql)} WHERE f.id = ${id}`;
  return r ? view(r) : null;
}

/** The owner's requests (a user's own solo ones, or all of an organization's), newest first. */
export async function listOwnFundReturns(sql: Db, owner: Owner): Promise<FundReturnView[]> {
  const rows = owner.kind === "user"
    ? await sql<Row[]>`${select(sql)} WHERE f.user_id = ${owner.userId} AND f.organization_id IS NULL
                       ORDER BY f.id DESC LIMIT 200`
    : await sql<Row[]>`${
      select(sql)
    } WHERE f.organization_id = ${owner.organizationId} ORDER BY f.id DESC LIMIT 200`;
  return rows.map(view);
}

/** Every request (optionally of one status), oldest pending first for the admin's queue. */
export async function listFundReturns(sql: Db, status?: FundReturnView["status"]): Promise<FundReturnView[]> {
  const rows = await sql<Row[]>`
    ${select(sql)} ${status ? sql`WHERE f.status = ${status}` : sql``}
    ORDER BY (f.status = 'pending') DESC, f.created_at ASC, f.id ASC LIMIT 500`;
  return rows.map(view);
}

/** What approve/reject need besides the database. */
export interface ReviewDeps {
  sql: Sql;
  provider: PaymentProvider;
  mailer: Mailer;
  log: Logger;
  publicUrl: string;
}

async function pendingOr409(sql: Db, id: number): Promise<FundReturnView> {
  const fr = await fundReturn(sql, id);
  if (!fr) throw new HttpError(404, "fund_return_not_found", `There is no fund return ${id}`);
  if (fr.status !== "pending") {
    throw new HttpError(409, "already_reviewed", `Fund return ${id} was already ${fr.status}`);
  }
  return fr;
}

/**
 * Approves: issues the refund through the provider (idempotent per request, so a retry never
 * refunds twice), records it, adjusts the plan (a full refund of the latest payment ends the
 * subscription now) and mails the requester.
 */
export async function approveFundReturn(
  d: ReviewDeps,
  id: number,
  adminId: number,
  note: string | null,
): Promise<FundReturnView> {
  const fr = await pendingOr409(d.sql, id);
  const [p] = await d.sql<
    { providerPaymentRef: string | null; providerIntentRef: string | null; subscriptionRef: string | null }[]
  >`
    SELECT p.provider_payment_ref, p.provider_intent_ref, s.provider_ref AS subscription_ref
    FROM payment_histories p LEFT JOIN billing_subscriptions s ON s.id = p.subscription_id
    WHERE p.id = ${fr.paymentId}`;
  let intent = p.providerIntentRef;
  if (!intent && p.providerPaymentRef) {
    intent = await d.provider.paymentOfInvoice(p.providerPaymentRef);
    if (intent) {
      await d.sql`UPDATE payment_histories SET provider_intent_ref = ${intent} WHERE id = ${fr.paymentId}`;
    }
  }
  if (!intent) {
    throw new HttpError(
      409,
      "no_provider_payment",
      `Payment ${fr.paymentId} has no payment at the provider to refund`,
    );
  }
  const refund = await d.provider.refund(intent, fr.amountCents, `vox-fund-return-${id}`);
  const revoked = await d.sql.begin(async (tx) => {
    const done = await tx`
      UPDATE fund_return_requests
      SET status = 'approved', reviewed_by = ${adminId}, reviewed_at = now(), review_note = ${note},
          refund_ref = ${refund.ref}
      WHERE id = ${id} AND status = 'pending' RETURNING id`;
    if (!done.length) return false;
    const [pay] = await tx<{ refundedCents: number; userId: number | null; organizationId: number | null }[]>`
      SELECT refunded_cents, user_id, organization_id FROM payment_histories WHERE id = ${fr.paymentId} FOR UPDATE`;
    await tx`
      INSERT INTO payment_histories (user_id, organization_id, provider, provider_payment_ref, kind, seats,
                                     amount_cents, currency, status, description, refunds_payment_id)
      VALUES (${pay.userId}, ${pay.organizationId}, ${d.provider.name}, ${refund.ref}, 'refund', 0,
              ${-refund.amountCents}, ${fr.currency}, 'succeeded', ${`Fund return ${id}`}, ${fr.paymentId})
      ON CONFLICT (provider, provider_payment_ref) WHERE provider_payment_ref IS NOT NULL DO NOTHING`;
    await refundPayment(tx, fr.paymentId, pay.refundedCents + refund.amountCents);
    await recordAudit(tx as unknown as Sql, {
      action: "fund_return.approved",
      actorUserId: adminId,
      targetType: "fund_return",
      targetId: id,
      details: { amountCents: refund.amountCents, paymentId: fr.paymentId },
    });
    const [s] = await tx<{ revoked: boolean }[]>`
      SELECT s.revoked_at IS NOT NULL AS revoked FROM payment_histories p
      JOIN billing_subscriptions s ON s.id = p.subscription_id WHERE p.id = ${fr.paymentId}`;
    return s?.revoked ?? false;
  });
  // A subscription refunded in full must not renew and charge again.
  if (revoked && p.subscriptionRef) {
    await d.provider.cancelSubscription(p.subscriptionRef, false).catch((err) =>
      d.log.error("billing: could not cancel a refunded subscription", { error: String(err), fundReturn: id })
    );
  }
  const after = (await fundReturn(d.sql, id))!;
  await notify(d, after);
  return after;
}

/** Rejects with a reason the requester is mailed. */
export async function rejectFundReturn(
  d: ReviewDeps,
  id: number,
  adminId: number,
  reason: string,
): Promise<FundReturnView> {
  await pendingOr409(d.sql, id);
  const done = await d.sql`
    UPDATE fund_return_requests
    SET status = 'rejected', reviewed_by = ${adminId}, reviewed_at = now(), review_note = ${reason}
    WHERE id = ${id} AND status = 'pending' RETURNING id`;
  if (!done.length) throw new HttpError(409, "already_reviewed", `Fund return ${id} was already reviewed`);
  await recordAudit(d.sql, {
    action: "fund_return.rejected",
    actorUserId: adminId,
    targetType: "fund_return",
    targetId: id,
  });
  const after = (await fundReturn(d.sql, id))!;
  await notify(d, after);
  return after;
}

const dollars = (cents: number, currency: string) => `${(cents / 100).toFixed(2)} ${currency.toUpperCase()}`;

async function notify(d: ReviewDeps, fr: FundReturnView): Promise<void> {
  const approved = fr.status === "approved";
  const text = [
    `Hello ${fr.requester.username},`,
    "",
    approved
      ? `your fund return request #${fr.id} was approved: ${
        dollars(fr.amountCents, fr.currency)
      } is on its way back to the card you paid with.`
      : `your fund return request #${fr.id} for ${dollars(fr.amountCents, fr.currency)} was rejected.`,
    ...(fr.reviewNote ? ["", `${approved ? "Note" : "Reason"}: ${fr.reviewNote}`] : []),
    "",
    `Your billing page: ${d.publicUrl}${
      fr.organizationId ? "/console/organization/billing" : "/console/billing"
    }`,
  ].join("\n");
  try {
    await d.mailer.send({
      to: fr.requester.email,
      subject: `Vox: fund return #${fr.id} ${approved ? "approved" : "rejected"}`,
      text,
    });
  } catch (err) {
    // The decision stands and the page shows it; a mail outage must not undo a refund.
    d.log.error("billing: could not mail a fund return decision", { error: String(err), fundReturn: fr.id });
  }
}
