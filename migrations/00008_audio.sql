-- Caller audio (issue 18): clips a project uploads, stored once per content (SHA-256) through
-- the artifact store (lib/artifact_store.ts: chunk rows here, or the S3 bucket), and named per
-- project with the agent's file rules (a plain file name).
CREATE TABLE audio_blobs (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  sha256       text NOT NULL UNIQUE CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  size_bytes   integer NOT NULL CHECK (size_bytes > 0),
  format       text NOT NULL CHECK (format IN ('wav', 'mp3', 'ogg', 'flac')),
  duration_ms  integer NOT NULL CHECK (duration_ms >= 0),
  sample_rate  integer NOT NULL CHECK (sample_rate > 0),
  channels     smallint NOT NULL CHECK (channels > 0),
  storage      text NOT NULL CHECK (storage IN ('postgres', 's3')),
  storage_key  text,
  created_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audio_blob_chunks (
  blob_id  bigint NOT NULL REFERENCES audio_blobs (id) ON DELETE CASCADE,
  seq      integer NOT NULL,
  data     bytea NOT NULL,
  PRIMARY KEY (blob_id, seq)
);
ALTER TABLE audio_blob_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE project_audio (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  project_id  bigint NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
  name        text NOT NULL CHECK (name ~ '^[A-Za-z0-9_-][A-Za-z0-9._-]*$' AND length(name) <= 200),
  blob_id     bigint NOT NULL REFERENCES audio_blobs (id),
  created_by  bigint REFERENCES users (id) ON DELETE SET NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (project_id, name)
);
CREATE INDEX project_audio_blob_idx ON project_audio (blob_id);
