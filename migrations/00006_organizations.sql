-- Organizations (issue 12): membership order, invite ids, an organization's providers, and the
-- rule that makes an organization's paid seats Premium powers (lib/orgs.ts).

-- When a user joined their organization: paid seats cover members in the order admins first,
-- then by joining, so a lapsed seat count takes powers from the newest members, not at random.
-- A trigger keeps it, so every path that sets organization_id (tests, SQL, the API) agrees.
ALTER TABLE users ADD COLUMN org_joined_at timestamptz;
UPDATE users SET org_joined_at = created_at WHERE organization_id IS NOT NULL;

CREATE FUNCTION vox_users_org_joined() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.organization_id IS NULL THEN
    NEW.org_joined_at := NULL;
  ELSIF TG_OP = 'INSERT' OR OLD.organization_id IS DISTINCT FROM NEW.organization_id THEN
    NEW.org_joined_at := coalesce(CASE WHEN TG_OP = 'INSERT' THEN NEW.org_joined_at END, now());
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER users_org_joined BEFORE INSERT OR UPDATE OF organization_id ON users
  FOR EACH ROW EXECUTE FUNCTION vox_users_org_joined();

-- Invites get a public id (the primary key is the token's hash, which must not leave the server)
-- and one open invite per address per organization.
ALTER TABLE invite_tokens ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY UNIQUE;
CREATE UNIQUE INDEX invite_tokens_open_email_key ON invite_tokens (organization_id, lower(email))
  WHERE used_at IS NULL AND revoked_at IS NULL;

-- A provider may belong to an organization (the administrator links it when verifying the
-- organization); public pages show the verified badge beside such providers.
ALTER TABLE providers ADD COLUMN organization_id bigint REFERENCES organizations (id) ON DELETE SET NULL;
CREATE INDEX providers_organization_idx ON providers (organization_id) WHERE organization_id IS NOT NULL;

CREATE INDEX organization_seats_active_idx ON organization_seats (organization_id) WHERE status = 'active';

-- Seats an organization has paid for right now: active purchases whose period has started and
-- not ended (billing keeps organization_seats; lapsed ones are 'expired' or past expires_at).
CREATE FUNCTION vox_org_paid_seats(org bigint) RETURNS integer LANGUAGE sql STABLE AS $$
  SELECT coalesce(sum(seats), 0)::int FROM organization_seats
  WHERE organization_id = org AND status = 'active' AND starts_at <= now()
    AND (expires_at IS NULL OR expires_at > now())
$$;

-- Whether user `uid` holds one of their organization's paid seats: members are ranked admins
-- first, then by joining (then id), and the first vox_org_paid_seats() of them hold one.
CREATE FUNCTION vox_holds_paid_seat(uid bigint) RETURNS boolean LANGUAGE sql STABLE AS $$
  SELECT coalesce((
    SELECT (SELECT count(*) FROM users m
            WHERE m.organization_id = u.organization_id
              AND ((m.org_role = 'admin') > (u.org_role = 'admin')
                   OR ((m.org_role = 'admin') = (u.org_role = 'admin')
                       AND (m.org_joined_at, m.id) < (u.org_joined_at, u.id))))
           < vox_org_paid_seats(u.organization_id)
    FROM users u WHERE u.id = uid AND u.organization_id IS NOT NULL), false)
$$;

-- The role a user acts with: a basic member holding a paid organization seat has Premium
-- powers while the seat is paid; the stored role is unchanged.
CREATE FUNCTION vox_effective_role(uid bigint, stored text) RETURNS text LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN stored = 'basic' AND vox_holds_paid_seat(uid) THEN 'premium' ELSE stored END
$$;
