// Workflows (application configs) and, through the same code, eval sets (scenario configs):
// visibility, mainline, ownership and the per-project workflow limit.
import type { Db, Sql } from "./db.ts";
import { HttpError } from "./errors.ts";
import { type AuthUser, canMakePrivate, canMarkMainline } from "./roles.ts";
import { accessibleProject, assertProjectAccess, assertWorkflowRoom } from "./projects.ts";
import { rollUpResults } from "./metrics.ts";
import { ensureProvider, getProvider } from "./providers.ts";

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
    if (isMainline && visibility === "private") {
      throw new HttpError(400, "invalid_input", "visibility: a mainline item cannot be private");
    }
    if (patch.projectId && patch.projectId !== cur.projectId) {
      if (kind === "workflow") await assertWorkflowRoom(tx, user, patch.projectId);
      else await assertProjectAccess(tx, user, patch.projectId);
    }
    const providerId = kind === "workflow" && patch.provider
      ? await resolveProvider(tx, user, patch.provider)
      : null;
    const t = tx(TABLE[kind]);
    await tx`
      UPDATE ${t} SET
        project_id = ${patch.projectId ?? cur.projectId},
        name = ${patch.name ?? cur.name},
        description = ${patch.description ?? cur.description},
        config = ${tx.json((patch.config ?? cur.config) as never)},
        visibility = ${visibility},
        is_mainline = ${isMainline},
        ${kind === "workflow" && providerId ? tx`provider_id = ${providerId},` : tx``}
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
    return await getItem(tx, kind, user, id);
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
