// The billing API against the local fake Stripe: payment methods, the portal link, fund
// returns from request to refund (mailed over real SMTP), and billing switched off.
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
// @ts-types="@types/smtp-server"
import { SMTPServer } from "smtp-server";
import { smtpMailer } from "../lib/mailer.ts";
import { createTestApp } from "./_app.ts";
import { browserUser, call, orgWithAdmin, roleOf, startBillingServer } from "./_billing.ts";
import { createTestDatabase } from "./_db.ts";

type Obj = Record<string, unknown>;

const db = await createTestDatabase();
const sql = db.sql;

const received: { to: string[]; raw: string }[] = [];
const smtp = new SMTPServer({
  authOptional: true,
  disabledCommands: ["STARTTLS", "AUTH"],
  logger: false,
  onData(stream, session, callback) {
    const chunks: Uint8Array[] = [];
    stream.on("data", (c: Uint8Array) => chunks.push(c));
    stream.on("end", () => {
      received.push({
        to: session.envelope.rcptTo.map((r) => r.address),
        raw: new TextDecoder().decode(Uint8Array.from(chunks.flatMap((c) => [...c]))),
      });
      callback();
    });
  },
});
await new Promise<void>((resolve) => smtp.listen(0, "127.0.0.1", () => resolve()));
const smtpPort = (smtp.server.address() as AddressInfo).port;

const srv = await startBillingServer(sql, {
  mailer: smtpMailer(`smtp://127.0.0.1:${smtpPort}`, "Vox <billing@vox.test>"),
});
const { app, fake } = srv;
const adminUser = await browserUser(sql, { isAdmin: true });

Deno.test.afterAll(async () => {
  await srv.stop();
  await new Promise<void>((resolve) => smtp.close(() => resolve()));
  await db.close();
});

/** A user made Premium by a paid checkout whose events reached Vox. */
async function premiumUser() {
  const user = await browserUser(sql);
  const started = await call(app, "POST", "/api/v1/billing/checkout", user);
  assert.equal(started.status, 201, JSON.stringify(started.data));
  assert.deepEqual(started.data.quote, {
    seats: 1,
    unitCents: 500,
    discountPercent: 0,
    totalCents: 500,
    currency: "usd",
  });
  await fake.completeCheckout(String(started.data.url).split("/").pop()!);
  assert.equal(await roleOf(sql, user.id), "premium");
  const payments = await call(app, "GET", "/api/v1/billing/payments", user);
  return { user, payment: (payments.data.payments as Obj[])[0] };
}

Deno.test("payment methods: add through a SetupIntent checkout, list, make default, remove", async () => {
  const user = await browserUser(sql);
  const empty = await call(app, "GET", "/api/v1/billing/payment-methods", user);
  assert.deepEqual(empty.data, { paymentMethods: [] });
  const setup = await call(app, "POST", "/api/v1/billing/payment-methods/setup", user);
  assert.equal(setup.status, 201);
  const session = fake.sessions.get(String(setup.data.url).split("/").pop()!)!;
  assert.equal(session.mode, "setup");
  await fake.completeCheckout(session.id as string);
  await fake.completeCheckout(
    String((await call(app, "POST", "/api/v1/billing/payment-methods/setup", user)).data.url).split("/")
      .pop()!,
  );
  const listed = await call(app, "GET", "/api/v1/billing/payment-methods", user);
  const methods = listed.data.paymentMethods as Obj[];
  assert.equal(methods.length, 2);
  assert.deepEqual(methods.map((m) => [m.brand, m.last4, m.isDefault]), [["visa", "4242", true], [
    "visa",
    "4242",
    false,
  ]]);

  const second = methods[1].id as string;
  const def = await call(app, "POST", "/api/v1/billing/payment-methods/default", user, {
    paymentMethodId: second,
  });
  assert.equal(def.status, 200);
  assert.deepEqual((def.data.paymentMethods as Obj[]).map((m) => m.isDefault), [false, true]);
  const removed = await call(app, "POST", "/api/v1/billing/payment-methods/remove", user, {
    paymentMethodId: second,
  });
  assert.equal(removed.status, 200);
  assert.deepEqual((removed.data.paymentMethods as Obj[]).map((m) => m.id), [methods[0].id]);

  // Another customer's card is not this user's to touch.
  const other = await browserUser(sql);
  await call(app, "POST", "/api/v1/billing/payment-methods/setup", other);
  const theirs = await call(app, "POST", "/api/v1/billing/payment-methods/remove", other, {
    paymentMethodId: methods[0].id,
  });
  assert.equal(theirs.status, 404);
  assert.equal(theirs.data.error?.code, "payment_method_not_found");
  assert.equal(fake.paymentMethods.get(methods[0].id as string)!.customer !== null, true);
  const bad = await call(app, "POST", "/api/v1/billing/payment-methods/remove", user, {
    paymentMethodId: "no way!",
  });
  assert.equal(bad.status, 400);
  assert.match(bad.data.error!.message, /^paymentMethodId: /);

  // The customer reference is kept sealed, never in clear.
  const [row] = await sql`SELECT billing_customer_enc FROM users WHERE id = ${user.id}`;
  assert.match(row.billingCustomerEnc, /^v1\./);
  assert.ok(![...fake.customers.keys()].some((k) => row.billingCustomerEnc.includes(k)));
});

Deno.test("the portal link comes from the provider", async () => {
  const user = await browserUser(sql);
  const r = await call(app, "POST", "/api/v1/billing/portal", user);
  assert.equal(r.status, 200);
  assert.match(String(r.data.url), new RegExp(`^${fake.url}/portal/bps_`));
});

Deno.test("fund returns: bounded by what was paid, approved with a refund that ends Premium, mailed", async () => {
  const { user, payment } = await premiumUser();
  const basic = await browserUser(sql);
  const refused = await call(app, "POST", "/api/v1/billing/fund-returns", basic, {
    paymentId: payment.id,
    amountCents: 100,
    reason: "x",
  });
  assert.equal(refused.status, 403, "only Premium users ask");
  const tooMuch = await call(app, "POST", "/api/v1/billing/fund-returns", user, {
    paymentId: payment.id,
    amountCents: 501,
    reason: "Did not use it",
  });
  assert.equal(tooMuch.status, 400);
  assert.match(tooMuch.data.error!.message, /^amountCents: at most 500 cents/);
  const notMine = await call(app, "POST", "/api/v1/billing/fund-returns", user, {
    paymentId: 987654,
    amountCents: 100,
    reason: "x",
  });
  assert.equal(notMine.status, 404);

  const asked = await call(app, "POST", "/api/v1/billing/fund-returns", user, {
    paymentId: payment.id,
    amountCents: 500,
    reason: "Did not use it",
  });
  assert.equal(asked.status, 201, JSON.stringify(asked.data));
  const fr = asked.data.fundReturn as Obj;
  assert.equal(fr.status, "pending");
  const twice = await call(app, "POST", "/api/v1/billing/fund-returns", user, {
    paymentId: payment.id,
    amountCents: 100,
    reason: "again",
  });
  assert.equal(twice.status, 409);
  const left = await call(app, "GET", "/api/v1/billing/payments", user);
  assert.equal((left.data.payments as Obj[])[0].refundableCents, 0, "the open request holds the amount");

  const queue = await call(app, "GET", "/api/admin/fund-returns?status=pending", adminUser);
  assert.ok((queue.data.fundReturns as Obj[]).some((x) => x.id === fr.id));
  assert.equal((await call(app, "GET", "/api/admin/fund-returns", user)).status, 403);

  const approved = await call(app, "POST", `/api/admin/fund-returns/${fr.id}/approve`, adminUser, {
    note: "Sorry",
  });
  assert.equal(approved.status, 200, JSON.stringify(approved.data));
  assert.equal((approved.data.fundReturn as Obj).status, "approved");
  // Refunded through the provider once, with the request's idempotency key.
  const refunds = fake.received.filter((r) => r.path === "/v1/refunds");
  assert.equal(refunds.at(-1)!.idempotencyKey, `vox-fund-return-${fr.id}`);
  assert.equal(refunds.at(-1)!.form.amount, "500");
  // Recorded, and the plan adjusted: a full refund of the latest payment ends Premium now,
  // and the subscription is cancelled so it does not charge again.
  const history = await call(app, "GET", "/api/v1/billing/payments", user);
  assert.deepEqual(
    (history.data.payments as Obj[]).map((p) => [p.kind, p.amountCents, p.status]).sort(),
    [["refund", -500, "succeeded"], ["solo_seat", 500, "refunded"]],
  );
  assert.equal(await roleOf(sql, user.id), "basic");
  const sub = [...fake.subscriptions.values()].find((s) =>
    (s.metadata as Obj).voxUserId === String(user.id)
  )!;
  assert.equal(sub.status, "canceled");
  const again = await call(app, "POST", `/api/admin/fund-returns/${fr.id}/approve`, adminUser, {});
  assert.equal(again.status, 409);

  const mail = received.find((m) => m.to.includes(user.email) && /approved/.test(m.raw));
  assert.ok(mail, "the requester is mailed");
  assert.match(mail.raw, /5\.00 USD/);
  const mine = await call(app, "GET", "/api/v1/billing/fund-returns", user);
  assert.equal((mine.data.fundReturns as Obj[])[0].status, "approved");
});

Deno.test("fund returns: a partial return keeps Premium; a rejection carries its reason by mail", async () => {
  const { user, payment } = await premiumUser();
  const partial = await call(app, "POST", "/api/v1/billing/fund-returns", user, {
    paymentId: payment.id,
    amountCents: 200,
    reason: "Two weeks unused",
  });
  const id = (partial.data.fundReturn as Obj).id;
  assert.equal((await call(app, "POST", `/api/admin/fund-returns/${id}/approve`, adminUser, {})).status, 200);
  assert.equal(await roleOf(sql, user.id), "premium");
  const [p] = await sql`SELECT refunded_cents, status FROM payment_histories WHERE id = ${payment
    .id as number}`;
  assert.deepEqual([p.refundedCents, p.status], [200, "partially_refunded"]);

  const more = await call(app, "POST", "/api/v1/billing/fund-returns", user, {
    paymentId: payment.id,
    amountCents: 301,
    reason: "The rest",
  });
  assert.equal(more.status, 400, "only 300 cents are left");
  const rest = await call(app, "POST", "/api/v1/billing/fund-returns", user, {
    paymentId: payment.id,
    amountCents: 300,
    reason: "The rest",
  });
  const restId = (rest.data.fundReturn as Obj).id;
  const noReason = await call(app, "POST", `/api/admin/fund-returns/${restId}/reject`, adminUser, {});
  assert.equal(noReason.status, 400);
  assert.match(noReason.data.error!.message, /^reason: /);
  const rejected = await call(app, "POST", `/api/admin/fund-returns/${restId}/reject`, adminUser, {
    reason: "Outside the refund window",
  });
  assert.equal(rejected.status, 200);
  assert.equal((rejected.data.fundReturn as Obj).status, "rejected");
  assert.equal(await roleOf(sql, user.id), "premium");
  const mail = received.find((m) => m.to.includes(user.email) && /rejected/.test(m.raw));
  assert.ok(mail);
  assert.match(mail.raw, /Outside the refund window/);
});

Deno.test("an organization admin asks for a fund return on the organization's payment", async () => {
  const { orgId, admin } = await orgWithAdmin(sql, "Refund Org");
  const r = await call(app, "POST", `/api/v1/organizations/${orgId}/billing/checkout`, admin, { seats: 3 });
  await fake.completeCheckout(String(r.data.url).split("/").pop()!);
  const payments = await call(app, "GET", `/api/v1/organizations/${orgId}/billing/payments`, admin);
  const payment = (payments.data.payments as Obj[])[0];
  assert.equal(payment.amountCents, 1620);
  const asked = await call(app, "POST", `/api/v1/organizations/${orgId}/billing/fund-returns`, admin, {
    paymentId: payment.id,
    amountCents: 1620,
    reason: "Bought too many",
  });
  assert.equal(asked.status, 201, JSON.stringify(asked.data));
  const id = (asked.data.fundReturn as Obj).id;
  // A solo route does not reach the organization's payment.
  const solo = await call(app, "POST", "/api/v1/billing/fund-returns", admin, {
    paymentId: payment.id,
    amountCents: 1,
    reason: "x",
  });
  // The admin holds a paid seat (Premium powers) but the payment is not theirs alone: not found.
  assert.equal(solo.status, 404);
  assert.equal(solo.data.error!.code, "payment_not_found");
  await call(app, "POST", `/api/admin/fund-returns/${id}/approve`, adminUser, {});
  const account = await call(app, "GET", `/api/v1/organizations/${orgId}/billing`, admin);
  assert.equal(account.data.paidSeats, 0, "the refunded seats lapse");
});

Deno.test("billing off: billing routes answer 404 saying so; everything else works", async () => {
  const { app: plain } = await createTestApp(sql);
  const user = await browserUser(sql);
  for (
    const [method, path, body] of [
      ["GET", "/api/v1/billing", undefined],
      ["POST", "/api/v1/billing/checkout", undefined],
      ["GET", "/api/v1/billing/payment-methods", undefined],
      ["POST", "/api/v1/billing/fund-returns", { paymentId: 1, amountCents: 1, reason: "x" }],
    ] as const
  ) {
    const r = await call(plain, method, path, user, body);
    assert.equal(r.status, 404, path);
    assert.equal(r.data.error!.code, "billing_disabled");
    assert.match(r.data.error!.message, /Billing is not set up on this server/);
  }
  const hook = await plain.request("/api/webhooks/stripe", { method: "POST", body: "{}" });
  assert.equal(hook.status, 404);
  assert.equal((await hook.json()).error.code, "billing_disabled");
  assert.equal((await call(plain, "GET", "/api/admin/fund-returns", adminUser)).status, 404);
  assert.equal((await call(plain, "GET", "/api/v1/projects", user)).status, 200);
});
