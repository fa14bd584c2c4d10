// A workflow's sealed secrets (SPEC §5): credentials the product under test needs (a Realtime
// endpoint's API key, a cloud TTS key), kept in `workflows.secrets_enc` as one AES-256-GCM
// sealed JSON object under VOX_SECRET_KEY, bound to the workflow's id (a sealed value copied
// to another workflow does not open). Write-only through the API: callers set, replace and
// delete secrets by name and read back the names only. The values leave the server in one
// place: the job offer sent to the eval agent over its authenticated socket
// (lib/orchestrator.ts), never in logs, error bodies or audit entries.
import type { Db, Sql } from "./db.ts";
import { HttpError } from "./errors.ts";
import { open, seal } from "./secrets.ts";
import type { AuthUser } from "./roles.ts";
import { getEditableItem } from "./workflows.ts";

/** A secret's name: letters, digits, `_ . -`, starting with a letter (e.g. OPENAI_API_KEY). */
export const SECRET_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,63}$/;
/** At most this many secrets per workflow, each value at most SECRET_VALUE_MAX characters. */
export const MAX_SECRETS = 20;
export const SECRET_VALUE_MAX = 8192;

/** The associated data binding a sealed value to its workflow. */
const context = (workflowId: number) => `workflow-secrets:${workflowId}`;

/** Opens a workflow's sealed secrets (empty when none). Throws when the value was tampered with. */
export async function openSecrets(
  key: CryptoKey,
  workflowId: number,
  sealed: string | null | undefined,
): Promise<Record<string, string>> {
  if (!sealed) return {};
  const parsed = JSON.parse(await open(key, sealed, context(workflowId)));
  return parsed && typeof parsed === "object" && !Array.isArray(parsed) ? parsed : {};
}

async function readSealed(sql: Db, workflowId: number): Promise<string | null> {
  const [row] = await sql`SELECT secrets_enc FROM workflows WHERE id = ${workflowId}`;
  return (row?.secretsEnc as string | null | undefined) ?? null;
}

/** The names of a workflow's secrets (sorted); the caller must be able to change the workflow. */
export async function secretNames(
  sql: Db,
  key: CryptoKey,
  user: AuthUser,
  workflowId: number,
): Promise<string[]> {
  await getEditableItem(sql, "workflow", user, workflowId);
  return Object.keys(await openSecrets(key, workflowId, await readSealed(sql, workflowId))).sort();
}

/**
 * Sets (or replaces) secret `name` to `value`, or deletes it when `value` is null; returns the
 * names afterwards. Deleting a name the workflow does not have is a 404.
 */
export async function changeSecret(
  sql: Sql,
  key: CryptoKey,
  user: AuthUser,
  workflowId: number,
  name: string,
  value: string | null,
): Promise<string[]> {
  if (!SECRET_NAME.test(name)) {
    throw new HttpError(400, "invalid_input", "name: letters, digits, _ . - (starting with a letter, ≤ 64)");
  }
  return await sql.begin(async (tx) => {
    await getEditableItem(tx, "workflow", user, workflowId);
    const [row] = await tx`SELECT secrets_enc FROM workflows WHERE id = ${workflowId} FOR UPDATE`;
    const secrets = await openSecrets(key, workflowId, row.secretsEnc as string | null);
    if (value === null) {
      if (!Object.hasOwn(secrets, name)) {
        throw new HttpError(404, "not_found", `Workflow ${workflowId} has no secret named ${name}`);
      }
      delete secrets[name];
    } else {
      if (!Object.hasOwn(secrets, name) && Object.keys(secrets).length >= MAX_SECRETS) {
        throw new HttpError(400, "invalid_input", `name: a workflow holds at most ${MAX_SECRETS} secrets`);
      }
      secrets[name] = value;
    }
    const names = Object.keys(secrets).sort();
    const sealed = names.length ? await seal(key, JSON.stringify(secrets), context(workflowId)) : null;
    await tx`UPDATE workflows SET secrets_enc = ${sealed}, updated_at = now() WHERE id = ${workflowId}`;
    return names;
  });
}

/**
 * A workflow's secrets in clear, for the job offer only (lib/orchestrator.ts) or a server-side
 * helper acting for a job (e.g. a cloud TTS key). Never log or return what this gives.
 */
export async function workflowSecrets(
  sql: Db,
  key: CryptoKey,
  workflowId: number,
): Promise<Record<string, string>> {
  return await openSecrets(key, workflowId, await readSealed(sql, workflowId));
}

/** One secret of the workflow a job runs, or null when it has none by that name. */
export async function jobSecret(
  sql: Db,
  key: CryptoKey,
  jobId: number,
  name: string,
): Promise<string | null> {
  const [row] = await sql`
    SELECT w.id, w.secrets_enc FROM eval_jobs j JOIN workflows w ON w.id = j.workflow_id WHERE j.id = ${jobId}`;
  if (!row) return null;
  const secrets = await openSecrets(key, row.id as number, row.secretsEnc as string | null);
  return Object.hasOwn(secrets, name) ? secrets[name] : null;
}
