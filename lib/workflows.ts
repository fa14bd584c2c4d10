// Workflows (application configs) and, through the same code, eval sets (scenario configs):
// visibility, mainline, ownership and the per-project workflow limit.
import type { Db, Sql } from "./db.ts";
import { HttpError } from "./errors.ts";
import { type AuthUser, canMakePrivate, canMarkMainline } from "./roles.ts";
import { accessibleProject, assertProjectAccess, assertWorkflowRoom } from "./projects.ts";
import { rollUpResults } from "./metrics.ts";
import { ensureProvider, getProvider } from "./providers.ts";
import { assertAudioKnown } from "./audio.ts";

export type ItemKind = "workflow" | "eval_set";

export interface Item {
  id: number;
  projectId: number;
  name: string;
  description: string;
  config: Record<string, unknown>;
  visibility: "public" | "private";
  isMainline: boolean;
  createdBy: number | null;
  createdAt: string;
  updatedAt: string;
  /** True when the caller may change it (it is in one of their projects). */
  editable: boolean;
  /** Workflows only. */
  provider?: { id: string; name: string; sku: number };
  /**
   * Workflows, in the answer to a change only: true when the change moved the endpoint its
   * sealed secrets are sent to, so they were deleted (see secretsDestination()).
   */
  secretsCleared?: boolean;
}

/**
 * Where a workflow's sealed secrets go: the origin of its Realtime endpoint (the only place
 * an offer's secrets leave the agent for; cloud voices use the agent operator's endpoints), or
 * null for a web page workflow.
 */
export function secretsDestination(config: Record<string, unknown>): string | null {
  const realtime = config.realtime as { url?: unknown } | undefined;
  if (typeof realtime?.url !== "string") return null;
  try {
    const u = new URL(realtime.url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return realtime.url;
  }
}

export interface ItemInput {
  projectId: number;
  name: string;
  description?: string;
  config: Record<string, unknown>;
  visibility?: "public" | "private";
  isMainline?: boolean;
  /** Workflows only: an existing provider by id, or one picked or created by name. */
  provider?: { id: string } | { name: string; sku?: number };
}

const TABLE = { workflow: "workflows", eval_set: "eval_sets" } as const;
const NOUN = { workflow: "workflow", eval_set: "eval set" } as const;

/** SQL predicate: item `i` (joined with its project `p`) is visible to the caller. */
export function visibleItem(sql: Db, user: AuthUser | null) {
  return user
    ? sql`(i.visibility = 'public' OR ${accessibleProject(sql, user)})`
    : sql`i.visibility = 'public'`;
}

function columns(sql: Db, kind: ItemKind, user: AuthUser | null) {
  const editable = user ? accessibleProject(sql, user) : sql`false`;
  return kind === "workflow"
    ? sql`i.id, i.project_id, i.name, i.description, i.config, i.visibility, i.is_mainline, i.created_by,
          i.created_at, i.updated_at, ${editable} AS editable,
          pr.id AS provider_id, pr.name AS provider_name, pr.sku AS provider_sku`
    : sql`i.id, i.project_id, i.name, i.description, i.config, i.visibility, i.is_mainline, i.created_by,
          i.created_at, i.updated_at, ${editable} AS editable`;
}

function from(sql: Db, kind: ItemKind) {
  return kind === "workflow"
    ? sql`workflows i JOIN projects p ON p.id = i.project_id JOIN providers pr ON pr.id = i.provider_id`
    : sql`eval_sets i JOIN projects p ON p.id = i.project_id`;
}

function toItem(r: Record<string, unknown>): Item {
  const iso = (v: unknown) => v instanceof Date ? v.toISOString() : String(v);
  return {
    id: r.id as number,
    projectId: r.projectId as number,
    name: r.name as string,
    description: r.description as string,
    config: r.config as Record<string, unknown>,
    visibility: r.visibility as "public" | "private",
    isMainline: r.isMainline as boolean,
    createdBy: (r.createdBy as number | null) ?? null,
    createdAt: iso(r.createdAt),
    updatedAt: iso(r.updatedAt),
    editable: Boolean(r.editable),
    ...(r.providerId
      ? {
        provider: {
          id: r.providerId as string,
          name: r.providerName as string,
          sku: r.providerSku as number,
        },
      }
      : {}),
  };
}

/**
 * Lists items: `mine` = those in the caller's projects (private included), `public` =
 * everyone's public ones. Private items of others never appear, in lists or counts.
 */
export async function listItems(
  sql: Sql,
  kind: ItemKind,
  user: AuthUser,
  opts: {
    scope: "mine" | "public";
    projectId?: number;
    mainline?: boolean;
    name?: string;
    limit: number;
    offset: number;
  },
): Promise<{ items: Item[]; total: number }> {
  const where = sql`${opts.scope === "mine" ? accessibleProject(sql, user) : sql`i.visibility = 'public'`}
    ${opts.projectId ? sql`AND i.project_id = ${opts.projectId}` : sql``}
    ${opts.mainline !== undefined ? sql`AND i.is_mainline = ${opts.mainline}` : sql``}
    ${opts.name !== undefined ? sql`AND i.name = ${opts.name}` : sql``}`;
  const rows = await sql`
    SELECT ${columns(sql, kind, user)}, count(*) OVER () AS total
    FROM ${from(sql, kind)} WHERE ${where}
    ORDER BY i.id DESC LIMIT ${opts.limit} OFFSET ${opts.offset}`;
  let total = rows.length ? Number(rows[0].total) : 0;
  if (rows.length === 0 && opts.offset > 0) {
    total = (await sql`SELECT count(*)::int AS n FROM ${from(sql, kind)} WHERE ${where}`)[0].n;
  }
  return { items: rows.map(toItem), total };
}

/** An item the caller may see, else 404 (the same answer whether it is private or absent). */
export async function getItem(sql: Db, kind: ItemKind, user: AuthUser | null, id: number): Promise<Item> {
  const [row] = await sql`
    SELECT ${columns(sql, kind, user)} FROM ${from(sql, kind)} WHERE i.id = ${id} AND ${
    visibleItem(sql, user)
  }`;
  if (!row) throw new HttpError(404, "not_found", `No ${NOUN[kind]} ${id}`);
  return toItem(row);
}

/** An item the caller may change: 404 when invisible, 403 when visible but someone else's. */
export async function getEditableItem(sql: Db, kind: ItemKind, user: AuthUser, id: number): Promise<Item> {
  const item = await getItem(sql, kind, user, id);
  if (!item.editable) {
    throw new HttpError(403, "forbidden", `Only members of its project may change ${NOUN[kind]} ${id}`);
  }
  return item;
}

function checkFlags(user: AuthUser, visibility: string, isMainline: boolean): void {
  if (visibility === "private" && !canMakePrivate(user)) {
    throw new HttpError(403, "forbidden", "Private items need a premium, principal or fellow account");
  }
  if (isMainline && !canMarkMainline(user)) {
    throw new HttpError(403, "forbidden", "Only principal and fellow users may mark items mainline");
  }
  if (isMainline && visibility === "private") {
    throw new HttpError(400, "invalid_input", "isMainline: a private item cannot be mainline");
  }
}

/** Picks a provider by id, or by name (case-insensitive), creating it when the name is new. */
export async function resolveProvider(
  tx: Db,
  user: AuthUser,
  provider: ItemInput["provider"],
): Promise<string> {
  if (!provider) throw new HttpError(400, "invalid_input", "provider: required for a workflow");
  if ("id" in provider) {
    const p = await getProvider(tx, provider.id, { viewerId: user.id });
    if (!p) throw new HttpError(400, "invalid_input", `provider.id: no provider ${provider.id}`);
    return p.id;
  }
  return await ensureProvider(tx, { name: provider.name, sku: provider.sku ?? 0, createdBy: user.id });
}

/** Creates an item in one of the caller's projects (workflows within the plan limit). */
export async function createItem(sql: Sql, kind: ItemKind, user: AuthUser, input: ItemInput): Promise<Item> {
  const visibility = input.visibility ?? "public";
  const isMainline = input.isMainline ?? false;
  checkFlags(user, visibility, isMainline);
  return await sql.begin(async (tx) => {
    let row;
    if (kind === "workflow") {
      await assertWorkflowRoom(tx, user, input.projectId);
      const providerId = await resolveProvider(tx, user, input.provider);
      [row] = await tx`
        INSERT INTO workflows (project_id, provider_id, name, description, config, visibility, is_mainline, created_by)
        VALUES (${input.projectId}, ${providerId}, ${input.name}, ${input.description ?? ""},
                ${tx.json(input.config as never)}, ${visibility}, ${isMainline}, ${user.id})
        RETURNING id`;
    } else {
      await assertProjectAccess(tx, user, input.projectId);
      // Every clip it names exists where an agent will be given it (lib/audio.ts).
      await assertAudioKnown(tx, input.projectId, input.config);
      [row] = await tx`
        INSERT INTO eval_sets (project_id, name, description, config, visibility, is_mainline, created_by)
        VALUES (${input.projectId}, ${input.name}, ${input.description ?? ""}, ${
        tx.json(input.config as never)
      },
                ${visibility}, ${isMainline}, ${user.id})
        RETURNING id`;
    }
    return await getItem(tx, kind, user, row.id);
  });
}

/** Changes an item the caller may edit; moving it checks the target project like a create. */
export async function updateItem(
  sql: Sql,
  kind: ItemKind,
  user: AuthUser,
  id: number,
  patch: Partial<ItemInput>,
): Promise<Item> {
  let unmarked = false;
  const item = await sql.begin(async (tx) => {
    const cur = await getEditableItem(tx, kind, user, id);
    const visibility = patch.visibility ?? cur.visibility;
    const isMainline = patch.isMainline ?? cur.isMainline;
    // Only a change needs the power to make it (a basic user may edit a fellow's mainline item's text).
    checkFlags(user, patch.visibility ? visibility : "public", patch.isMainline ? isMainline : false);
    // What a mainline item measures (its config, its provider, its project) is the curators' to
    // change: the boards count its results, so a non-curator editor could otherwise steer them.
    if (cur.isMainline && !canMarkMainline(user)) {
      const changed =
        (patch.config !== undefined && JSON.stringify(patch.config) !== JSON.stringify(cur.config))
          ? "config"
          : kind === "workflow" && patch.provider !== undefined
          ? "provider"
          : patch.projectId !== undefined && patch.projectId !== cur.projectId
          ? "projectId"
          : null;
      if (changed) {
        throw new HttpError(
          403,
          "forbidden",
          `${changed}: only principal, fellow and admin users may change what a mainline ${
            NOUN[kind]
          } measures`,
        );
      }
    }
    if (isMainline && visibility === "private") {
      throw new HttpError(400, "invalid_input", "visibility: a mainline item cannot be private");
    }
    if (patch.projectId && patch.projectId !== cur.projectId) {
      if (kind === "workflow") await assertWorkflowRoom(tx, user, patch.projectId);
      else await assertProjectAccess(tx, user, patch.projectId);
    }
    if (kind === "eval_set" && (patch.config || (patch.projectId && patch.projectId !== cur.projectId))) {
      await assertAudioKnown(tx, patch.projectId ?? cur.projectId, patch.config ?? cur.config);
    }
    const providerId = kind === "workflow" && patch.provider
      ? await resolveProvider(tx, user, patch.provider)
      : null;
    // A change of the endpoint the workflow's sealed secrets are sent to deletes them: otherwise
    // any member of the project could point the workflow at a host of their own and receive a
    // key someone else entered. Whoever moves it enters the keys again.
    const clearSecrets = kind === "workflow" && patch.config !== undefined &&
      secretsDestination(patch.config) !== secretsDestination(cur.config);
    const t = tx(TABLE[kind]);
    const [{ hadSecrets }] = clearSecrets
      ? await tx`SELECT secrets_enc IS NOT NULL AS had_secrets FROM workflows WHERE id = ${id}`
      : [{ hadSecrets: false }];
    await tx`
      UPDATE ${t} SET
        project_id = ${patch.projectId ?? cur.projectId},
        name = ${patch.name ?? cur.name},
        description = ${patch.description ?? cur.description},
        config = ${tx.json((patch.config ?? cur.config) as never)},
        visibility = ${visibility},
        is_mainline = ${isMainline},
        ${kind === "workflow" && providerId ? tx`provider_id = ${providerId},` : tx``}
        ${hadSecrets ? tx`secrets_enc = NULL,` : tx``}
        updated_at = now()
      WHERE id = ${id}`;
    if (cur.isMainline && !isMainline) {
      // Un-marking withdraws the item's past results from the public boards: they become the
      // runners' own results, like any non-mainline run (docs/orchestration.md).
      await tx`
        UPDATE eval_results SET is_mainline = false
        WHERE ${kind === "workflow" ? tx`workflow_id` : tx`eval_set_id`} = ${id} AND is_mainline`;
      unmarked = true;
    }
    const updated = await getItem(tx, kind, user, id);
    return hadSecrets ? { ...updated, secretsCleared: true } : updated;
  });
  // The withdrawn results' days are marked dirty by a trigger; recompute them now.
  if (unmarked) await rollUpResults(sql);
  return item;
}

/** Deletes an item the caller may edit (its jobs and results go with it, and leave the boards). */
export async function deleteItem(sql: Sql, kind: ItemKind, user: AuthUser, id: number): Promise<void> {
  await getEditableItem(sql, kind, user, id);
  await sql`DELETE FROM ${sql(TABLE[kind])} WHERE id = ${id}`;
  // Its mainline results' days were marked dirty by a trigger; recompute them now, so the
  // boards are exact when the caller gets the answer (the orchestrator's roller would within a second).
  await rollUpResults(sql);
}
