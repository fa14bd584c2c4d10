-- Rollups never drift (issue 13). Deleting mainline results (a workflow, eval set, project or
-- user deleted, cascading) or changing a result's mainline flag (un-marking mainline) marks
-- the provider × region × UTC day it touched; the roller (rollUpResults() in lib/metrics.ts)
-- recomputes those days' minute, hour and day rollups from eval_results before folding the
-- queue. The triggers only append rows here (no shared row is locked).
CREATE TABLE eval_rollup_dirty (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  provider_id text NOT NULL,
  region      text NOT NULL,
  day         timestamptz NOT NULL
);

CREATE FUNCTION vox_rollup_dirty_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO eval_rollup_dirty (provider_id, region, day)
  SELECT DISTINCT provider_id, region, date_trunc('day', created_at, 'UTC') FROM gone WHERE is_mainline;
  RETURN NULL;
END $$;

CREATE TRIGGER eval_results_rollup_deleted AFTER DELETE ON eval_results
  REFERENCING OLD TABLE AS gone FOR EACH STATEMENT EXECUTE FUNCTION vox_rollup_dirty_deleted();

CREATE FUNCTION vox_rollup_dirty_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO eval_rollup_dirty (provider_id, region, day)
  VALUES (OLD.provider_id, OLD.region, date_trunc('day', OLD.created_at, 'UTC')),
         (NEW.provider_id, NEW.region, date_trunc('day', NEW.created_at, 'UTC'));
  RETURN NULL;
END $$;

CREATE TRIGGER eval_results_rollup_changed
  AFTER UPDATE OF is_mainline, provider_id, region, created_at ON eval_results
  FOR EACH ROW
  WHEN ((OLD.is_mainline OR NEW.is_mainline) AND (OLD.is_mainline, OLD.provider_id, OLD.region, OLD.created_at)
        IS DISTINCT FROM (NEW.is_mainline, NEW.provider_id, NEW.region, NEW.created_at))
  EXECUTE FUNCTION vox_rollup_dirty_changed();
