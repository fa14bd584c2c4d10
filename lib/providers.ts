// Voice-agent providers: listing them for the API and the pages, and finding or creating one
// by name for a workflow or the demo. Ids never change once given (SPEC §4; a trigger
// forbids it). A provider a user names (/run-your-own, a workflow's `provider.name`) is
// private to that user until it appears in a mainline result; curated ones (seeded) are
// public from the start.
import type { Db, Fragment } from "./db.ts";

/**
 * SQL predicate over provider `p`: anyone may see it (curated, or in a mainline result), or,
 * with `viewerId`, that user created it. Derived on read, so it cannot drift from the results.
 */
export function visibleProvider(sql: Db, viewerId: number | null = null): Fragment {
  return sql`(p.curated OR EXISTS (SELECT 1 FROM eval_results r WHERE r.provider_id = p.id AND r.is_mainline)
    ${viewerId === null ? sql`` : sql`OR p.created_by = ${viewerId}`})`;
}

/** A provider as the API and the pages show it. */
export interface Provider {
  id: string;
  name: string;
  /** 0 = ConvoAI Engine, 1 = RTC Engine. */
  sku: number;
  website: string | null;
  description: string;
}

/**
 * The public providers (plus, with `viewerId`, that user's own private ones), by name, or by
 * sku then name.
 */
export async function listProviders(
  sql: Db,
  opts: { order?: "name" | "sku"; viewerId?: number | null } = {},
): Promise<Provider[]> {
  const rows = await sql<Provider[]>`
    SELECT id, name, sku, website, description FROM providers p
    WHERE ${visibleProvider(sql, opts.viewerId ?? null)}
    ORDER BY ${opts.order === "sku" ? sql`sku, name` : sql`name`}`;
  return rows.map(toProvider);
}

/** One provider by id if it is public (or `viewerId`'s own), else null. */
export async function getProvider(
  sql: Db,
  id: string,
  opts: { viewerId?: number | null } = {},
): Promise<Provider | null> {
  const [row] = await sql<Provider[]>`
    SELECT id, name, sku, website, description FROM providers p
    WHERE id = ${id} AND ${visibleProvider(sql, opts.viewerId ?? null)}`;
  return row ? toProvider(row) : null;
}

/**
 * The id of the provider named `name` (case-insensitive), created with `sku` and
 * `description` when the name is new; a concurrent creation of the same name yields the
 * same row.
 */
export async function ensureProvider(
  tx: Db,
  input: { name: string; sku: number; description?: string; createdBy: number | null },
): Promise<string> {
  const [found] = await tx<
    { id: string }[]
  >`SELECT id FROM providers WHERE lower(name) = lower(${input.name})`;
  if (found) return found.id;
  const [made] = await tx<{ id: string }[]>`
    INSERT INTO providers (name, sku, description, created_by)
    VALUES (${input.name}, ${input.sku}, ${input.description ?? ""}, ${input.createdBy})
    ON CONFLICT (lower(name)) DO UPDATE SET name = providers.name
    RETURNING id`;
  return made.id;
}

function toProvider(r: Provider): Provider {
  return { id: r.id, name: r.name, sku: r.sku, website: r.website, description: r.description };
}
