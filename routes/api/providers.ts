import { type Context, Hono } from "hono";
import { z } from "zod";
import { clientIp } from "../../lib/auth/client.ts";
import type { AppDeps, AppEnv } from "../../lib/context.ts";
import { requireRole } from "../../lib/guards.ts";
import { doc, valid } from "../../lib/openapi.ts";
import { CURATOR_ROLES } from "../../lib/roles.ts";
import {
  createCuratedProvider,
  listProviders,
  PRODUCT_TYPES,
  type Provider,
  updateCuratedProvider,
} from "../../lib/providers.ts";

const providerSchema = z.object({
  id: z.string(),
  name: z.string(),
  sku: z.number(),
  productType: z.enum(PRODUCT_TYPES),
  website: z.string().nullable(),
  description: z.string(),
  curated: z.boolean().describe("Kept by principals and the admin; public from the start"),
  verified: z.boolean().describe("Curators verified the entry is the vendor it names"),
  verifiedOrganization: z.string().nullable().describe(
    "Who vouches for it: its verified organization, else its own name when verified; null otherwise",
  ),
});

const name = z.string().trim().min(1, "must not be empty").max(100, "at most 100 characters");
// An empty website clears it (the console's form sends "" for an emptied field).
const website = z.preprocess(
  (v) => (typeof v === "string" && v.trim() === "" ? null : v),
  z.string().trim().max(500, "at most 500 characters")
    .regex(/^https?:\/\/[^\s/]+[^\s]*$/i, "must be an http(s) URL").nullable(),
);
const productType = z.enum(PRODUCT_TYPES).describe("The board it is ranked on");
const description = z.string().trim().max(2000, "at most 2000 characters");
const createBody = z.object({
  name,
  productType,
  website: website.default(null),
  description: description.default(""),
  verified: z.boolean().default(false),
}).strict();
const patchBody = z.object({
  name: name.optional(),
  productType: productType.optional(),
  website: website.optional(),
  description: description.optional(),
  verified: z.boolean().optional(),
}).strict().refine((b) => Object.keys(b).length > 0, "give at least one field to change");
const idParam = z.object({ id: z.string().regex(/^[0-9a-z]{12}$/, "a 12-character provider id") });

doc({
  method: "get",
  path: "/api/v1/providers",
  summary: "Voice agent providers: the public ones, plus the caller's own private ones when signed in",
  tag: "metrics",
  auth: "public",
  response: z.object({ providers: z.array(providerSchema) }),
});
doc({
  method: "post",
  path: "/api/v1/providers",
  summary: "Create a curated provider entry, public at once (principals and the admin; audited)",
  tag: "metrics",
  auth: "user",
  body: createBody,
  response: providerSchema,
});
doc({
  method: "patch",
  path: "/api/v1/providers/{id}",
  summary: "Change a curated entry's name, website, product type, description or verified flag (audited)",
  tag: "metrics",
  auth: "user",
  params: idParam,
  body: patchBody,
  response: providerSchema,
});

function toJson(p: Provider) {
  return {
    id: p.id,
    name: p.name,
    sku: p.sku,
    productType: PRODUCT_TYPES[p.sku] ?? "convoai",
    website: p.website,
    description: p.description,
    curated: p.curated,
    verified: p.verified,
    verifiedOrganization: p.verifiedOrganization,
  };
}

/**
 * /api/v1/providers: the public providers (curated, or with a mainline result) and the
 * caller's own; ids never change. Principals and the admin create and edit curated entries.
 */
export function providersApi(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  // deno-lint-ignore no-explicit-any
  const actor = (c: Context<AppEnv, any, any>) => ({ id: c.var.user!.id, ip: clientIp(c, deps.config) });
  app.get("/", async (c) => {
    const rows = await listProviders(deps.sql, { viewerId: c.var.user?.id ?? null });
    return c.json({ providers: rows.map(toJson) });
  });
  app.post("/", requireRole(...CURATOR_ROLES), valid("json", createBody), async (c) => {
    const b = c.req.valid("json");
    const made = await createCuratedProvider(deps.sql, actor(c), {
      name: b.name,
      sku: PRODUCT_TYPES.indexOf(b.productType),
      website: b.website,
      description: b.description,
      verified: b.verified,
    });
    return c.json(toJson(made), 201);
  });
  app.patch(
    "/:id",
    requireRole(...CURATOR_ROLES),
    valid("param", idParam),
    valid("json", patchBody),
    async (c) => {
      const b = c.req.valid("json");
      const changed = await updateCuratedProvider(deps.sql, actor(c), c.req.valid("param").id, {
        name: b.name,
        sku: b.productType === undefined ? undefined : PRODUCT_TYPES.indexOf(b.productType),
        website: b.website,
        description: b.description,
        verified: b.verified,
      });
      return c.json(toJson(changed));
    },
  );
  return app;
}
