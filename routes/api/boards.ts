// The boards' accountability routes (issue 13): what a provider's public numbers leave out
// and why (exclusions, discards), the receipts that tie a figure to its results and their
// recordings' SHA-256, and the administrator's exclusions and re-derivation check.
import { type Context, Hono } from "hono";
import { z } from "zod";
import { regionSchema } from "../../agent/protocol.ts";
import { clientIp } from "../../lib/auth/client.ts";
import { discards, excludeResults, listExclusions, restoreResult } from "../../lib/board_exclusions.ts";
import type { AppDeps, AppEnv } from "../../lib/context.ts";
import { HttpError } from "../../lib/errors.ts";
import { requireAdmin } from "../../lib/guards.ts";
import { doc, valid } from "../../lib/openapi.ts";
import { getProvider } from "../../lib/providers.ts";
import { receipts } from "../../lib/receipts.ts";
import { verifyBoards } from "../../lib/verify.ts";

const providerId = z.string().regex(/^[0-9a-z]{12}$/, "a 12-character provider id");
const idParam = z.object({ id: z.coerce.number().int().positive().describe("Result id") });
const providerParam = z.object({ id: providerId });
const daysQuery = z.object({
  days: z.coerce.number().int().min(1).max(3650).default(30).describe("Whole UTC days to look back"),
});
export const receiptsQuery = z.object({
  providerId: providerId.optional().describe("The provider (required)"),
  days: z.coerce.number().int().min(1).max(3650).default(30).describe(
    "Whole UTC days, as on the leaderboard",
  ),
  region: regionSchema.optional(),
  method: z.string().regex(/^[0-9a-f]{12}$/, "a method set id").optional().describe(
    "Method set id; default the newest",
  ),
});
const reason = z.string().trim().min(1).max(500).describe("Why, shown publicly on the provider page");
const excludeBody = z.object({ reason });
const windowBody = z.object({
  providerId,
  region: regionSchema.optional(),
  from: z.iso.datetime({ offset: true }).describe("Start of the window (results created at or after)"),
  to: z.iso.datetime({ offset: true }).describe("End of the window (exclusive)"),
  reason,
});

const exclusion = z.object({
  resultId: z.number(),
  jobId: z.number(),
  providerId: z.string(),
  region: z.string(),
  createdAt: z.string(),
  excludedAt: z.string(),
  reason: z.string(),
});

doc({
  method: "get",
  path: "/api/v1/metrics/providers/{id}/discards",
  summary: "What a provider's public numbers leave out: discards per reason and excluded results with why",
  tag: "metrics",
  auth: "public",
  params: providerParam,
  query: daysQuery,
  response: z.object({
    providerId: z.string(),
    days: z.number(),
    discards: z.array(z.object({ reason: z.string(), count: z.number() })),
    exclusions: z.array(exclusion),
  }),
});
doc({
  method: "get",
  path: "/api/v1/metrics/receipts",
  summary:
    "Receipts of a provider's board figure: each result counted, its stored medians, report and recordings' SHA-256",
  tag: "metrics",
  auth: "public",
  query: receiptsQuery,
});
doc({
  method: "post",
  path: "/api/admin/results/{id}/exclusion",
  summary: "Exclude a mainline result from the public boards, with a reason (audited)",
  tag: "admin",
  auth: "admin",
  params: idParam,
  body: excludeBody,
  response: z.object({ excluded: z.array(z.number()) }),
});
doc({
  method: "delete",
  path: "/api/admin/results/{id}/exclusion",
  summary: "Put an excluded result back on the boards (audited)",
  tag: "admin",
  auth: "admin",
  params: idParam,
  response: z.object({ restored: z.number() }),
});
doc({
  method: "post",
  path: "/api/admin/exclusions",
  summary: "Exclude a provider's mainline results in a time window from the boards, with a reason (audited)",
  tag: "admin",
  auth: "admin",
  body: windowBody,
  response: z.object({ excluded: z.array(z.number()) }),
});
doc({
  method: "get",
  path: "/api/admin/verify",
  summary: "Re-derive every board result from its stored recordings and report; list mismatches",
  tag: "admin",
  auth: "admin",
});

/** Public: a provider's discards and exclusions, and the receipts of a figure. */
export function boardsPublicApi(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.get("/providers/:id/discards", valid("query", daysQuery), valid("param", providerParam), async (c) => {
    const { id } = c.req.valid("param");
    const { days } = c.req.valid("query");
    if (!await getProvider(deps.sql, id)) throw new HttpError(404, "not_found", `No provider ${id}`);
    const [d, exclusions] = await Promise.all([
      discards(deps.sql, id, days),
      listExclusions(deps.sql, id, days),
    ]);
    return c.json({ providerId: id, days, discards: d.byReason, exclusions });
  });
  app.get("/receipts", valid("query", receiptsQuery), async (c) => {
    const q = c.req.valid("query");
    if (!q.providerId) throw new HttpError(400, "invalid_input", "providerId: required");
    if (!await getProvider(deps.sql, q.providerId)) {
      throw new HttpError(404, "not_found", `No provider ${q.providerId}`);
    }
    return c.json(await receipts(deps.sql, { ...q, providerId: q.providerId }));
  });
  return app;
}

/** Admin: exclusions and the re-derivation check. */
export function boardsAdminApi(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.use("*", requireAdmin);
  // deno-lint-ignore no-explicit-any
  const actor = (c: Context<AppEnv, any, any>) => ({ id: c.var.user!.id, ip: clientIp(c, deps.config) });
  app.post("/results/:id/exclusion", valid("param", idParam), valid("json", excludeBody), async (c) => {
    const { id } = c.req.valid("param");
    const excluded = await excludeResults(deps.sql, actor(c), { resultId: id }, c.req.valid("json").reason);
    return c.json({ excluded });
  });
  app.delete("/results/:id/exclusion", valid("param", idParam), async (c) => {
    const { id } = c.req.valid("param");
    await restoreResult(deps.sql, actor(c), id);
    return c.json({ restored: id });
  });
  app.post("/exclusions", valid("json", windowBody), async (c) => {
    const b = c.req.valid("json");
    const from = new Date(b.from);
    const to = new Date(b.to);
    if (from >= to) throw new HttpError(400, "invalid_input", "from: must be before to");
    if (!await getProvider(deps.sql, b.providerId)) {
      throw new HttpError(404, "not_found", `No provider ${b.providerId}`);
    }
    const excluded = await excludeResults(deps.sql, actor(c), {
      providerId: b.providerId,
      region: b.region ?? null,
      from,
      to,
    }, b.reason);
    return c.json({ excluded });
  });
  app.get("/verify", async (c) => c.json(await verifyBoards(deps.sql, deps.artifactStore)));
  return app;
}
