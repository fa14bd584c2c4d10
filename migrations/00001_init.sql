-- Vox schema, SPEC §4. snake_case tables; the API speaks camelCase.
-- Enumerations are text + CHECK so adding a value is a one-line migration.

-- 12-character random ids ([0-9a-z]) for rows whose id is public and must never change
-- (providers). gen_random_uuid() is core PostgreSQL (13+), so no extension is needed.
CREATE FUNCTION vox_random_id() RETURNS text
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  alphabet constant text := '0123456789abcdefghijklmnopqrstuvwxyz';
  bytes bytea := uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid());
  out text := '';
BEGIN
  FOR i IN 0..11 LOOP
    -- 252 = 7 * 36, so accepting bytes below it keeps the distribution uniform.
    IF get_byte(bytes, i) < 252 THEN
      out := out || substr(alphabet, get_byte(bytes, i) % 36 + 1, 1);
    ELSE
      out := out || substr(alphabet, get_byte(bytes, i + 16) % 36 + 1, 1);
    END IF;
  END LOOP;
  RETURN out;
END $$;

CREATE FUNCTION vox_forbid_id_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.id IS DISTINCT FROM OLD.id THEN
    RAISE EXCEPTION '% id is immutable', TG_TABLE_NAME USING ERRCODE = 'check_violation';
  END IF;
  RETURN NEW;
END $$;

-- ---------------------------------------------------------------- people

CREATE TABLE organizations (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  address       text,
  verified      boolean NOT NULL DEFAULT false,
  verified_at   timestamptz,
  created_by    bigint,
  -- Stripe customer reference, AES-256-GCM sealed with VOX_SECRET_KEY (SPEC §5).
  billing_customer_enc text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
  id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name                text NOT NULL DEFAULT '',
  username            text NOT NULL CHECK (username ~ '^[A-Za-z0-9_.-]{2,40}$'),
  email               text NOT NULL CHECK (position('@' IN email) > 1),
  role                text NOT NULL DEFAULT 'basic'
                      CHECK (role IN ('basic', 'premium', 'principal', 'fellow')),
  is_admin            boolean NOT NULL DEFAULT false,
  -- Argon2id PHC string; null for accounts that only sign in with OAuth.
  password_hash       text CHECK (password_hash IS NULL OR password_hash LIKE '$argon2id$%'),
  organization_id     bigint REFERENCES organizations (id) ON DELETE SET NULL,
  org_role            text CHECK (org_role IN ('member', 'admin')),
  activated_at        timestamptz,
  deactivated_at      timestamptz,
  failed_logins       integer NOT NULL DEFAULT 0,
  locked_until        timestamptz,
  password_changed_at timestamptz,
  created_at          timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now(),
  CHECK ((organization_id IS NULL) = (org_role IS NULL))
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE INDEX users_organization_idx ON users (organization_id) WHERE organization_id IS NOT NULL;
-- Only one account may hold the system admin flag.
CREATE UNIQUE INDEX users_single_admin ON users ((true)) WHERE is_admin;

ALTER TABLE organizations
  ADD CONSTRAINT organizations_created_by_fkey
  FOREIGN KEY (created_by) REFERENCES users (id) ON DELETE SET NULL;

CREATE TABLE sessions (
  -- hex(sha256(token)); the raw token only ever lives in the cookie.
  id                  text PRIMARY KEY CHECK (id ~ '^[0-9a-f]{64}$'),
  user_id             bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at          timestamptz NOT NULL DEFAULT now(),
  last_seen_at        timestamptz NOT NULL DEFAULT now(),
  idle_expires_at     timestamptz NOT NULL,
  absolute_expires_at timestamptz NOT NULL,
  ip                  text,
  user_agent          text
);
CREATE INDEX sessions_user_idx ON sessions (user_id);
CREATE INDEX sessions_expiry_idx ON sessions (idle_expires_at);

CREATE TABLE oauth_accounts (
  provider          text NOT NULL CHECK (provider ~ '^[a-z0-9_-]{2,32}$'),
  provider_user_id  text NOT NULL,
  user_id           bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  email             text,
  created_at        timestamptz NOT NULL DEFAULT now(),
  last_login_at     timestamptz,
  PRIMARY KEY (provider, provider_user_id),
  UNIQUE (user_id, provider)
);

CREATE TABLE activation_tokens (
  token_hash  text PRIMARY KEY CHECK (token_hash ~ '^[0-9a-f]{64}$'),
  user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  purpose     text NOT NULL DEFAULT 'activation' CHECK (purpose IN ('activation', 'password_reset')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  expires_at  timestamptz NOT NULL,
  used_at     timestamptz
);
CREATE INDEX activation_tokens_user_idx ON activation_tokens (user_id);

CREATE TABLE invite_tokens (
  token_hash       text PRIMARY KEY CHECK (token_hash ~ '^[0-9a-f]{64}$'),
  organization_id  bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
  email            text NOT NULL,
  org_role         text NOT NULL DEFAULT 'member' CHECK (org_role IN ('member', 'admin')),
  invited_by       bigint REFERENCES users (id) ON DELETE SET NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  expires_at       timestamptz NOT NULL,
  used_at          timestamptz,
  used_by          bigint REFERENCES users (id) ON DELETE SET NULL,
  revoked_at       timestamptz
);
CREATE INDEX invite_tokens_org_idx ON invite_tokens (organization_id);

CREATE TABLE api_keys (
  -- The public key id embedded in vox_live_<id>_<secret>; lookups go by it.
  id            text PRIMARY KEY CHECK (id ~ '^[0-9a-z]{12}$'),
  user_id       bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  secret_hash   text NOT NULL CHECK (secret_hash ~ '^[0-9a-f]{64}$'),
  display_prefix text NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz,
  last_used_at  timestamptz,
  usage_count   bigint NOT NULL DEFAULT 0,
  revoked_at    timestamptz
);
CREATE INDEX api_keys_user_idx ON api_keys (user_id);

-- ---------------------------------------------------------------- reference data

CREATE TABLE providers (
  id          text PRIMARY KEY DEFAULT vox_random_id() CHECK (id ~ '^[0-9a-z]{12}$'),
  name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  sku         smallint NOT NULL CHECK (sku IN (0, 1)),
  website     text,
  description text NOT NULL DEFAULT '',
  created_by  bigint REFERENCES users (id) ON DELETE SET NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX providers_name_key ON providers (lower(name));
CREATE TRIGGER providers_id_immutable BEFORE UPDATE ON providers
  FOR EACH ROW EXECUTE FUNCTION vox_forbid_id_change();

CREATE TABLE system_config (
  key         text PRIMARY KEY CHECK (key ~ '^[a-z][a-z0-9_.]{1,80}$'),
  value       jsonb NOT NULL,
  description text NOT NULL DEFAULT '',
  updated_at  timestamptz NOT NULL DEFAULT now(),
  updated_by  bigint REFERENCES users (id) ON DELETE SET NULL
);

CREATE TABLE plan_limits (
  owner_kind                text PRIMARY KEY CHECK (owner_kind IN
                            ('basic', 'premium', 'principal', 'fellow', 'organization', 'org_member')),
  max_projects              integer NOT NULL CHECK (max_projects >= 0),
  max_workflows_per_project integer NOT NULL CHECK (max_workflows_per_project >= 0),
  updated_at                timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE pricing_config (
  plan              text PRIMARY KEY CHECK (plan IN ('solo', 'organization')),
  unit_price_cents  integer NOT NULL CHECK (unit_price_cents >= 0),
  currency          text NOT NULL DEFAULT 'usd' CHECK (currency ~ '^[a-z]{3}$'),
  period            text NOT NULL DEFAULT 'month' CHECK (period IN ('month')),
  updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Discount by the number of seats bought in one transaction (SPEC §3).
-- discount_bps: basis points, 1000 = 10 %, so money stays integer.
CREATE TABLE pricing_discounts (
  min_seats     integer PRIMARY KEY CHECK (min_seats >= 1),
  max_seats     integer CHECK (max_seats IS NULL OR max_seats >= min_seats),
  discount_bps  integer NOT NULL CHECK (discount_bps BETWEEN 0 AND 10000)
);

-- ---------------------------------------------------------------- evaluation

CREATE TABLE projects (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  description      text NOT NULL DEFAULT '',
  owner_user_id    bigint REFERENCES users (id) ON DELETE CASCADE,
  organization_id  bigint REFERENCES organizations (id) ON DELETE CASCADE,
  created_by       bigint REFERENCES users (id) ON DELETE SET NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  CHECK ((owner_user_id IS NULL) <> (organization_id IS NULL))
);
CREATE UNIQUE INDEX projects_user_name_key ON projects (owner_user_id, lower(name))
  WHERE owner_user_id IS NOT NULL;
CREATE UNIQUE INDEX projects_org_name_key ON projects (organization_id, lower(name))
  WHERE organization_id IS NOT NULL;

CREATE TABLE workflows (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id   bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  provider_id  text NOT NULL REFERENCES providers (id),
  name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  description  text NOT NULL DEFAULT '',
  -- voice-agent-tester application config (url | html, steps, tags), validated by the app.
  config       jsonb NOT NULL CHECK (jsonb_typeof(config) = 'object'),
  -- Credentials the product under test needs, AES-256-GCM sealed (SPEC §5).
  secrets_enc  text,
  visibility   text NOT NULL DEFAULT 'public' CHECK (visibility IN ('public', 'private')),
  is_mainline  boolean NOT NULL DEFAULT false,
  created_by   bigint REFERENCES users (id) ON DELETE SET NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  -- A private workflow cannot feed the public mainline board.
  CHECK (NOT (is_mainline AND visibility = 'private'))
);
CREATE INDEX workflows_project_idx ON workflows (project_id);
CREATE INDEX workflows_provider_idx ON workflows (provider_id);
CREATE INDEX workflows_mainline_idx ON workflows (id) WHERE is_mainline;

CREATE TABLE eval_sets (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id   bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  name         text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  description  text NOT NULL DEFAULT '',
  -- voice-agent-tester scenario config (steps, tags), validated by the app.
  config       jsonb NOT NULL CHECK (jsonb_typeof(config) = 'object'),
  visibility   text NOT NULL DEFAULT 'public' CHECK (visibility IN ('public', 'private')),
  is_mainline  boolean NOT NULL DEFAULT false,
  created_by   bigint REFERENCES users (id) ON DELETE SET NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  CHECK (NOT (is_mainline AND visibility = 'private'))
);
CREATE INDEX eval_sets_project_idx ON eval_sets (project_id);

CREATE TABLE eval_agent_tokens (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
  region        text NOT NULL CHECK (region ~ '^[a-z0-9][a-z0-9-]{0,39}$'),
  token_hash    text NOT NULL UNIQUE CHECK (token_hash ~ '^[0-9a-f]{64}$'),
  display_prefix text NOT NULL,
  created_by    bigint REFERENCES users (id) ON DELETE SET NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz,
  revoked_at    timestamptz,
  last_used_at  timestamptz
);

CREATE TABLE eval_agents (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  token_id      bigint NOT NULL REFERENCES eval_agent_tokens (id) ON DELETE CASCADE,
  name          text NOT NULL DEFAULT '',
  region        text NOT NULL CHECK (region ~ '^[a-z0-9][a-z0-9-]{0,39}$'),
  state         text NOT NULL DEFAULT 'OFFLINE' CHECK (state IN ('IDLE', 'OCCUPIED', 'OFFLINE')),
  version       text NOT NULL DEFAULT '',
  capacity      integer NOT NULL DEFAULT 1 CHECK (capacity BETWEEN 1 AND 64),
  -- Which server process holds the agent's socket (for cross-process dispatch).
  server_id     text,
  created_at    timestamptz NOT NULL DEFAULT now(),
  expires_at    timestamptz,
  last_seen_at  timestamptz,
  last_job_at   timestamptz,
  last_job_id   bigint
);
CREATE INDEX eval_agents_region_state_idx ON eval_agents (region, state);
CREATE INDEX eval_agents_token_idx ON eval_agents (token_id);

CREATE TABLE eval_schedules (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  workflow_id      bigint NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
  eval_set_id      bigint NOT NULL REFERENCES eval_sets (id) ON DELETE CASCADE,
  region           text NOT NULL CHECK (region ~ '^[a-z0-9][a-z0-9-]{0,39}$'),
  schedule_type    text NOT NULL CHECK (schedule_type IN ('once', 'recurring')),
  cron_expression  text,
  timezone         text NOT NULL DEFAULT 'UTC',
  run_at           timestamptz,
  is_enabled       boolean NOT NULL DEFAULT true,
  next_run_at      timestamptz,
  last_run_at      timestamptz,
  run_count        integer NOT NULL DEFAULT 0 CHECK (run_count >= 0),
  max_runs         integer CHECK (max_runs IS NULL OR max_runs >= 1),
  priority         integer NOT NULL DEFAULT 0,
  created_by       bigint REFERENCES users (id) ON DELETE SET NULL,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  CHECK (schedule_type <> 'recurring' OR cron_expression IS NOT NULL),
  CHECK (schedule_type <> 'once' OR run_at IS NOT NULL)
);
-- The cron tick scans only enabled schedules that are due.
CREATE INDEX eval_schedules_due_idx ON eval_schedules (next_run_at) WHERE is_enabled;
CREATE INDEX eval_schedules_workflow_idx ON eval_schedules (workflow_id);

CREATE TABLE eval_jobs (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  workflow_id    bigint NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
  eval_set_id    bigint NOT NULL REFERENCES eval_sets (id) ON DELETE CASCADE,
  region         text NOT NULL CHECK (region ~ '^[a-z0-9][a-z0-9-]{0,39}$'),
  schedule_id    bigint REFERENCES eval_schedules (id) ON DELETE SET NULL,
  -- The due time a schedule fired for; with schedule_id it makes each firing unique.
  scheduled_for  timestamptz,
  status         text NOT NULL DEFAULT 'pending'
                 CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
  priority       integer NOT NULL DEFAULT 0,
  attempts       integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  max_attempts   integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
  agent_id       bigint REFERENCES eval_agents (id) ON DELETE SET NULL,
  repeat         integer NOT NULL DEFAULT 1 CHECK (repeat BETWEEN 1 AND 100),
  progress       jsonb,
  created_by     bigint REFERENCES users (id) ON DELETE SET NULL,
  created_at     timestamptz NOT NULL DEFAULT now(),
  run_after      timestamptz NOT NULL DEFAULT now(),
  started_at     timestamptz,
  heartbeat_at   timestamptz,
  finished_at    timestamptz,
  error          text,
  CHECK (status <> 'running' OR agent_id IS NOT NULL OR attempts > 0)
);
-- Claiming: the oldest highest-priority pending job of a region.
CREATE INDEX eval_jobs_claim_idx ON eval_jobs (region, priority DESC, id)
  WHERE status = 'pending';
CREATE INDEX eval_jobs_running_idx ON eval_jobs (agent_id) WHERE status = 'running';
CREATE INDEX eval_jobs_workflow_idx ON eval_jobs (workflow_id, id DESC);
CREATE INDEX eval_jobs_created_by_idx ON eval_jobs (created_by, id DESC);
CREATE UNIQUE INDEX eval_jobs_schedule_firing_key ON eval_jobs (schedule_id, scheduled_for)
  WHERE schedule_id IS NOT NULL AND scheduled_for IS NOT NULL;

CREATE TABLE eval_results (
  id                        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  job_id                    bigint NOT NULL UNIQUE REFERENCES eval_jobs (id) ON DELETE CASCADE,
  workflow_id               bigint NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
  eval_set_id               bigint NOT NULL REFERENCES eval_sets (id) ON DELETE CASCADE,
  provider_id               text NOT NULL REFERENCES providers (id),
  region                    text NOT NULL,
  schedule_id               bigint REFERENCES eval_schedules (id) ON DELETE SET NULL,
  agent_id                  bigint REFERENCES eval_agents (id) ON DELETE SET NULL,
  -- Snapshot of workflow and eval set being mainline when the result was stored,
  -- so public boards read one index instead of joining.
  is_mainline               boolean NOT NULL DEFAULT false,
  response_latency_median   double precision,
  response_latency_sd       double precision,
  response_latency_p90      double precision,
  response_latency_n        integer NOT NULL DEFAULT 0 CHECK (response_latency_n >= 0),
  interrupt_latency_median  double precision,
  interrupt_latency_sd      double precision,
  interrupt_latency_p90     double precision,
  interrupt_latency_n       integer NOT NULL DEFAULT 0 CHECK (interrupt_latency_n >= 0),
  network_resilience        double precision CHECK (network_resilience BETWEEN 0 AND 100),
  naturalness               double precision CHECK (naturalness BETWEEN 0 AND 100),
  noise_reduction           double precision CHECK (noise_reduction BETWEEN 0 AND 100),
  turns                     jsonb NOT NULL DEFAULT '[]',
  methods                   jsonb NOT NULL DEFAULT '{}',
  report                    jsonb,
  created_at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX eval_results_public_idx ON eval_results (provider_id, region, created_at)
  WHERE is_mainline;
CREATE INDEX eval_results_created_idx ON eval_results (created_at);
CREATE INDEX eval_results_workflow_idx ON eval_results (workflow_id, created_at DESC);

-- Recordings and other files kept with a result (stereo WAV: caller left, agent right).
CREATE TABLE eval_artifacts (
  id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  job_id        bigint NOT NULL REFERENCES eval_jobs (id) ON DELETE CASCADE,
  kind          text NOT NULL CHECK (kind IN ('recording', 'screenshot', 'log', 'report')),
  name          text NOT NULL,
  content_type  text NOT NULL,
  size_bytes    integer NOT NULL CHECK (size_bytes >= 0),
  sha256        text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  data          bytea NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  UNIQUE (job_id, name)
);

-- ---------------------------------------------------------------- billing

CREATE TABLE payment_methods (
  id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id          bigint REFERENCES users (id) ON DELETE CASCADE,
  organization_id  bigint REFERENCES organizations (id) ON DELETE CASCADE,
  provider         text NOT NULL DEFAULT 'stripe' CHECK (provider ~ '^[a-z0-9_-]{2,32}$'),
  -- The payment provider's reference, AES-256-GCM sealed.
  provider_ref_enc text NOT NULL,
  brand            text,
  last4            text CHECK (last4 IS NULL OR last4 ~ '^[0-9]{4}$'),
  exp_month        smallint CHECK (exp_month BETWEEN 1 AND 12),
  exp_year         smallint,
  is_default       boolean NOT NULL DEFAULT false,
  created_at       timestamptz NOT NULL DEFAULT now(),
  deleted_at       timestamptz,
  CHECK ((user_id IS NULL) <> (organization_id IS NULL))
);

CREATE TABLE payment_histories (
  id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id              bigint REFERENCES users (id) ON DELETE SET NULL,
  organization_id      bigint REFERENCES organizations (id) ON DELETE SET NULL,
  provider             text NOT NULL DEFAULT 'stripe',
  provider_payment_ref text,
  kind                 text NOT NULL CHECK (kind IN ('solo_seat', 'organization_seats', 'refund')),
  seats                integer NOT NULL DEFAULT 1 CHECK (seats >= 0),
  amount_cents         integer NOT NULL,
  refunded_cents       integer NOT NULL DEFAULT 0 CHECK (refunded_cents >= 0),
  currency             text NOT NULL DEFAULT 'usd',
  status               text NOT NULL CHECK (status IN ('pending', 'succeeded', 'failed', 'refunded', 'partially_refunded')),
  description          text NOT NULL DEFAULT '',
  created_at           timestamptz NOT NULL DEFAULT now(),
  updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX payment_histories_ref_key ON payment_histories (provider, provider_payment_ref)
  WHERE provider_payment_ref IS NOT NULL;
CREATE INDEX payment_histories_user_idx ON payment_histories (user_id);
CREATE INDEX payment_histories_org_idx ON payment_histories (organization_id);

CREATE TABLE organization_seats (
  id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  organization_id     bigint NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
  seats               integer NOT NULL CHECK (seats >= 1),
  unit_price_cents    integer NOT NULL CHECK (unit_price_cents >= 0),
  discount_bps        integer NOT NULL CHECK (discount_bps BETWEEN 0 AND 10000),
  total_cents         integer NOT NULL CHECK (total_cents >= 0),
  payment_history_id  bigint REFERENCES payment_histories (id) ON DELETE SET NULL,
  status              text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'active', 'cancelled', 'expired')),
  starts_at           timestamptz NOT NULL DEFAULT now(),
  expires_at          timestamptz,
  created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX organization_seats_org_idx ON organization_seats (organization_id);

CREATE TABLE fund_return_requests (
  id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id             bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  payment_history_id  bigint NOT NULL REFERENCES payment_histories (id) ON DELETE CASCADE,
  amount_cents        integer NOT NULL CHECK (amount_cents > 0),
  reason              text NOT NULL DEFAULT '',
  status              text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
  reviewed_by         bigint REFERENCES users (id) ON DELETE SET NULL,
  reviewed_at         timestamptz,
  review_note         text,
  refund_ref          text,
  created_at          timestamptz NOT NULL DEFAULT now()
);
-- One open request per payment.
CREATE UNIQUE INDEX fund_return_requests_open_key ON fund_return_requests (payment_history_id)
  WHERE status = 'pending';

CREATE TABLE stripe_events (
  id            text PRIMARY KEY,
  type          text NOT NULL,
  received_at   timestamptz NOT NULL DEFAULT now(),
  processed_at  timestamptz
);

-- ---------------------------------------------------------------- operations

CREATE TABLE audit_log (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at             timestamptz NOT NULL DEFAULT now(),
  actor_user_id  bigint REFERENCES users (id) ON DELETE SET NULL,
  action         text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_.]{1,80}$'),
  target_type    text,
  target_id      text,
  ip             text,
  details        jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at_idx ON audit_log (at DESC);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_user_id, at DESC);

-- Fixed-window counters shared by every server process.
CREATE TABLE rate_limit_hits (
  bucket        text NOT NULL,
  window_start  timestamptz NOT NULL,
  hits          integer NOT NULL DEFAULT 0,
  PRIMARY KEY (bucket, window_start)
);
