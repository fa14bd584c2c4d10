// What Vox needs from a payment provider, so that Stripe is one implementation among possible
// others (SPEC §3). Amounts are integer cents; references are the provider's own ids.

/** Who pays: a solo user or an organization. */
export type BillingOwner =
  | { kind: "user"; userId: number; email: string; name: string }
  | { kind: "organization"; organizationId: number; name: string; email: string };

/** What a subscription is for; travels with it as metadata, so webhooks can tell. */
export interface PurchaseMeta {
  kind: "solo" | "organization";
  userId?: number;
  organizationId?: number;
  seats: number;
}

/** A monthly subscription checkout: `seats` at `unitCents`, with `discountCents` off each month. */
export interface CheckoutRequest {
  customerRef: string;
  meta: PurchaseMeta;
  productName: string;
  currency: string;
  unitCents: number;
  seats: number;
  /** The per-transaction tier discount for the whole purchase, in cents per month. */
  discountCents: number;
  successUrl: string;
  cancelUrl: string;
}

/** A card (or other method) saved with the provider. */
export interface PaymentMethodInfo {
  id: string;
  brand: string | null;
  last4: string | null;
  expMonth: number | null;
  expYear: number | null;
  isDefault: boolean;
}

/** A refund the provider issued. */
export interface RefundInfo {
  ref: string;
  amountCents: number;
  status: string;
}

/** A verified webhook event, in the provider's own shape (handled by lib/billing/webhooks.ts). */
export interface ProviderEvent {
  id: string;
  type: string;
  /** Unix seconds. */
  created: number;
  data: { object: Record<string, unknown> };
}

/** The provider refused or could not be reached; `notFound` when the reference does not exist. */
export class ProviderError extends Error {
  override name = "ProviderError";
  constructor(message: string, readonly notFound = false, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A payment provider: customers, checkout, payment methods, refunds, portal and webhooks. */
export interface PaymentProvider {
  readonly name: string;
  createCustomer(owner: BillingOwner): Promise<string>;
  /** A hosted checkout page for a monthly subscription; answers its URL. */
  createSubscriptionCheckout(req: CheckoutRequest): Promise<{ id: string; url: string }>;
  /** A hosted page that saves a payment method through a SetupIntent; answers its URL. */
  createSetupCheckout(
    customerRef: string,
    urls: { successUrl: string; cancelUrl: string },
  ): Promise<{ id: string; url: string }>;
  listPaymentMethods(customerRef: string): Promise<PaymentMethodInfo[]>;
  /** Detaches a method; ProviderError(notFound) when the customer has no such method. */
  removePaymentMethod(customerRef: string, methodRef: string): Promise<void>;
  setDefaultPaymentMethod(customerRef: string, methodRef: string): Promise<void>;
  /** Ends a subscription at the end of its paid period (`atPeriodEnd`) or now. */
  cancelSubscription(subscriptionRef: string, atPeriodEnd: boolean): Promise<void>;
  /** The provider's payment behind an invoice (what refunds are issued on), or null. */
  paymentOfInvoice(invoiceRef: string): Promise<string | null>;
  refund(paymentRef: string, amountCents: number, idempotencyKey: string): Promise<RefundInfo>;
  /** The provider's customer portal (invoices, receipts); answers its URL. */
  portalUrl(customerRef: string, returnUrl: string): Promise<string>;
  /** Checks the signature over the raw body; throws when it does not match. */
  verifyWebhook(rawBody: string, signature: string): Promise<ProviderEvent>;
}
