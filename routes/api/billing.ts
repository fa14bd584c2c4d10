// Billing API (issue 12): a solo user's billing under /api/v1/billing, an organization's (its
// admins only) under /api/v1/organizations/{id}/billing, the admin's fund-return queue and Stripe's
// webhook. With Stripe not configured every one answers 404 saying billing is not set up,
// after the caller and the input were checked as anywhere else.
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { createMiddleware } from "hono/factory";
import { z } from "zod";
import {
  ensureCustomer,
  listPayments,
  listSubscriptions,
  organizationOwner,
  type Owner,
  paidSeats,
  storedCustomer,
  userOwner,
} from "../../lib/billing/accounts.ts";
import {
  approveFundReturn,
  fundReturn,
  listFundReturns,
  listOwnFundReturns,
  rejectFundReturn,
  requestFundReturn,
  type ReviewDeps,
} from "../../lib/billing/fund_returns.ts";
import { type PaymentProvider, ProviderError } from "../../lib/billing/provider.ts";
import { quoteFor } from "../../lib/billing/quote.ts";
import { stripeFromConfig } from "../../lib/billing/stripe_provider.ts";
import { applyLapsed } from "../../lib/billing/subscriptions.ts";
import { processEvent } from "../../lib/billing/webhooks.ts";
import { recordAudit } from "../../lib/audit.ts";
import { publicUrl } from "../../lib/config.ts";
import type { AppEnv, ResolvedDeps } from "../../lib/context.ts";
import { HttpError } from "../../lib/errors.ts";
import { requireAdmin, requireUser } from "../../lib/guards.ts";
import { doc, invalidInput, valid } from "../../lib/openapi.ts";

/** The message every billing route answers with when Stripe is not configured. */
export const BILLING_OFF_MESSAGE =
  "Billing is not set up on this server: STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET are not configured";

const positiveInteger = "must be a positive integer";
const idParam = z.object({
  id: z.coerce.number({ error: positiveInteger }).int(positiveInteger).min(1, positiveInteger)
    .max(Number.MAX_SAFE_INTEGER),
});
const seatsBody = z.object({
  seats: z.number({ error: "must be a whole number of seats" }).int("must be a whole number of seats")
    .min(1, "must be at least 1").max(1000, "must be at most 1000"),
});
const cancelBody = z.object({
  subscriptionId: z.number({ error: positiveInteger }).int(positiveInteger).min(1, positiveInteger),
});
const methodBody = z.object({
  paymentMethodId: z.string({ error: "is required" }).regex(
    /^[A-Za-z0-9_]{3,100}$/,
    "must be a payment method id",
  ),
});
const fundReturnBody = z.object({
  paymentId: z.number({ error: positiveInteger }).int(positiveInteger).min(1, positiveInteger),
  amountCents: z.number({ error: "must be a whole number of cents" }).int("must be a whole number of cents")
    .min(1, "must be at least 1"),
  reason: z.string({ error: "is required" }).trim().min(1, "is required").max(2000),
});
const approveBody = z.object({ note: z.string().trim().max(2000).optional() });
const rejectBody = z.object({
  reason: z.string({ error: "is required" }).trim().min(1, "is required").max(2000),
});
const statusQuery = z.object({ status: z.enum(["pending", "approved", "rejected"]).optional() });

const subscriptionSchema = z.object({
  id: z.number().int(),
  kind: z.enum(["solo", "organization"]),
  seats: z.number().int(),
  status: z.string(),
  active: z.boolean(),
  cancelAtPeriodEnd: z.boolean(),
  currentPeriodEnd: z.string().nullable(),
  paidThrough: z.string().nullable(),
  endsAt: z.string().nullable(),
  createdAt: z.string(),
});
const quoteSchema = z.object({
  seats: z.number().int(),
  unitCents: z.number().int(),
  discountPercent: z.number(),
  totalCents: z.number().int(),
  currency: z.string(),
});
const paymentSchema = z.object({
  id: z.number().int(),
  kind: z.string(),
  seats: z.number().int(),
  amountCents: z.number().int(),
  refundedCents: z.number().int(),
  refundableCents: z.number().int(),
  currency: z.string(),
  status: z.string(),
  description: z.string(),
  periodEnd: z.string().nullable(),
  createdAt: z.string(),
});
const methodSchema = z.object({
  id: z.string(),
  brand: z.string().nullable(),
  last4: z.string().nullable(),
  expMonth: z.number().int().nullable(),
  expYear: z.number().int().nullable(),
  isDefault: z.boolean(),
});
const fundReturnSchema = z.object({
  id: z.number().int(),
  paymentId: z.number().int(),
  organizationId: z.number().int().nullable(),
  requester: z.object({ id: z.number().int(), username: z.string(), email: z.string() }),
  amountCents: z.number().int(),
  paymentAmountCents: z.number().int(),
  currency: z.string(),
  reason: z.string(),
  status: z.enum(["pending", "approved", "rejected"]),
  reviewNote: z.string().nullable(),
  reviewedAt: z.string().nullable(),
  createdAt: z.string(),
});
const accountSchema = z.object({
  owner: z.object({ kind: z.enum(["user", "organization"]), id: z.number().int(), name: z.string() }),
  role: z.string().nullable().describe(
    "The role the user acts with (solo billing); null for an organization",
  ),
  premiumFromOrganization: z.boolean().describe("Premium powers come from a paid organization seat"),
  paidSeats: z.number().int().nullable().describe("The organization's paid seats; null for a user"),
  subscriptions: z.array(subscriptionSchema),
  quote: quoteSchema.describe("The price of one seat bought alone"),
});
const urlSchema = z.object({ url: z.string() });
const seatsQuery = z.object({
  seats: z.coerce.number({ error: "must be a whole number of seats" }).int("must be a whole number of seats")
    .min(1, "must be at least 1").max(1000, "must be at most 1000").default(1),
});

const tag = "billing";
const SOLO = "/api/v1/billing";
const ORG = "/api/v1/organizations/{id}/billing";

// The same operations for a solo user and for an organization; only the owner differs.
for (const base of [SOLO, ORG]) {
  const who = base === SOLO ? "the caller's" : "the organization's (its admins only)";
  const params = base === ORG ? idParam : undefined;
  const common = { tag, auth: "user" as const, params, errors: [409, 502] };
  doc({
    ...common,
    method: "get",
    path: base,
    summary: `Plan, subscriptions and seat price of ${who} billing`,
    response: accountSchema,
  });
  doc({
    ...common,
    method: "get",
    path: `${base}/quote`,
    summary: "What `seats` bought in one purchase cost per month (the tier discount applied), before paying",
    query: seatsQuery,
    response: z.object({ quote: quoteSchema }),
  });
  doc({
    ...common,
    method: "post",
    path: `${base}/checkout`,
    summary: base === SOLO
      ? "Start a Checkout for solo Premium (a monthly subscription); answers its URL"
      : "Start a Checkout for `seats` organization seats (monthly; the tier discount of this purchase applied)",
    body: base === ORG ? seatsBody : undefined,
    status: 201,
    response: z.object({ url: z.string(), quote: quoteSchema }),
  });
  doc({
    ...common,
    method: "post",
    path: `${base}/cancel`,
    summary: "Cancel a subscription at the end of its paid period",
    body: cancelBody,
    response: z.object({ subscription: subscriptionSchema }),
  });
  doc({
    ...common,
    method: "get",
    path: `${base}/payment-methods`,
    summary: `${who} saved payment methods`,
    response: z.object({ paymentMethods: z.array(methodSchema) }),
  });
  doc({
    ...common,
    method: "post",
    path: `${base}/payment-methods/setup`,
    summary: "Start saving a payment method (a SetupIntent through Checkout's setup mode); answers its URL",
    status: 201,
    response: urlSchema,
  });
  doc({
    ...common,
    method: "post",
    path: `${base}/payment-methods/default`,
    summary: "Make a saved payment method the default for future invoices",
    body: methodBody,
    response: z.object({ paymentMethods: z.array(methodSchema) }),
  });
  doc({
    ...common,
    method: "post",
    path: `${base}/payment-methods/remove`,
    summary: "Remove a saved payment method",
    body: methodBody,
    response: z.object({ paymentMethods: z.array(methodSchema) }),
  });
  doc({
    ...common,
    method: "get",
    path: `${base}/payments`,
    summary: `${who} payments and refunds, newest first`,
    response: z.object({ payments: z.array(paymentSchema) }),
  });
  doc({
    ...common,
    method: "post",
    path: `${base}/portal`,
    summary: "A link to the payment provider's customer portal (invoices and receipts)",
    response: urlSchema,
  });
  doc({
    ...common,
    method: "get",
    path: `${base}/fund-returns`,
    summary: `${who} fund return requests and their status`,
    response: z.object({ fundReturns: z.array(fundReturnSchema) }),
  });
  doc({
    ...common,
    method: "post",
    path: `${base}/fund-returns`,
    summary: "Request a fund return on one payment (at most what was paid and not yet returned)",
    body: fundReturnBody,
    status: 201,
    response: z.object({ fundReturn: fundReturnSchema }),
  });
}
doc({
  method: "get",
  path: "/api/admin/fund-returns",
  summary: "Fund return requests, pending first (oldest first)",
  tag,
  auth: "admin",
  query: statusQuery,
  response: z.object({ fundReturns: z.array(fundReturnSchema) }),
});
doc({
  method: "post",
  path: "/api/admin/fund-returns/{id}/approve",
  summary:
    "Approve: the refund is issued through the provider, recorded, the plan adjusted, the requester mailed",
  tag,
  auth: "admin",
  params: idParam,
  body: approveBody,
  errors: [409, 502],
  response: z.object({ fundReturn: fundReturnSchema }),
});
doc({
  method: "post",
  path: "/api/admin/fund-returns/{id}/reject",
  summary: "Reject with a reason the requester is mailed",
  tag,
  auth: "admin",
  params: idParam,
  body: rejectBody,
  errors: [409],
  response: z.object({ fundReturn: fundReturnSchema }),
});
doc({
  method: "post",
  path: "/api/webhooks/stripe",
  summary: "Stripe's webhook: verified on the raw body with the signing secret; each event processed once",
  tag,
  auth: "public",
  response: z.object({ received: z.literal(true), outcome: z.enum(["processed", "duplicate", "ignored"]) }),
});

const providers = new WeakMap<object, PaymentProvider | null>();

/** The configured payment provider (one per configuration), or null when billing is off. */
export function billingProvider(deps: ResolvedDeps): PaymentProvider | null {
  if (!providers.has(deps.config)) providers.set(deps.config, stripeFromConfig(deps.config));
  return providers.get(deps.config)!;
}

/** The provider, or the 404 that says billing is off. */
function on(deps: ResolvedDeps): PaymentProvider {
  const p = billingProvider(deps);
  if (!p) throw new HttpError(404, "billing_disabled", BILLING_OFF_MESSAGE);
  return p;
}

/** Provider failures as HTTP: a missing reference is a 404, anything else a 502 naming the step. */
async function viaProvider<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof ProviderError)) throw err;
    if (err.notFound) throw new HttpError(404, "not_found", err.message);
    throw new HttpError(502, "payment_provider_error", err.message);
  }
}

/** /api/v1/billing and /api/v1/organizations/:id/billing: what an owner does with its billing. */
export function billingApi(deps: ResolvedDeps) {
  const app = new Hono<AppEnv>();
  const home = publicUrl(deps.config);

  type C = Context<AppEnv>;
  const bases: { path: string; owner: (c: C) => Promise<Owner>; page: string }[] = [
    {
      path: "/api/v1/billing",
      owner: (c) => Promise.resolve(userOwner(c.var.user!)),
      page: "/console/billing",
    },
    {
      path: "/api/v1/organizations/:id/billing",
      owner: (c) => organizationOwner(deps.sql, c.var.user!, idParam.parse(c.req.param()).id),
      page: "/console/organization/billing",
    },
  ];
  const isOrg = (p: string) => p.includes(":id");
  // The organization's id is checked first (400 naming it), like every route's id.
  const ids = createMiddleware<AppEnv>(async (c, next) => {
    if (c.req.param("id") !== undefined) {
      const r = idParam.safeParse(c.req.param());
      if (!r.success) throw invalidInput(r.error, "param");
    }
    await next();
  });
  const body = (schema: z.ZodType) => valid("json", schema) as unknown as MiddlewareHandler<AppEnv>;
  const none = createMiddleware<AppEnv>(async (_c, next) => await next());
  // The input is checked first (a 400 says nothing about any organization), then the owner:
  // 404 for no such organization, 403 for anyone but its admins.
  const owners = new WeakMap<Request, Owner>();

  for (const b of bases) {
    const resolve = createMiddleware<AppEnv>(async (c, next) => {
      owners.set(c.req.raw, await b.owner(c));
      await next();
    });
    const ownerOf = (c: C) => Promise.resolve(owners.get(c.req.raw)!);
    const customerOf = async (owner: Owner, provider: PaymentProvider) =>
      await viaProvider(() => ensureCustomer(deps.sql, deps.secretKey, provider, owner));

    app.get(b.path, requireUser, ids, resolve, async (c) => {
      const owner = await ownerOf(c);
      on(deps);
      await applyLapsed(deps.sql);
      const quote = await quoteFor(deps.sql, owner.kind === "user" ? "solo" : "organization", 1);
      // The role the user acts with now (after this sweep): a paid organization seat counts too.
      const [me] = owner.kind === "user"
        ? await deps.sql<{ role: string; stored: string }[]>`
            SELECT vox_effective_role(id, role) AS role, role AS stored FROM users WHERE id = ${owner.userId}`
        : [];
      const role = me?.role ?? null;
      return c.json({
        owner: owner.kind === "user"
          ? { kind: "user", id: owner.userId, name: owner.name }
          : { kind: "organization", id: owner.organizationId, name: owner.name },
        role,
        premiumFromOrganization: me ? me.role === "premium" && me.stored === "basic" : false,
        paidSeats: owner.kind === "organization" ? await paidSeats(deps.sql, owner.organizationId) : null,
        subscriptions: await listSubscriptions(deps.sql, owner),
        quote: publicQuote(quote),
      });
    });

    app.get(`${b.path}/quote`, requireUser, ids, valid("query", seatsQuery), resolve, async (c) => {
      const owner = await ownerOf(c);
      on(deps);
      const { seats } = c.req.valid("query");
      if (owner.kind === "user" && seats !== 1) {
        throw new HttpError(400, "invalid_input", "seats: a solo plan has exactly 1 seat");
      }
      const q = await quoteFor(deps.sql, owner.kind === "user" ? "solo" : "organization", seats);
      return c.json({ quote: publicQuote(q) });
    });

    app.post(
      `${b.path}/checkout`,
      requireUser,
      ids,
      isOrg(b.path) ? body(seatsBody) : none,
      resolve,
      async (c) => {
        const owner = await ownerOf(c);
        const provider = on(deps);
        const seats = owner.kind === "organization"
          ? (c.req.valid("json" as never) as z.infer<typeof seatsBody>).seats
          : 1;
        if (owner.kind === "user") {
          const live = (await listSubscriptions(deps.sql, owner)).find((s) =>
            s.active && !s.cancelAtPeriodEnd
          );
          if (live) throw new HttpError(409, "already_premium", "You already have a Premium subscription");
          if (owner.role === "principal" || owner.role === "fellow") {
            throw new HttpError(
              409,
              "already_premium",
              `Your role (${owner.role}) already has Premium powers`,
            );
          }
        }
        const quote = await quoteFor(deps.sql, owner.kind === "user" ? "solo" : "organization", seats);
        const customerRef = await customerOf(owner, provider);
        const session = await viaProvider(() =>
          provider.createSubscriptionCheckout({
            customerRef,
            meta: owner.kind === "user"
              ? { kind: "solo", userId: owner.userId, seats }
              : { kind: "organization", organizationId: owner.organizationId, seats },
            productName: owner.kind === "user"
              ? "Vox Premium (solo)"
              : `Vox organization seats (${owner.name})`,
            currency: quote.currency,
            unitCents: quote.unitCents,
            seats,
            discountCents: quote.discountCents,
            successUrl: `${home}${b.page}?checkout=done`,
            cancelUrl: `${home}${b.page}?checkout=cancelled`,
          })
        );
        return c.json({ url: session.url, quote: publicQuote(quote) }, 201);
      },
    );

    app.post(`${b.path}/cancel`, requireUser, ids, body(cancelBody), resolve, async (c) => {
      const owner = await ownerOf(c);
      const provider = on(deps);
      const { subscriptionId } = c.req.valid("json" as never) as z.infer<typeof cancelBody>;
      const [s] = await deps.sql<{ providerRef: string }[]>`
        SELECT provider_ref FROM billing_subscriptions
        WHERE id = ${subscriptionId} AND ${
        owner.kind === "user"
          ? deps.sql`user_id = ${owner.userId}`
          : deps.sql`organization_id = ${owner.organizationId}`
      }`;
      if (!s) {
        throw new HttpError(404, "subscription_not_found", `There is no subscription ${subscriptionId} here`);
      }
      await viaProvider(() => provider.cancelSubscription(s.providerRef, true));
      // Stripe confirms with customer.subscription.updated; until then the page already shows it.
      await deps.sql`UPDATE billing_subscriptions SET cancel_at_period_end = true,
                       ends_at = coalesce(ends_at, current_period_end, paid_through), updated_at = now()
                     WHERE id = ${subscriptionId}`;
      await recordAudit(deps.sql, {
        action: "billing.subscription_cancelled",
        actorUserId: c.var.user!.id,
        targetType: "subscription",
        targetId: subscriptionId,
      });
      const subscription = (await listSubscriptions(deps.sql, owner)).find((x) => x.id === subscriptionId)!;
      return c.json({ subscription });
    });

    app.get(`${b.path}/payment-methods`, requireUser, ids, resolve, async (c) => {
      const owner = await ownerOf(c);
      const provider = on(deps);
      const ref = await storedCustomer(deps.sql, deps.secretKey, owner);
      const paymentMethods = ref ? await viaProvider(() => provider.listPaymentMethods(ref)) : [];
      return c.json({ paymentMethods });
    });

    app.post(`${b.path}/payment-methods/setup`, requireUser, ids, resolve, async (c) => {
      const owner = await ownerOf(c);
      const provider = on(deps);
      const ref = await customerOf(owner, provider);
      const s = await viaProvider(() =>
        provider.createSetupCheckout(ref, {
          successUrl: `${home}${b.page}?card=saved`,
          cancelUrl: `${home}${b.page}`,
        })
      );
      return c.json({ url: s.url }, 201);
    });

    for (const action of ["default", "remove"] as const) {
      app.post(
        `${b.path}/payment-methods/${action}`,
        requireUser,
        ids,
        body(methodBody),
        resolve,
        async (c) => {
          const owner = await ownerOf(c);
          const provider = on(deps);
          const { paymentMethodId } = c.req.valid("json" as never) as z.infer<typeof methodBody>;
          const ref = await storedCustomer(deps.sql, deps.secretKey, owner);
          if (!ref) {
            throw new HttpError(
              404,
              "payment_method_not_found",
              `No payment method ${paymentMethodId} on this account`,
            );
          }
          await viaProvider(() =>
            action === "default"
              ? provider.setDefaultPaymentMethod(ref, paymentMethodId)
              : provider.removePaymentMethod(ref, paymentMethodId)
          ).catch((err) => {
            throw err instanceof HttpError && err.status === 404
              ? new HttpError(404, "payment_method_not_found", err.message)
              : err;
          });
          return c.json({ paymentMethods: await viaProvider(() => provider.listPaymentMethods(ref)) });
        },
      );
    }

    app.get(`${b.path}/payments`, requireUser, ids, resolve, async (c) => {
      const owner = await ownerOf(c);
      on(deps);
      return c.json({ payments: await listPayments(deps.sql, owner) });
    });

    app.post(`${b.path}/portal`, requireUser, ids, resolve, async (c) => {
      const owner = await ownerOf(c);
      const provider = on(deps);
      const ref = await customerOf(owner, provider);
      return c.json({ url: await viaProvider(() => provider.portalUrl(ref, `${home}${b.page}`)) });
    });

    app.get(`${b.path}/fund-returns`, requireUser, ids, resolve, async (c) => {
      const owner = await ownerOf(c);
      on(deps);
      return c.json({ fundReturns: await listOwnFundReturns(deps.sql, owner) });
    });

    app.post(`${b.path}/fund-returns`, requireUser, ids, body(fundReturnBody), resolve, async (c) => {
      const owner = await ownerOf(c);
      on(deps);
      const input = c.req.valid("json" as never) as z.infer<typeof fundReturnBody>;
      return c.json({ fundReturn: await requestFundReturn(deps.sql, c.var.user!, owner, input) }, 201);
    });
  }
  return app;
}

/** /api/admin/fund-returns: the admin's queue. */
export function adminFundReturnsApi(deps: ResolvedDeps) {
  const app = new Hono<AppEnv>();
  const review = (provider: PaymentProvider): ReviewDeps => ({
    sql: deps.sql,
    provider,
    mailer: deps.mailer,
    log: deps.log,
    publicUrl: publicUrl(deps.config),
  });

  app.get("/", requireAdmin, valid("query", statusQuery), async (c) => {
    on(deps);
    return c.json({ fundReturns: await listFundReturns(deps.sql, c.req.valid("query").status) });
  });

  const found = async (id: number) => {
    if (!(await fundReturn(deps.sql, id))) {
      throw new HttpError(404, "fund_return_not_found", `There is no fund return ${id}`);
    }
  };

  app.post("/:id/approve", requireAdmin, valid("param", idParam), valid("json", approveBody), async (c) => {
    const { id } = c.req.valid("param");
    await found(id);
    const provider = on(deps);
    const fr = await viaProvider(() =>
      approveFundReturn(review(provider), id, c.var.user!.id, c.req.valid("json").note || null)
    );
    return c.json({ fundReturn: fr });
  });

  app.post("/:id/reject", requireAdmin, valid("param", idParam), valid("json", rejectBody), async (c) => {
    const { id } = c.req.valid("param");
    await found(id);
    const provider = on(deps);
    return c.json({
      fundReturn: await rejectFundReturn(review(provider), id, c.var.user!.id, c.req.valid("json").reason),
    });
  });
  return app;
}

/** /api/webhooks/stripe: verified on the raw body before anything is parsed. */
export function stripeWebhookApi(deps: ResolvedDeps) {
  const app = new Hono<AppEnv>();
  app.post("/", async (c) => {
    const provider = on(deps);
    const signature = c.req.header("stripe-signature");
    if (!signature) throw new HttpError(400, "missing_signature", "Stripe-Signature header is missing");
    const raw = await c.req.text();
    let event;
    try {
      event = await provider.verifyWebhook(raw, signature);
    } catch {
      throw new HttpError(
        400,
        "invalid_signature",
        "The webhook signature does not match this endpoint's secret",
      );
    }
    const outcome = await processEvent(deps.sql, provider, event, c.var.log);
    c.var.log.info("billing webhook", { eventId: event.id, type: event.type, outcome });
    return c.json({ received: true, outcome });
  });
  return app;
}

function publicQuote(q: Awaited<ReturnType<typeof quoteFor>>) {
  return {
    seats: q.seats,
    unitCents: q.unitCents,
    discountPercent: q.discountPercent,
    totalCents: q.totalCents,
    currency: q.currency,
  };
}
