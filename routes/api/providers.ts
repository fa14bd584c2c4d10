import { Hono } from "hono";
import { z } from "zod";
import type { AppDeps, AppEnv } from "../../lib/context.ts";
import { doc } from "../../lib/openapi.ts";
import { listProviders } from "../../lib/providers.ts";

const providerSchema = z.object({
  id: z.string(),
  name: z.string(),
  sku: z.number(),
  website: z.string().nullable(),
  verifiedOrganization: z.string().nullable().describe("The verified organization it belongs to, if any"),
});
doc({
  method: "get",
  path: "/api/v1/providers",
  summary: "Voice agent providers: the public ones, plus the caller's own private ones when signed in",
  tag: "metrics",
  auth: "public",
  response: z.object({ providers: z.array(providerSchema) }),
});

/**
 * /api/v1/providers: the public providers (curated, or with a mainline result) and the
 * caller's own; ids never change.
 */
export function providersApi(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.get("/", async (c) => {
    const rows = await listProviders(deps.sql, { viewerId: c.var.user?.id ?? null });
    return c.json({
      providers: rows.map((r) => ({
        id: r.id,
        name: r.name,
        sku: r.sku,
        website: r.website,
        verifiedOrganization: r.verifiedOrganization,
      })),
    });
  });
  return app;
}
