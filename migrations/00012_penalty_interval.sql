-- The turn-taking penalty gets a 95 % interval like the latencies (issue 20: "with n and
-- intervals under the integrity rules"): the rollups keep the sum of squares of the results'
-- penalties. Days that already hold penalties are marked for recomputation (migration 00005's
-- queue), so the next fold fills the new column from eval_results.
ALTER TABLE eval_rollups ADD COLUMN tt_penalty_sumsq double precision NOT NULL DEFAULT 0;
INSERT INTO eval_rollup_dirty (provider_id, region, day)
SELECT DISTINCT provider_id, region, date_trunc('day', bucket, 'UTC')
FROM eval_rollups WHERE tt_penalty_n > 0;
