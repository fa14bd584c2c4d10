-- Fair use of the fleet and bounded artifacts (issue 10, part B).

-- Per-user caps beside the plan limits, so an admin changes them in one place. They apply to
-- the user who queues or schedules (by the same owner kind as the personal project limits).
ALTER TABLE plan_limits
  ADD COLUMN max_pending_jobs integer NOT NULL DEFAULT 20 CHECK (max_pending_jobs >= 0),
  ADD COLUMN max_schedules integer NOT NULL DEFAULT 5 CHECK (max_schedules >= 0),
  ADD COLUMN min_schedule_interval_minutes integer NOT NULL DEFAULT 60
    CHECK (min_schedule_interval_minutes BETWEEN 1 AND 10080);
UPDATE plan_limits SET max_pending_jobs = 100, max_schedules = 25, min_schedule_interval_minutes = 15
  WHERE owner_kind IN ('premium', 'org_member');
UPDATE plan_limits SET max_pending_jobs = 500, max_schedules = 100, min_schedule_interval_minutes = 5
  WHERE owner_kind IN ('principal', 'fellow', 'organization');

-- Why a schedule stopped by itself (its workflow or eval set is no longer visible to its
-- owner, the owner is gone); null while it runs or when a person disabled it.
ALTER TABLE eval_schedules ADD COLUMN stopped_reason text;

-- Pending jobs per creator, counted on every queueing.
CREATE INDEX eval_jobs_pending_creator_idx ON eval_jobs (created_by) WHERE status = 'pending';

-- Artifact bytes live in a store (lib/artifact_store.ts): chunk rows here by default, or an
-- S3-compatible bucket. Rows from before keep their bytes inline in eval_artifacts.data.
ALTER TABLE eval_artifacts ALTER COLUMN data DROP NOT NULL;
ALTER TABLE eval_artifacts ADD COLUMN storage text NOT NULL DEFAULT 'inline'
  CHECK (storage IN ('inline', 'postgres', 's3'));
ALTER TABLE eval_artifacts ADD COLUMN storage_key text;
CREATE INDEX eval_artifacts_created_idx ON eval_artifacts (created_at);

CREATE TABLE eval_artifact_chunks (
  artifact_id bigint NOT NULL REFERENCES eval_artifacts (id) ON DELETE CASCADE,
  seq         integer NOT NULL CHECK (seq >= 0),
  data        bytea NOT NULL,
  PRIMARY KEY (artifact_id, seq)
);
-- Recordings are WAV: compressing them gains little and costs CPU on every write.
ALTER TABLE eval_artifact_chunks ALTER COLUMN data SET STORAGE EXTERNAL;
