-- Eval orchestration (issue 4): agent identity, job bookkeeping and public metric rollups.

-- An agent is its token plus the name it announces, so a reconnecting agent finds its row
-- and the jobs it still holds.
CREATE UNIQUE INDEX eval_agents_token_name_key ON eval_agents (token_id, name);
-- The socket currently speaking for the agent; a late close of an older socket must not
-- mark a newer connection offline.
ALTER TABLE eval_agents ADD COLUMN connection_id uuid;

ALTER TABLE eval_jobs ADD COLUMN accepted_at timestamptz;
-- The heartbeat reaper scans running jobs by their last heartbeat.
CREATE INDEX eval_jobs_heartbeat_idx ON eval_jobs (heartbeat_at) WHERE status = 'running';
CREATE INDEX eval_jobs_schedule_idx ON eval_jobs (schedule_id, id DESC) WHERE schedule_id IS NOT NULL;

-- Public metrics read pre-aggregated buckets instead of scanning eval_results. Inserting a
-- mainline result only appends its id to eval_rollup_queue (no shared row is locked, so
-- concurrent result commits never queue behind one another); a roller folds the queue into
-- eval_rollups in batches, taking rows with SKIP LOCKED so several processes can roll at once.
CREATE TABLE eval_rollup_queue (
  result_id bigint PRIMARY KEY REFERENCES eval_results (id) ON DELETE CASCADE
);

CREATE TABLE eval_rollups (
  bucket_size       text NOT NULL CHECK (bucket_size IN ('minute', 'hour', 'day')),
  provider_id       text NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
  region            text NOT NULL,
  bucket            timestamptz NOT NULL,
  results           integer NOT NULL DEFAULT 0,
  -- Sums of the per-job statistics; means and spreads across jobs are derived on read.
  response_n        integer NOT NULL DEFAULT 0,
  response_sum      double precision NOT NULL DEFAULT 0,
  response_sumsq    double precision NOT NULL DEFAULT 0,
  response_min      double precision,
  response_max      double precision,
  response_p90_n    integer NOT NULL DEFAULT 0,
  response_p90_sum  double precision NOT NULL DEFAULT 0,
  interrupt_n       integer NOT NULL DEFAULT 0,
  interrupt_sum     double precision NOT NULL DEFAULT 0,
  interrupt_sumsq   double precision NOT NULL DEFAULT 0,
  interrupt_min     double precision,
  interrupt_max     double precision,
  resilience_n      integer NOT NULL DEFAULT 0,
  resilience_sum    double precision NOT NULL DEFAULT 0,
  naturalness_n     integer NOT NULL DEFAULT 0,
  naturalness_sum   double precision NOT NULL DEFAULT 0,
  noise_n           integer NOT NULL DEFAULT 0,
  noise_sum         double precision NOT NULL DEFAULT 0,
  last_result_at    timestamptz,
  PRIMARY KEY (bucket_size, provider_id, region, bucket)
);
CREATE INDEX eval_rollups_time_idx ON eval_rollups (bucket_size, bucket);

CREATE FUNCTION vox_queue_rollup() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO eval_rollup_queue (result_id) VALUES (NEW.id);
  RETURN NULL;
END $$;

CREATE TRIGGER eval_results_rollup AFTER INSERT ON eval_results
  FOR EACH ROW WHEN (NEW.is_mainline) EXECUTE FUNCTION vox_queue_rollup();
