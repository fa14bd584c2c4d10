-- Billing (issue 12): a payment provider's subscriptions mirrored from its webhooks, so that a
-- paid solo subscription makes its user Premium and an organization's seat purchases count as
-- its seats, whatever order the provider's events arrive in.

-- A user's customer reference at the payment provider, sealed like organizations'
-- (AES-256-GCM with VOX_SECRET_KEY, SPEC §5).
ALTER TABLE users ADD COLUMN billing_customer_enc text;

-- One row per subscription at the provider. Every field is filled from whichever event brings
-- it first (checkout completed, subscription created/updated/deleted, invoice paid/failed):
-- webhooks are not ordered, so no event may assume another came before it.
CREATE TABLE billing_subscriptions (
  id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  provider              text NOT NULL DEFAULT 'stripe' CHECK (provider ~ '^[a-z0-9_-]{2,32}$'),
  -- The provider's subscription id (not a secret: it is useless without the account's key).
  provider_ref          text NOT NULL,
  user_id               bigint REFERENCES users (id) ON DELETE CASCADE,
  organization_id       bigint REFERENCES organizations (id) ON DELETE CASCADE,
  kind                  text NOT NULL CHECK (kind IN ('solo', 'organization')),
  seats                 integer NOT NULL DEFAULT 1 CHECK (seats >= 1),
  -- The provider's status; null until a subscription event says it (an invoice came first).
  status                text,
  -- The provider's created time of the event that set `status` (seconds resolution), so an
  -- older event delivered late cannot overwrite a newer one.
  status_event_at       timestamptz,
  cancel_at_period_end  boolean NOT NULL DEFAULT false,
  current_period_end    timestamptz,
  -- Paid up to here (the end of the latest paid invoice's period).
  paid_through          timestamptz,
  -- When the powers this subscription gives end (cancellation, final payment failure, refund);
  -- null while it renews.
  ends_at               timestamptz,
  created_at            timestamptz NOT NULL DEFAULT now(),
  updated_at            timestamptz NOT NULL DEFAULT now(),
  UNIQUE (provider, provider_ref),
  CHECK ((user_id IS NULL) <> (organization_id IS NULL)),
  CHECK ((kind = 'solo') = (user_id IS NOT NULL))
);
CREATE INDEX billing_subscriptions_user_idx ON billing_subscriptions (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX billing_subscriptions_org_idx ON billing_subscriptions (organization_id)
  WHERE organization_id IS NOT NULL;

-- Payments know their subscription and the provider's payment (what a refund is issued on).
ALTER TABLE payment_histories
  ADD COLUMN subscription_id bigint REFERENCES billing_subscriptions (id) ON DELETE SET NULL,
  ADD COLUMN provider_intent_ref text,
  ADD COLUMN period_end timestamptz,
  ADD COLUMN refunds_payment_id bigint REFERENCES payment_histories (id) ON DELETE SET NULL;
CREATE INDEX payment_histories_intent_idx ON payment_histories (provider, provider_intent_ref)
  WHERE provider_intent_ref IS NOT NULL;

-- A seat purchase is one subscription (the discount belongs to the seats bought together).
ALTER TABLE organization_seats
  ADD COLUMN subscription_id bigint UNIQUE REFERENCES billing_subscriptions (id) ON DELETE CASCADE;

-- Fund returns of an organization's payments are requested by one of its admins.
ALTER TABLE fund_return_requests
  ADD COLUMN organization_id bigint REFERENCES organizations (id) ON DELETE CASCADE;
CREATE INDEX fund_return_requests_status_idx ON fund_return_requests (status, created_at);

-- A full refund of a subscription's latest payment ends its powers at once.
ALTER TABLE billing_subscriptions ADD COLUMN revoked_at timestamptz;
