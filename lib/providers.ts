// Voice-agent providers: listing them for the API and the pages, and finding or creating one
// by name for a workflow or the demo. Ids never change once given (SPEC §4; a trigger
// forbids it). A provider a user names (/run-your-own, a workflow's `provider.name`) is
// private to that user until it appears in a mainline result; curated ones (seeded) are
// public from the start.
import { recordAudit } from "./audit.ts";
import type { Db, Fragment, Sql } from "./db.ts";
import { HttpError } from "./errors.ts";

/**
 * SQL predicate over provider `p`: anyone may see it (curated, or in a mainline result), or,
 * with `viewerId`, that user created it. Derived on read, so it cannot drift from the results.
 */
export function visibleProvider(sql: Db, viewerId: number | null = null): Fragment {
  return sql`(p.curated OR EXISTS (SELECT 1 FROM eval_results r WHERE r.provider_id = p.id AND r.is_mainline)
    ${viewerId === null ? sql`` : sql`OR p.created_by = ${viewerId}`})`;
}

/**
 * Product types, each with a board of its own (SPEC §4 `sku`: 0 = ConvoAI Engine, 1 = RTC
 * Engine); telephony and WebSocket products get the next sku values when they come.
 */
export const PRODUCT_TYPES = ["convoai", "rtc"] as const;
export type ProductType = typeof PRODUCT_TYPES[number];
export const PRODUCT_TYPE_LABELS: Record<ProductType, string> = {
  convoai: "ConvoAI engines",
  rtc: "RTC engines",
};

/** The product type of a provider's sku. */
export function productTypeOf(sku: number): ProductType {
  return PRODUCT_TYPES[sku] ?? "convoai";
}

/** A provider as the API and the pages show it. */
export interface Provider {
  id: string;
  name: string;
  /** 0 = ConvoAI Engine, 1 = RTC Engine. */
  sku: number;
  website: string | null;
  description: string;
  /**
   * Who vouches for the provider (public pages show a badge): its verified organization's
   * name, else its own name when curators verified the entry, else null.
   */
  verifiedOrganization: string | null;
  /** Curated: public from the start and kept by principals and the admin. */
  curated: boolean;
  /** Curators verified the entry itself. */
  verified: boolean;
}

/** The columns every provider query selects, over `providers p`. */
function providerColumns(sql: Db): Fragment {
  return sql`p.id, p.name, p.sku, p.website, p.description, p.curated, p.verified,
    coalesce((SELECT o.name FROM organizations o WHERE o.id = p.organization_id AND o.verified),
             CASE WHEN p.verified THEN p.name END) AS verified_organization`;
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
    SELECT ${providerColumns(sql)}
    FROM providers p
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
    SELECT ${providerColumns(sql)}
    FROM providers p
    WHERE p.id = ${id} AND ${visibleProvider(sql, opts.viewerId ?? null)}`;
  return row ? toProvider(row) : null;
}

/**
 * The id of the provider named `name` (case-insensitive) as `createdBy` sees it: a curated
 * provider of that name, else the creator's own private one, else a new row. A name is
 * never shared across users' private providers, so nobody can squat a name: another user's
 * private "Acme" is never reused, and a curator (`curated`: principal, fellow, admin, or the
 * system) naming "Acme" gets the curated provider, created public when there is none yet.
 * A concurrent creation of the same name yields the same row.
 */
export async function ensureProvider(
  tx: Db,
  input: { name: string; sku: number; description?: string; createdBy: number | null; curated?: boolean },
): Promise<string> {
  const curated = input.curated ?? input.createdBy === null;
  const [found] = await tx<{ id: string }[]>`
    SELECT id FROM providers
    WHERE lower(name) = lower(${input.name})
      AND (curated ${curated ? tx`` : tx`OR (created_by = ${input.createdBy} AND NOT curated)`})
    ORDER BY curated DESC LIMIT 1`;
  if (found) return found.id;
  const [made] = curated
    ? await tx<{ id: string }[]>`
      INSERT INTO providers (name, sku, description, created_by, curated)
      VALUES (${input.name}, ${input.sku}, ${input.description ?? ""}, ${input.createdBy}, true)
      ON CONFLICT (lower(name)) WHERE curated DO UPDATE SET name = providers.name
      RETURNING id`
    : await tx<{ id: string }[]>`
      INSERT INTO providers (name, sku, description, created_by, curated)
      VALUES (${input.name}, ${input.sku}, ${input.description ?? ""}, ${input.createdBy}, false)
      ON CONFLICT (created_by, lower(name)) WHERE NOT curated DO UPDATE SET name = providers.name
      RETURNING id`;
  return made.id;
}

function toProvider(r: Provider): Provider {
  return {
    id: r.id,
    name: r.name,
    sku: r.sku,
    website: r.website,
    description: r.description,
    verifiedOrganization: r.verifiedOrganization ?? null,
    curated: r.curated,
    verified: r.verified,
  };
}

/** What a curator sets on a provider entry; `sku` is its product type's board. */
export interface CuratedFields {
  name: string;
  sku: number;
  website: string | null;
  description: string;
  verified: boolean;
}

/** A curated name is taken (case-insensitive) by another curated entry: 409 naming it. */
async function refuseTakenName(sql: Db, name: string, exceptId: string | null): Promise<void> {
  const [taken] = await sql<{ id: string; name: string }[]>`
    SELECT id, name FROM providers
    WHERE curated AND lower(name) = lower(${name}) AND id IS DISTINCT FROM ${exceptId}`;
  if (taken) {
    throw new HttpError(
      409,
      "conflict",
      `name: the provider ${taken.name} (${taken.id}) already has that name`,
      {
        details: { field: "name", providerId: taken.id },
      },
    );
  }
}

/** Records a curator's change to provider `id` in the audit log. */
async function auditCuration(
  tx: Db,
  actor: { id: number; ip?: string },
  id: string,
  details: Record<string, string | number | boolean>,
): Promise<void> {
  await recordAudit(tx as unknown as Sql, {
    action: "provider.curated",
    actorUserId: actor.id,
    targetType: "provider",
    targetId: id,
    ip: actor.ip,
    details,
  });
}

/**
 * Creates a curated provider entry (public at once); audited. Another user's private product
 * of the same name stays theirs and private (names are never squatted either way).
 */
export async function createCuratedProvider(
  sql: Sql,
  actor: { id: number; ip?: string },
  input: CuratedFields,
): Promise<Provider> {
  return await sql.begin(async (tx) => {
    await refuseTakenName(tx, input.name, null);
    const [{ id }] = await tx<{ id: string }[]>`
      INSERT INTO providers (name, sku, website, description, verified, created_by, curated)
      VALUES (${input.name}, ${input.sku}, ${input.website}, ${input.description}, ${input.verified},
              ${actor.id}, true)
      RETURNING id`;
    await auditCuration(tx, actor, id, { created: true, sku: input.sku, verified: input.verified });
    return (await getProvider(tx, id))!;
  });
}

/**
 * Changes a curated entry's fields (those given); audited with the names of the fields
 * changed. A provider that is not curated is 404 here: user-named products stay their
 * owners' until a mainline result makes them public, and curators do not edit those.
 */
export async function updateCuratedProvider(
  sql: Sql,
  actor: { id: number; ip?: string },
  id: string,
  patch: Partial<CuratedFields>,
): Promise<Provider> {
  return await sql.begin(async (tx) => {
    const [row] = await tx<CuratedFields[]>`
      SELECT name, sku, website, description, verified FROM providers WHERE id = ${id} AND curated FOR UPDATE`;
    if (!row) throw new HttpError(404, "not_found", `No curated provider ${id}`);
    if (patch.name !== undefined && patch.name.toLowerCase() !== row.name.toLowerCase()) {
      await refuseTakenName(tx, patch.name, id);
    }
    const next = { ...row, ...Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) };
    const changed = (Object.keys(row) as (keyof CuratedFields)[]).filter((k) => next[k] !== row[k]);
    if (changed.length > 0) {
      await tx`
        UPDATE providers SET name = ${next.name}, sku = ${next.sku}, website = ${next.website},
          description = ${next.description}, verified = ${next.verified}, updated_at = now()
        WHERE id = ${id}`;
      await auditCuration(tx, actor, id, { changed: changed.join(","), verified: next.verified });
    }
    return (await getProvider(tx, id))!;
  });
}
