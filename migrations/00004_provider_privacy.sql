-- Providers named by users stay private (issue 13): a provider is public when it is curated
-- (seeded or entered by the admin) or once it appears in a mainline result; until then only
-- its creator sees it. Rows that exist now and were made by no user are the seeded ones.
ALTER TABLE providers ADD COLUMN curated boolean NOT NULL DEFAULT false;
UPDATE providers SET curated = true WHERE created_by IS NULL;
COMMENT ON COLUMN providers.curated IS
  'Public without a mainline result (seeded or entered by the admin); otherwise private to created_by until it has one';
