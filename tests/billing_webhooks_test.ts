// Stripe webhooks end to end: the real `stripe` library in Vox talks to the local fake Stripe,
// which signs its events with the library's test-header helper and posts them to Vox over
// HTTP. Forged signatures, replays, out-of-order pairs, refunds and payment failures.
import assert from "node:assert/strict";
import { applyLapsed } from "../lib/billing/subscriptions.ts";
import { browserUser, call, orgWithAdmin, roleOf, startBillingServer } from "./_billing.ts";
import { createTestDatabase, RELAXED_LIMIT, setSetting } from "./_db.ts";
import type Stripe from "stripe";

const db = await createTestDatabase();
const sql = db.sql;
const srv = await startBillingServer(sql);
const { app, fake } = srv;
Deno.test.afterAll(async () => {
  await srv.stop();
  await db.close();
});

type Obj = Record<string, unknown>;

/** A solo checkout started through Vox's API, paid at the fake without delivering its events. */
async function paidSoloCheckout() {
  const user = await browserUser(sql);
  const started = await call(app, "POST", "/api/v1/billing/checkout", user);
  assert.equal(started.status, 201, JSON.stringify(started.data));
  const sessionId = String(started.data.url).split("/").pop()!;
  const saved = fake.webhookUrl;
  fake.webhookUrl = null;
  const events = await fake.completeCheckout(sessionId);
  fake.webhookUrl = saved;
  const byType = (t: string) => events.find((e) => e.type === t)!;
  return {
    user,
    events,
    byType,
    subscriptionId: (byType("customer.subscription.created").data.object as unknown as Obj).id as string,
  };
}

async function deliver(event: Stripe.Event, signature?: string) {
  const res = await fake.deliver(event, signature ? { signature } : {});
  return { status: res.status, data: await res.json() };
}

const counts = async (userId: number) => {
  const [r] = await sql<{ payments: number; events: number; audits: number }[]>`
    SELECT (SELECT count(*) FROM payment_histories WHERE user_id = ${userId})::int AS payments,
           (SELECT count(*) FROM stripe_events)::int AS events,
           (SELECT count(*) FROM audit_log WHERE action = 'billing.plan_changed' AND target_id = ${
    String(userId)
  })::int
             AS audits`;
  return r;
};

Deno.test("a forged or missing signature is a 400 and changes nothing", async () => {
  const { user, byType } = await paidSoloCheckout();
  const before = await counts(user.id);
  const paid = byType("invoice.paid");
  const payload = JSON.stringify(paid, null, 2);

  const forged = await deliver(paid, await fake.sign(payload, "whsec_not_the_endpoint_secret"));
  assert.equal(forged.status, 400);
  assert.equal(forged.data.error.code, "invalid_signature");
  // A genuine signature over another body does not carry over to this one.
  const other = await deliver(paid, await fake.sign(payload.replace('"paid"', '"open"')));
  assert.equal(other.status, 400);
  const unsigned = await fetch(fake.webhookUrl!, { method: "POST", body: payload });
  assert.equal(unsigned.status, 400);
  assert.equal((await unsigned.json()).error.code, "missing_signature");

  assert.deepEqual(await counts(user.id), before);
  assert.equal(await roleOf(sql, user.id), "basic");
  // The signing secret never reaches the log.
  assert.ok(!srv.logs.text.includes(fake.webhookSecret));
  assert.ok(!srv.logs.text.includes(fake.secretKey));
});

Deno.test("a paid checkout makes the user Premium; a replayed event changes nothing twice", async () => {
  const { user, events, byType } = await paidSoloCheckout();
  for (const e of events) assert.equal((await deliver(e)).data.outcome, "processed", e.type);
  assert.equal(await roleOf(sql, user.id), "premium");
  const once = await counts(user.id);
  assert.equal(once.payments, 1);
  assert.equal(once.audits, 1);

  for (const e of [byType("invoice.paid"), byType("customer.subscription.created"), byType("invoice.paid")]) {
    const again = await deliver(e);
    assert.equal(again.status, 200);
    assert.equal(again.data.outcome, "duplicate");
  }
  assert.deepEqual(await counts(user.id), once);

  const account = await call(app, "GET", "/api/v1/billing", user);
  assert.equal(account.status, 200);
  assert.equal(account.data.role, "premium");
  const [sub] = account.data.subscriptions as Obj[];
  assert.equal(sub.active, true);
  assert.equal(sub.status, "active");
  const payments = await call(app, "GET", "/api/v1/billing/payments", user);
  assert.deepEqual(
    (payments.data.payments as Obj[]).map((p) => [p.kind, p.amountCents, p.status, p.refundableCents]),
    [["solo_seat", 500, "succeeded", 500]],
  );
});

Deno.test("out of order: invoice.paid before customer.subscription.created still ends Premium", async () => {
  const { user, byType } = await paidSoloCheckout();
  assert.equal((await deliver(byType("invoice.paid"))).data.outcome, "processed");
  assert.equal(await roleOf(sql, user.id), "premium");
  assert.equal((await deliver(byType("customer.subscription.created"))).data.outcome, "processed");
  assert.equal((await deliver(byType("checkout.session.completed"))).data.outcome, "processed");
  assert.equal(await roleOf(sql, user.id), "premium");
  const [row] = await sql`SELECT status, paid_through FROM billing_subscriptions WHERE user_id = ${user.id}`;
  assert.equal(row.status, "active");
  assert.ok(row.paidThrough > new Date());
});

Deno.test("out of order: a late older subscription event does not undo a newer cancellation", async () => {
  const { user, events, subscriptionId } = await paidSoloCheckout();
  for (const e of events) await deliver(e);
  const sub = fake.subscriptions.get(subscriptionId)!;
  const t = Math.floor(Date.now() / 1000);
  // The deletion (newer) arrives before an "updated, still active" that Stripe sent earlier.
  const deleted = fake.event(
    "customer.subscription.deleted",
    { ...sub, status: "canceled", ended_at: t },
    t + 20,
  );
  const olderActive = fake.event("customer.subscription.updated", { ...sub, status: "active" }, t + 10);
  assert.equal((await deliver(deleted)).data.outcome, "processed");
  assert.equal(await roleOf(sql, user.id), "basic");
  assert.equal((await deliver(olderActive)).data.outcome, "processed");
  assert.equal(await roleOf(sql, user.id), "basic");
  const [row] = await sql`SELECT status FROM billing_subscriptions WHERE provider_ref = ${subscriptionId}`;
  assert.equal(row.status, "canceled");
});

Deno.test("a refund flows through to the user's plan: partial keeps Premium, full ends it", async () => {
  const { user, events, byType } = await paidSoloCheckout();
  for (const e of events) await deliver(e);
  const invoice = byType("invoice.paid").data.object as unknown as Obj;
  const [payment] =
    await sql`SELECT provider_intent_ref FROM payment_histories WHERE provider_payment_ref = ${invoice
      .id as string}`;
  assert.match(payment.providerIntentRef, /^pi_/, "the invoice's payment was looked up at the provider");
  const charge = (refunded: number) => ({
    id: `ch_${crypto.randomUUID().slice(0, 8)}`,
    object: "charge",
    amount: 500,
    amount_refunded: refunded,
    refunded: refunded === 500,
    payment_intent: payment.providerIntentRef,
  });
  await deliver(fake.event("charge.refunded", charge(200)));
  assert.equal(await roleOf(sql, user.id), "premium");
  let [p] =
    await sql`SELECT refunded_cents, status FROM payment_histories WHERE provider_payment_ref = ${invoice
      .id as string}`;
  assert.deepEqual([p.refundedCents, p.status], [200, "partially_refunded"]);
  await deliver(fake.event("charge.refunded", charge(500)));
  assert.equal(await roleOf(sql, user.id), "basic");
  [p] = await sql`SELECT refunded_cents, status FROM payment_histories WHERE provider_payment_ref = ${invoice
    .id as string}`;
  assert.deepEqual([p.refundedCents, p.status], [500, "refunded"]);
  const account = await call(app, "GET", "/api/v1/billing", user);
  assert.equal((account.data.subscriptions as Obj[])[0].status, "refunded");
});

Deno.test("a final payment failure ends Premium at period end; private items stay private and readable", async () => {
  const { user, events, subscriptionId } = await paidSoloCheckout();
  for (const e of events) await deliver(e);
  const [{ id: projectId }] = await sql`SELECT id FROM projects WHERE owner_user_id = ${user.id}`;
  const scenario = { tags: ["default"], steps: [{ action: "speak", file: "hello.wav" }] };
  const made = await call(app, "POST", "/api/v1/eval-sets", user, {
    projectId,
    name: "private one",
    config: scenario,
    visibility: "private",
  });
  assert.equal(made.status, 201, JSON.stringify(made.data));

  // A failure with retries left changes nothing; the last one sets the end to the paid period's end.
  await deliver(fake.event("invoice.payment_failed", fake.invoiceFor(subscriptionId, "failed")));
  let [row] =
    await sql`SELECT ends_at, paid_through FROM billing_subscriptions WHERE provider_ref = ${subscriptionId}`;
  assert.equal(row.endsAt, null);
  await deliver(
    fake.event("invoice.payment_failed", fake.invoiceFor(subscriptionId, "failed", { final: true })),
  );
  [row] =
    await sql`SELECT ends_at, paid_through FROM billing_subscriptions WHERE provider_ref = ${subscriptionId}`;
  assert.equal(row.endsAt.getTime(), row.paidThrough.getTime());
  assert.equal(await roleOf(sql, user.id), "premium", "Premium until the paid period ends");
  const account = await call(app, "GET", "/api/v1/billing", user);
  assert.equal((account.data.subscriptions as Obj[])[0].endsAt, row.endsAt.toISOString());

  await applyLapsed(sql, new Date(row.paidThrough.getTime() - 1000));
  assert.equal(await roleOf(sql, user.id), "premium");
  await applyLapsed(sql, new Date(row.paidThrough.getTime() + 1000));
  assert.equal(await roleOf(sql, user.id), "basic");

  const mine = await call(
    app,
    "GET",
    `/api/v1/eval-sets/${(made.data as Obj).id ?? (made.data.evalSet as Obj).id}`,
    user,
  );
  assert.equal(mine.status, 200, "a private item stays readable by its owner");
  const item = (mine.data.evalSet ?? mine.data) as Obj;
  assert.equal(item.visibility, "private");
  const another = await call(app, "POST", "/api/v1/eval-sets", user, {
    projectId,
    name: "another private one",
    config: scenario,
    visibility: "private",
  });
  assert.equal(another.status, 403);
});

Deno.test("cancelling ends Premium when Stripe ends the subscription at period end", async () => {
  const { user, events, subscriptionId } = await paidSoloCheckout();
  for (const e of events) await deliver(e);
  const [sub] = await sql`SELECT id FROM billing_subscriptions WHERE provider_ref = ${subscriptionId}`;
  const cancelled = await call(app, "POST", "/api/v1/billing/cancel", user, { subscriptionId: sub.id });
  assert.equal(cancelled.status, 200, JSON.stringify(cancelled.data));
  assert.equal((cancelled.data.subscription as Obj).cancelAtPeriodEnd, true);
  assert.equal(fake.subscriptions.get(subscriptionId)!.cancel_at_period_end, true, "Stripe was told");
  assert.equal(await roleOf(sql, user.id), "premium");
  const s = fake.subscriptions.get(subscriptionId)!;
  await deliver(fake.event("customer.subscription.updated", { ...s }));
  assert.equal(await roleOf(sql, user.id), "premium");
  await deliver(
    fake.event("customer.subscription.deleted", {
      ...s,
      status: "canceled",
      ended_at: Date.now() / 1000 | 0,
    }),
  );
  assert.equal(await roleOf(sql, user.id), "basic");
  // Someone else's subscription id is not found.
  const stranger = await browserUser(sql);
  const other = await call(app, "POST", "/api/v1/billing/cancel", stranger, { subscriptionId: sub.id });
  assert.equal(other.status, 404);
});

Deno.test("seats bought raise the organization's seat count, lapsed seats lower it, members stay", async () => {
  const { orgId, admin } = await orgWithAdmin(sql);
  const member = await browserUser(sql, { organizationId: orgId });
  const buy = async (seats: number) => {
    const r = await call(app, "POST", `/api/v1/organizations/${orgId}/billing/checkout`, admin, { seats });
    assert.equal(r.status, 201, JSON.stringify(r.data));
    const events = await fake.completeCheckout(String(r.data.url).split("/").pop()!);
    return { quote: r.data.quote as Obj, sub: (events[1].data.object as unknown as Obj).id as string };
  };
  const first = await buy(6);
  assert.deepEqual(first.quote, {
    seats: 6,
    unitCents: 600,
    discountPercent: 15,
    totalCents: 3060,
    currency: "usd",
  });
  const seatsNow = async () =>
    (await call(app, "GET", `/api/v1/organizations/${orgId}/billing`, admin)).data.paidSeats;
  assert.equal(await seatsNow(), 6);
  // A plain member acts as Premium from a paid seat; their own billing page says where it comes from.
  const mine = await call(app, "GET", "/api/v1/billing", member);
  assert.deepEqual([mine.data.role, mine.data.premiumFromOrganization], ["premium", true]);
  const second = await buy(3);
  assert.equal(await seatsNow(), 9);
  const payments = await call(app, "GET", `/api/v1/organizations/${orgId}/billing/payments`, admin);
  assert.deepEqual((payments.data.payments as Obj[]).map((p) => p.amountCents).sort(), [1620, 3060]);

  const s = fake.subscriptions.get(first.sub)!;
  await fake.deliver(
    fake.event("customer.subscription.deleted", {
      ...s,
      status: "canceled",
      ended_at: Date.now() / 1000 | 0,
    }),
  );
  assert.equal(await seatsNow(), 3);
  const [m] = await sql`SELECT organization_id FROM users WHERE id = ${member.id}`;
  assert.equal(m.organizationId, orgId, "a lapsed seat deletes nobody");
  assert.ok(second.sub);

  // Outsiders and plain members see nothing of it.
  assert.equal((await call(app, "GET", `/api/v1/organizations/${orgId}/billing`, member)).status, 403);
  const stranger = await browserUser(sql);
  assert.equal(
    (await call(app, "GET", `/api/v1/organizations/${orgId}/billing/payments`, stranger)).status,
    404,
  );
  assert.equal((await call(app, "GET", `/api/v1/organizations/987654/billing`, admin)).status, 404);
});

Deno.test("Stripe's bursts are not held to the per-address request limit; people still are", async () => {
  await setSetting(sql, "rate_limit.general", { max: 2, windowSeconds: 900 });
  try {
    const { events } = await paidSoloCheckout();
    for (const e of [...events, ...events]) assert.equal((await deliver(e)).status, 200, e.type);
    const statuses = [];
    for (let i = 0; i < 4; i++) statuses.push((await fetch(`${srv.baseUrl}/api/pricing`)).status);
    assert.ok(statuses.includes(429), `anonymous requests are limited: ${statuses}`);
  } finally {
    await setSetting(sql, "rate_limit.general", RELAXED_LIMIT);
  }
});
