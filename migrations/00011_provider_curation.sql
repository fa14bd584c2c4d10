-- Curated provider entries (issue 13): principals and the admin keep each public provider's
-- name, website, product type, description and verified flag. `verified` is the curators'
-- statement that the entry is the vendor it names (public pages show the badge); a verified
-- organization's providers show it too (lib/orgs.ts).
ALTER TABLE providers ADD COLUMN verified boolean NOT NULL DEFAULT false;
ALTER TABLE providers ADD COLUMN updated_at timestamptz;
ALTER TABLE providers ADD CONSTRAINT providers_website_http
  CHECK (website IS NULL OR website ~ '^https?://[^\s]+$');
ALTER TABLE providers ADD CONSTRAINT providers_verified_curated CHECK (NOT verified OR curated);
COMMENT ON COLUMN providers.verified IS
  'Set by a curator (principal or admin): the entry is the vendor it names; only curated entries';
