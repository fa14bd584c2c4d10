// Stripe's webhook events, each processed once (stripe_events) in one transaction with the
// changes it causes, so a retried delivery changes nothing twice and a failure part-way leaves
// nothing half done (Stripe retries it). Events are not ordered: every handler merges its facts
// into the subscription row (lib/billing/subscriptions.ts) and recomputes the grant.
import type { Db, Sql } from "../db.ts";
import type { Logger } from "../log.ts";
import type { PaymentProvider, ProviderEvent } from "./provider.ts";
import {
  markFinalFailure,
  markPaid,
  mergeStatus,
  ownerFromMeta,
  revoke,
  subscriptionRow,
  syncGrant,
} from "./subscriptions.ts";

type Obj = Record<string, unknown>;

/** The event types Vox acts on (the README lists them for the Stripe dashboard). */
export const HANDLED_EVENTS = [
  "checkout.session.completed",
  "customer.subscription.created",
  "customer.subscription.updated",
  "customer.subscription.deleted",
  "invoice.paid",
  "invoice.payment_failed",
  "charge.refunded",
] as const;

/** What became of a delivery. */
export type WebhookOutcome = "processed" | "duplicate" | "ignored";

const at = (secs: unknown) => (typeof secs === "number" ? new Date(secs * 1000) : null);
const refOf = (v: unknown) =>
  (typeof v === "string" ? v : (v as Obj | null)?.id as string | undefined) ?? null;

/** The subscription an invoice belongs to and the metadata it carries (old and new API shapes). */
function invoiceSubscription(inv: Obj): { ref: string | null; meta: unknown } {
  const details = ((inv.parent as Obj | undefined)?.subscription_details ?? inv.subscription_details) as
    | Obj
    | undefined;
  return { ref: refOf(details?.subscription ?? inv.subscription), meta: details?.metadata };
}

/**
 * Processes one verified event. Network calls to the provider happen before the transaction;
 * the event id is claimed inside it, so concurrent deliveries of one event serialize on it.
 */
export async function processEvent(
  sql: Sql,
  provider: PaymentProvider,
  event: ProviderEvent,
  log: Logger,
): Promise<WebhookOutcome> {
  const obj = event.data.object;
  const handled = (HANDLED_EVENTS as readonly string[]).includes(event.type);
  // The payment an invoice was paid with is what a refund is issued on (looked up outside the
  // transaction; a later refund looks it up again when this failed).
  let intent: string | null = null;
  if (event.type === "invoice.paid") {
    intent = await provider.paymentOfInvoice(String(obj.id)).catch((err) => {
      log.warn("billing: could not look up an invoice's payment", { error: String(err) });
      return null;
    });
  }
  return await sql.begin(async (tx) => {
    const claimed = await tx`
      INSERT INTO stripe_events (id, type, processed_at) VALUES (${event.id}, ${event.type}, now())
      ON CONFLICT (id) DO NOTHING RETURNING id`;
    if (!claimed.length) return "duplicate";
    if (!handled) return "ignored";
    const eventAt = at(event.created) ?? new Date();
    switch (event.type) {
      case "checkout.session.completed": {
        const ref = refOf(obj.subscription);
        const owner = ownerFromMeta(obj.metadata);
        if (obj.mode !== "subscription" || !ref || !owner) return "ignored";
        const row = await subscriptionRow(tx, ref, owner);
        if (!row) return "ignored";
        await syncGrant(tx, row.id);
        return "processed";
      }
      case "customer.subscription.created":
      case "customer.subscription.updated":
      case "customer.subscription.deleted": {
        const owner = ownerFromMeta(obj.metadata);
        if (!owner) return "ignored";
        const item = ((obj.items as Obj | undefined)?.data as Obj[] | undefined)?.[0];
        const row = await subscriptionRow(tx, String(obj.id), owner);
        if (!row) return "ignored";
        await mergeStatus(tx, row.id, {
          status: event.type === "customer.subscription.deleted" ? "canceled" : String(obj.status),
          at: eventAt,
          seats: Math.max(1, Number(item?.quantity ?? owner.seats) || 1),
          cancelAtPeriodEnd: obj.cancel_at_period_end === true,
          currentPeriodEnd: at(item?.current_period_end ?? obj.current_period_end),
          endedAt: at(obj.ended_at),
        });
        await syncGrant(tx, row.id);
        return "processed";
      }
      case "invoice.paid":
      case "invoice.payment_failed": {
        const { ref, meta } = invoiceSubscription(obj);
        const owner = ownerFromMeta(meta);
        if (!ref || !owner) return "ignored";
        const row = await subscriptionRow(tx, ref, owner);
        if (!row) return "ignored";
        const line = ((obj.lines as Obj | undefined)?.data as Obj[] | undefined)?.[0];
        const periodEnd = at((line?.period as Obj | undefined)?.end);
        const seats = Math.max(1, Number(line?.quantity ?? owner.seats) || 1);
        const paid = event.type === "invoice.paid";
        const amount = Number(paid ? obj.amount_paid : obj.amount_due) || 0;
        const [payment] = await tx<{ id: number }[]>`
          INSERT INTO payment_histories (user_id, organization_id, provider, provider_payment_ref,
                                         provider_intent_ref, subscription_id, kind, seats, amount_cents,
                                         currency, status, description, period_end)
          VALUES (${owner.userId}, ${owner.organizationId}, 'stripe', ${String(obj.id)}, ${intent}, ${row.id},
                  ${owner.kind === "solo" ? "solo_seat" : "organization_seats"}, ${seats}, ${amount},
                  ${String(obj.currency ?? "usd")}, ${paid ? "succeeded" : "failed"},
                  ${
          owner.kind === "solo" ? "Premium, monthly" : `${seats} organization seats, monthly`
        }, ${periodEnd})
          ON CONFLICT (provider, provider_payment_ref) WHERE provider_payment_ref IS NOT NULL
          DO UPDATE SET
            -- A failed invoice paid later becomes a payment; a paid one never turns back.
            status = CASE WHEN excluded.status = 'succeeded' AND payment_histories.status = 'failed'
                          THEN 'succeeded' ELSE payment_histories.status END,
            amount_cents = CASE WHEN excluded.status = 'succeeded' THEN excluded.amount_cents
                                ELSE payment_histories.amount_cents END,
            provider_intent_ref = coalesce(payment_histories.provider_intent_ref, excluded.provider_intent_ref),
            updated_at = now()
          RETURNING id`;
        if (paid) {
          await markPaid(tx, row.id, periodEnd);
          if (owner.kind === "organization") {
            const gross = Number(obj.subtotal ?? amount) || amount;
            const unit = Math.round(gross / seats);
            const bps = gross > 0 ? Math.round(((gross - amount) * 10_000) / gross) : 0;
            await tx`
              INSERT INTO organization_seats (organization_id, seats, unit_price_cents, discount_bps, total_cents,
                                              payment_history_id, status, subscription_id)
              VALUES (${owner.organizationId}, ${seats}, ${unit}, ${Math.min(10_000, Math.max(0, bps))},
                      ${amount}, ${payment.id}, 'pending', ${row.id})
              ON CONFLICT (subscription_id) DO UPDATE SET payment_history_id = excluded.payment_history_id`;
          }
        } else if (obj.next_payment_attempt === null || obj.next_payment_attempt === undefined) {
          // Stripe gives up after its last retry: the user keeps what they paid for, no more.
          await markFinalFailure(tx, row.id, at(line ? (line.period as Obj | undefined)?.start : null));
        }
        await syncGrant(tx, row.id);
        return "processed";
      }
      case "charge.refunded": {
        const intentRef = refOf(obj.payment_intent);
        if (!intentRef) return "ignored";
        const refunded = Number(obj.amount_refunded) || 0;
        return await applyRefundedTotal(tx, intentRef, refunded) ? "processed" : "ignored";
      }
    }
    return "ignored";
  });
}

/**
 * Sets a payment's refunded total (never lowering it: a refund recorded by the approval and the
 * provider's later event agree) and, when the subscription's latest payment is refunded in full,
 * ends its powers now. Answers false when no payment has that reference.
 */
export async function applyRefundedTotal(
  tx: Db,
  intentRef: string,
  refundedCents: number,
): Promise<boolean> {
  const [p] = await tx<{ id: number }[]>`
    SELECT id FROM payment_histories WHERE provider = 'stripe' AND provider_intent_ref = ${intentRef}
      AND kind <> 'refund'`;
  if (!p) return false;
  await refundPayment(tx, p.id, refundedCents);
  return true;
}

/** Raises payment `id`'s refunded total to `refundedCents` and applies what a full refund means. */
export async function refundPayment(tx: Db, id: number, refundedCents: number): Promise<void> {
  const [p] = await tx<
    { amountCents: number; refundedCents: number; subscriptionId: number | null; latest: boolean }[]
  >`
    UPDATE payment_histories p
    SET refunded_cents = least(p.amount_cents, greatest(p.refunded_cents, ${refundedCents})),
        status = CASE WHEN greatest(p.refunded_cents, ${refundedCents}) >= p.amount_cents THEN 'refunded'
                      WHEN greatest(p.refunded_cents, ${refundedCents}) > 0 THEN 'partially_refunded'
                      ELSE p.status END,
        updated_at = now()
    WHERE p.id = ${id}
    RETURNING p.amount_cents, p.refunded_cents, p.subscription_id,
      NOT EXISTS (SELECT 1 FROM payment_histories q WHERE q.subscription_id = p.subscription_id
                  AND q.kind <> 'refund' AND q.status IN ('succeeded', 'partially_refunded', 'refunded')
                  AND q.id > p.id) AS latest`;
  if (p && p.subscriptionId !== null && p.refundedCents >= p.amountCents && p.latest) {
    await revoke(tx, p.subscriptionId);
    await syncGrant(tx, p.subscriptionId);
  }
}
