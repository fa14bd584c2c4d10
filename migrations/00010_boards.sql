-- Trustworthy boards, part two (issue 13): admin exclusions with a reason, method-version
-- separation, turn counts for n and the 95 % interval, and report receipts.

-- An administrator can take a result off the boards with a recorded reason; the result stays
-- (its owner still sees it, the provider page lists it as excluded with the reason). A result
-- feeds the boards when it is mainline and not excluded.
ALTER TABLE eval_results
  ADD COLUMN excluded_at timestamptz,
  ADD COLUMN excluded_by bigint REFERENCES users (id) ON DELETE SET NULL,
  ADD COLUMN excluded_reason text CHECK (excluded_reason IS NULL OR length(excluded_reason) BETWEEN 1 AND 500),
  ADD CONSTRAINT eval_results_exclusion_reason CHECK ((excluded_at IS NULL) = (excluded_reason IS NULL));

-- The set of method versions that produced a result (jsonb's text form is canonical: keys in
-- one order, one spacing), so figures from different method versions are never pooled.
ALTER TABLE eval_results ADD COLUMN method_set text GENERATED ALWAYS AS (methods::text) STORED;

-- Receipt of the stored report: SHA-256 of its canonical text, set once when the result is
-- stored (`deno task verify` recomputes it). Recordings carry theirs in eval_artifacts.sha256.
ALTER TABLE eval_results ADD COLUMN report_sha256 text CHECK (report_sha256 ~ '^[0-9a-f]{64}$');
UPDATE eval_results SET report_sha256 = encode(sha256(convert_to(report::text, 'UTF8')), 'hex')
  WHERE report IS NOT NULL;

CREATE FUNCTION vox_result_receipt() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.report_sha256 := CASE WHEN NEW.report IS NULL THEN NULL
    ELSE encode(sha256(convert_to(NEW.report::text, 'UTF8')), 'hex') END;
  RETURN NEW;
END $$;
CREATE TRIGGER eval_results_receipt BEFORE INSERT ON eval_results
  FOR EACH ROW EXECUTE FUNCTION vox_result_receipt();

-- Rollups per method set, with the number of turns behind each figure (the per-job sums
-- give the interval across jobs; the turn count is the n a figure needs before it is ranked).
-- The rollups are rebuilt: every board result is queued again and folded by the roller.
DELETE FROM eval_rollups;
ALTER TABLE eval_rollups
  ADD COLUMN method_set text NOT NULL DEFAULT '{}',
  ADD COLUMN response_turns bigint NOT NULL DEFAULT 0,
  ADD COLUMN interrupt_turns bigint NOT NULL DEFAULT 0;
ALTER TABLE eval_rollups DROP CONSTRAINT eval_rollups_pkey;
ALTER TABLE eval_rollups ADD PRIMARY KEY (bucket_size, provider_id, region, method_set, bucket);
DELETE FROM eval_rollup_dirty;
INSERT INTO eval_rollup_queue (result_id)
  SELECT id FROM eval_results WHERE is_mainline AND excluded_at IS NULL
  ON CONFLICT DO NOTHING;

-- Excluding or restoring a result moves it off or back onto the boards: its day is recomputed.
DROP TRIGGER eval_results_rollup_changed ON eval_results;
CREATE TRIGGER eval_results_rollup_changed
  AFTER UPDATE OF is_mainline, provider_id, region, created_at, excluded_at ON eval_results
  FOR EACH ROW
  WHEN ((OLD.is_mainline OR NEW.is_mainline)
        AND (OLD.is_mainline, OLD.provider_id, OLD.region, OLD.created_at, OLD.excluded_at IS NULL)
        IS DISTINCT FROM (NEW.is_mainline, NEW.provider_id, NEW.region, NEW.created_at, NEW.excluded_at IS NULL))
  EXECUTE FUNCTION vox_rollup_dirty_changed();

CREATE INDEX eval_results_excluded_idx ON eval_results (provider_id, excluded_at) WHERE excluded_at IS NOT NULL;

-- Provider names: a user-named product no longer takes its name for everyone. Curated
-- (public) names are unique among themselves; a private name is unique per creator, so
-- nobody can squat a name another user or a curated provider would need.
DROP INDEX providers_name_key;
CREATE UNIQUE INDEX providers_curated_name_key ON providers (lower(name)) WHERE curated;
CREATE UNIQUE INDEX providers_private_name_key ON providers (created_by, lower(name)) WHERE NOT curated;

-- The demo's system user is a deactivated principal (nobody can sign in as it) whose schedule
-- feeds the boards; a person's deactivated account no longer does. The flag tells them apart.
ALTER TABLE users ADD COLUMN is_system boolean NOT NULL DEFAULT false;
UPDATE users SET is_system = true WHERE lower(username) = 'vox-demo' AND lower(email) = 'demo@vox.invalid';
-- The demo's provider is the system's, so it is curated like the seeded ones.
UPDATE providers SET curated = true WHERE created_by IN (SELECT id FROM users WHERE is_system);
