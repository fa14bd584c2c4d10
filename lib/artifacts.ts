// Artifacts of a job (recordings, logs) as agents upload them and results list them.
import type { Db } from "./db.ts";

/** What a result shows of each artifact. */
export interface ArtifactInfo {
  name: string;
  kind: string;
  contentType: string;
  sizeBytes: number;
  sha256: string;
}

/**
 * Stores an artifact of a running job, only for an agent registered with `tokenId` that
 * holds it. Storing a name twice keeps the first copy.
 */
export async function storeArtifact(
  sql: Db,
  input: {
    jobId: number;
    tokenId: number;
    name: string;
    kind: string;
    contentType: string;
    data: Uint8Array;
  },
): Promise<"created" | "exists" | "not_held"> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", input.data as Uint8Array<ArrayBuffer>));
  const sha = Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
  const held = await sql`
    SELECT 1 FROM eval_jobs j JOIN eval_agents a ON a.id = j.agent_id
    WHERE j.id = ${input.jobId} AND j.status = 'running' AND a.token_id = ${input.tokenId}`;
  if (held.length === 0) return "not_held";
  const rows = await sql`
    INSERT INTO eval_artifacts (job_id, kind, name, content_type, size_bytes, sha256, data)
    VALUES (${input.jobId}, ${input.kind}, ${input.name}, ${input.contentType}, ${input.data.length},
            ${sha}, ${input.data})
    ON CONFLICT (job_id, name) DO NOTHING RETURNING id`;
  return rows.length > 0 ? "created" : "exists";
}

/** The artifacts of a job, in upload order, without their bytes. */
export async function listArtifacts(sql: Db, jobId: number): Promise<ArtifactInfo[]> {
  const artifacts = await sql`
    SELECT name, kind, content_type, size_bytes, sha256 FROM eval_artifacts WHERE job_id = ${jobId} ORDER BY id`;
  return artifacts.map((a) => ({
    name: a.name,
    kind: a.kind,
    contentType: a.contentType,
    sizeBytes: a.sizeBytes,
    sha256: a.sha256,
  }));
}

/** One artifact of a job with its bytes, or null when the job has none by that name. */
export async function readArtifact(
  sql: Db,
  jobId: number,
  name: string,
): Promise<{ contentType: string; data: Uint8Array } | null> {
  const [a] =
    await sql`SELECT content_type, data FROM eval_artifacts WHERE job_id = ${jobId} AND name = ${name}`;
  return a ? { contentType: a.contentType, data: a.data } : null;
}
