// The Stripe implementation of PaymentProvider, through the official `stripe` library. A base
// URL override (STRIPE_API_URL) points the library at another host: tests use a local fake.
import Stripe from "stripe";
import type { Config } from "../config.ts";
import {
  type BillingOwner,
  type CheckoutRequest,
  type PaymentMethodInfo,
  type PaymentProvider,
  ProviderError,
  type ProviderEvent,
  type RefundInfo,
} from "./provider.ts";

/** The Stripe provider when STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET are set, else null. */
export function stripeFromConfig(config: Config): PaymentProvider | null {
  if (!config.STRIPE_SECRET_KEY || !config.STRIPE_WEBHOOK_SECRET) return null;
  return stripeProvider(config.STRIPE_SECRET_KEY, config.STRIPE_WEBHOOK_SECRET, config.STRIPE_API_URL);
}

/** A PaymentProvider on Stripe; `apiUrl` replaces https://api.stripe.com (host, port, protocol). */
export function stripeProvider(secretKey: string, webhookSecret: string, apiUrl?: string): PaymentProvider {
  const options: Stripe.StripeConfig = {
    httpClient: Stripe.createFetchHttpClient(),
    maxNetworkRetries: 1,
    timeout: 20_000,
    appInfo: { name: "Vox" },
  };
  if (apiUrl) {
    const u = new URL(apiUrl);
    options.host = u.hostname;
    options.protocol = u.protocol === "http:" ? "http" : "https";
    options.port = Number(u.port || (u.protocol === "http:" ? 80 : 443));
  }
  const stripe = new Stripe(secretKey, options);
  const crypto = Stripe.createSubtleCryptoProvider();

  // Library errors carry the request and sometimes the key's last characters; only a plain
  // message leaves this module.
  const wrap = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof ProviderError) throw err;
      const e = err as { type?: string; code?: string; statusCode?: number; message?: string };
      const notFound = e.statusCode === 404 || e.code === "resource_missing";
      throw new ProviderError(
        `Stripe could not ${what}${
          e.statusCode ? ` (HTTP ${e.statusCode}${e.code ? `, ${e.code}` : ""})` : ""
        }`,
        notFound,
      );
    }
  };

  return {
    name: "stripe",

    createCustomer(owner: BillingOwner) {
      return wrap("create a customer", async () => {
        const c = await stripe.customers.create({
          email: owner.email,
          name: owner.name,
          metadata: owner.kind === "user"
            ? { voxUserId: String(owner.userId) }
            : { voxOrganizationId: String(owner.organizationId) },
        });
        return c.id;
      });
    },

    createSubscriptionCheckout(req: CheckoutRequest) {
      return wrap("start a checkout", async () => {
        const metadata = metaOf(req.meta);
        // The tier discount is an amount off every month, so Stripe charges exactly the quoted
        // total (a percentage would be rounded by Stripe, possibly not as the quote rounds).
        const coupon = req.discountCents > 0
          ? await stripe.coupons.create({
            amount_off: req.discountCents,
            currency: req.currency,
            duration: "forever",
            name: `Vox ${req.seats}-seat tier discount`,
            metadata,
          })
          : null;
        const session = await stripe.checkout.sessions.create({
          mode: "subscription",
          customer: req.customerRef,
          line_items: [{
            quantity: req.seats,
            price_data: {
              currency: req.currency,
              unit_amount: req.unitCents,
              recurring: { interval: "month" },
              product_data: { name: req.productName },
            },
          }],
          ...(coupon ? { discounts: [{ coupon: coupon.id }] } : {}),
          metadata,
          subscription_data: { metadata },
          success_url: req.successUrl,
          cancel_url: req.cancelUrl,
        });
        return { id: session.id, url: session.url ?? "" };
      });
    },

    createSetupCheckout(customerRef, urls) {
      return wrap("start saving a payment method", async () => {
        const session = await stripe.checkout.sessions.create({
          mode: "setup",
          customer: customerRef,
          currency: "usd",
          success_url: urls.successUrl,
          cancel_url: urls.cancelUrl,
        });
        return { id: session.id, url: session.url ?? "" };
      });
    },

    listPaymentMethods(customerRef) {
      return wrap("list payment methods", async () => {
        const [customer, methods] = await Promise.all([
          stripe.customers.retrieve(customerRef),
          stripe.customers.listPaymentMethods(customerRef, { limit: 100 }),
        ]);
        const def = "deleted" in customer && customer.deleted
          ? null
          : (customer as Stripe.Customer).invoice_settings?.default_payment_method;
        const defaultId = typeof def === "string" ? def : def?.id ?? null;
        return methods.data.map((m): PaymentMethodInfo => ({
          id: m.id,
          brand: m.card?.brand ?? m.type,
          last4: m.card?.last4 ?? null,
          expMonth: m.card?.exp_month ?? null,
          expYear: m.card?.exp_year ?? null,
          isDefault: m.id === defaultId,
        }));
      });
    },

    removePaymentMethod(customerRef, methodRef) {
      return wrap("remove the payment method", async () => {
        const m = await stripe.paymentMethods.retrieve(methodRef);
        const owner = typeof m.customer === "string" ? m.customer : m.customer?.id;
        if (owner !== customerRef) throw new ProviderError("No such payment method", true);
        await stripe.paymentMethods.detach(methodRef);
      }).catch((err) => {
        throw err instanceof ProviderError && err.notFound
          ? new ProviderError(`No payment method ${methodRef} on this account`, true)
          : err;
      });
    },

    setDefaultPaymentMethod(customerRef, methodRef) {
      return wrap("set the default payment method", async () => {
        const m = await stripe.paymentMethods.retrieve(methodRef);
        const owner = typeof m.customer === "string" ? m.customer : m.customer?.id;
        if (owner !== customerRef) throw new ProviderError("No such payment method", true);
        await stripe.customers.update(customerRef, {
          invoice_settings: { default_payment_method: methodRef },
        });
      }).catch((err) => {
        throw err instanceof ProviderError && err.notFound
          ? new ProviderError(`No payment method ${methodRef} on this account`, true)
          : err;
      });
    },

    cancelSubscription(subscriptionRef, atPeriodEnd) {
      return wrap("cancel the subscription", async () => {
        if (atPeriodEnd) await stripe.subscriptions.update(subscriptionRef, { cancel_at_period_end: true });
        else await stripe.subscriptions.cancel(subscriptionRef);
      });
    },

    paymentOfInvoice(invoiceRef) {
      return wrap("look up the invoice's payment", async () => {
        const payments = await stripe.invoicePayments.list({ invoice: invoiceRef, limit: 10 });
        for (const p of payments.data) {
          const pi = p.payment?.payment_intent;
          if (p.status === "paid" && pi) return typeof pi === "string" ? pi : pi.id;
        }
        return null;
      });
    },

    refund(paymentRef, amountCents, idempotencyKey): Promise<RefundInfo> {
      return wrap("issue the refund", async () => {
        const r = await stripe.refunds.create(
          { payment_intent: paymentRef, amount: amountCents },
          { idempotencyKey },
        );
        return { ref: r.id, amountCents: r.amount, status: r.status ?? "pending" };
      });
    },

    portalUrl(customerRef, returnUrl) {
      return wrap("open the customer portal", async () => {
        const s = await stripe.billingPortal.sessions.create({
          customer: customerRef,
          return_url: returnUrl,
        });
        return s.url;
      });
    },

    async verifyWebhook(rawBody, signature): Promise<ProviderEvent> {
      const event = await stripe.webhooks.constructEventAsync(
        rawBody,
        signature,
        webhookSecret,
        undefined,
        crypto,
      );
      return event as unknown as ProviderEvent;
    },
  };
}

function metaOf(m: CheckoutRequest["meta"]): Record<string, string> {
  const out: Record<string, string> = { voxKind: m.kind, voxSeats: String(m.seats) };
  if (m.userId !== undefined) out.voxUserId = String(m.userId);
  if (m.organizationId !== undefined) out.voxOrganizationId = String(m.organizationId);
  return out;
}
