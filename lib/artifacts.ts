// Artifacts of a job (recordings) as agents upload them and results list them. Only the
// names the agent daemon uses are accepted, a job holds a bounded number and total of them,
// and the bytes stream into the artifact store (lib/artifact_store.ts) without being held
// whole in memory.
import { createHash } from "node:crypto";
import { MAX_ARTIFACT_BYTES } from "../agent/protocol.ts";
import type { ArtifactStore } from "./artifact_store.ts";
import type { Db, Sql } from "./db.ts";
import { HttpError } from "./errors.ts";

/** What a result shows of each artifact. */
export interface ArtifactInfo {
  name: string;
  kind: string;
  contentType: string;
  sizeBytes: number;
  sha256: string;
}

/** Bounds of one job's artifacts (VOX_ARTIFACTS_PER_JOB, VOX_ARTIFACT_BYTES_PER_JOB). */
export interface ArtifactLimits {
  perJob: number;
  bytesPerJob: number;
}

/**
 * The names the daemon uploads (agent/daemon.ts): one stereo WAV per call, numbered from 1, and
 * cloud-synthesized caller speech by its SHA-256 (agent/voices.ts).
 */
export const ARTIFACT_NAME = /^recording-([1-9][0-9]?)\.wav$|^speech-[0-9a-f]{64}\.wav$/;

/**
 * The Content-Type an artifact is served with, from its name alone: what the agent claimed
 * at upload is never echoed (a page-controlled agent could otherwise serve HTML).
 */
export function artifactContentType(name: string): string {
  return name.endsWith(".wav") ? "audio/wav" : "application/octet-stream";
}

// Uploads in flight in this process: each holds a database connection for its transaction.
const MAX_UPLOADS_IN_FLIGHT = 4;
let uploadsInFlight = 0;
// pg_advisory_xact_lock(namespace, job id): one upload of a job checks its limits at a time.
const ARTIFACT_LOCK_NS = 0x766f78; // "vox"

/**
 * Stores an artifact of a running job, only for an agent registered with `tokenId` that
 * holds it. Storing a name twice keeps the first copy (the second body is not read).
 * Throws HttpError: 400 unknown name, 409 job not held or too many artifacts, 413 over
 * the per-artifact or per-job bytes (checked on Content-Length first, then while
 * streaming), 503 when this process has its maximum of uploads in flight.
 */
export async function storeArtifact(
  sql: Sql,
  store: ArtifactStore,
  limits: ArtifactLimits,
  input: {
    jobId: number;
    tokenId: number;
    name: string;
    declaredBytes: number | null;
    body: ReadableStream<Uint8Array> | null;
  },
): Promise<{ stored: "created" | "exists"; sizeBytes: number }> {
  if (!ARTIFACT_NAME.test(input.name)) {
    throw new HttpError(
      400,
      "bad_request",
      "name: artifacts are recording-<n>.wav, n from 1 to 99, or speech-<sha256>.wav",
    );
  }
  if (input.declaredBytes !== null && input.declaredBytes > MAX_ARTIFACT_BYTES) {
    throw new HttpError(413, "payload_too_large", `Artifacts are limited to ${MAX_ARTIFACT_BYTES} bytes`);
  }
  const held = await sql`
    SELECT 1 FROM eval_jobs j JOIN eval_agents a ON a.id = j.agent_id
    WHERE j.id = ${input.jobId} AND j.status = 'running' AND a.token_id = ${input.tokenId}`;
  if (held.length === 0) {
    throw new HttpError(409, "job_not_held", `Job ${input.jobId} is not running on an agent of this token`);
  }
  if (uploadsInFlight >= MAX_UPLOADS_IN_FLIGHT) {
    throw new HttpError(503, "unavailable", "Too many artifact uploads in progress; retry shortly", {
      headers: { "Retry-After": "2" },
    });
  }
  uploadsInFlight++;
  try {
    return await sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${ARTIFACT_LOCK_NS}, ${input.jobId}::int)`;
      const [have] = await tx<{ n: number; bytes: number; mine: number | null }[]>`
        SELECT count(*)::int AS n, coalesce(sum(size_bytes), 0)::bigint AS bytes,
               max(size_bytes) FILTER (WHERE name = ${input.name}) AS mine
        FROM eval_artifacts WHERE job_id = ${input.jobId}`;
      if (have.mine !== null) return { stored: "exists" as const, sizeBytes: Number(have.mine) };
      if (have.n >= limits.perJob) {
        throw new HttpError(
          409,
          "too_many_artifacts",
          `Job ${input.jobId} already has ${have.n} artifacts, the most one job may store`,
          { details: { limit: "VOX_ARTIFACTS_PER_JOB", max: limits.perJob } },
        );
      }
      const room = Math.min(MAX_ARTIFACT_BYTES, limits.bytesPerJob - Number(have.bytes));
      const tooLarge = () =>
        new HttpError(
          413,
          "payload_too_large",
          room < MAX_ARTIFACT_BYTES
            ? `Job ${input.jobId} has ${
              Math.max(room, 0)
            } bytes left of its ${limits.bytesPerJob}-byte artifact total`
            : `Artifacts are limited to ${MAX_ARTIFACT_BYTES} bytes`,
          {
            details: {
              limit: room < MAX_ARTIFACT_BYTES ? "VOX_ARTIFACT_BYTES_PER_JOB" : "MAX_ARTIFACT_BYTES",
            },
          },
        );
      if (input.declaredBytes !== null && input.declaredBytes > room) throw tooLarge();
      const [row] = await tx`
        INSERT INTO eval_artifacts (job_id, kind, name, content_type, size_bytes, sha256, storage)
        VALUES (${input.jobId}, 'recording', ${input.name}, ${artifactContentType(input.name)}, 0,
                ${"0".repeat(64)}, ${store.kind})
        RETURNING id`;
      const hash = createHash("sha256");
      let size = 0;
      async function* metered(): AsyncGenerator<Uint8Array> {
        if (!input.body) return;
        for await (const piece of input.body) {
          size += piece.length;
          if (size > room) throw tooLarge();
          hash.update(piece);
          yield piece;
        }
      }
      const key = await store.write(tx, row.id, `jobs/${input.jobId}/${row.id}-${input.name}`, metered());
      await tx`
        UPDATE eval_artifacts SET size_bytes = ${size}, sha256 = ${hash.digest("hex")}, storage_key = ${key}
        WHERE id = ${row.id}`;
      return { stored: "created" as const, sizeBytes: size };
    });
  } finally {
    uploadsInFlight--;
  }
}

/** The artifacts of a job, in upload order, without their bytes. */
export async function listArtifacts(sql: Db, jobId: number): Promise<ArtifactInfo[]> {
  const artifacts = await sql`
    SELECT name, kind, size_bytes, sha256 FROM eval_artifacts WHERE job_id = ${jobId} ORDER BY id`;
  return artifacts.map((a) => ({
    name: a.name,
    kind: a.kind,
    contentType: artifactContentType(a.name),
    sizeBytes: a.sizeBytes,
    sha256: a.sha256,
  }));
}

/** One artifact of a job as a stream of its bytes, or null when the job has none by that name. */
export async function readArtifact(
  sql: Db,
  store: ArtifactStore,
  jobId: number,
  name: string,
): Promise<{ contentType: string; sizeBytes: number; body: ReadableStream<Uint8Array> } | null> {
  const [a] = await sql`
    SELECT id, storage, storage_key, size_bytes FROM eval_artifacts WHERE job_id = ${jobId} AND name = ${name}`;
  if (!a) return null;
  return {
    contentType: artifactContentType(name),
    sizeBytes: a.sizeBytes,
    body: store.read(sql, { id: a.id, storage: a.storage, storageKey: a.storageKey }),
  };
}

/**
 * Deletes artifacts older than `days` days (VOX_ARTIFACT_RETENTION_DAYS), with their
 * objects in the store; returns how many went.
 */
export async function pruneArtifacts(sql: Sql, store: ArtifactStore, days: number): Promise<number> {
  if (days <= 0) return 0;
  const gone = await sql<{ storageKey: string | null }[]>`
    DELETE FROM eval_artifacts WHERE created_at < now() - make_interval(days => ${days})
    RETURNING storage_key`;
  const keys = gone.map((g) => g.storageKey).filter((k): k is string => k !== null);
  if (keys.length > 0) await store.remove(keys);
  return gone.length;
}
