// /api/pricing: prices, discount tiers and quotes (public), and /api/admin/pricing where the
// administrator changes them (audited like the other settings).
import { Hono } from "hono";
import { z } from "zod";
import { recordAudit } from "../../lib/audit.ts";
import { clientIp } from "../../lib/auth/client.ts";
import type { AppDeps, AppEnv } from "../../lib/context.ts";
import { requireAdmin } from "../../lib/guards.ts";
import { doc, valid } from "../../lib/openapi.ts";
import { changePricing, getPricing, MAX_SEATS, PLAN_KINDS, quote } from "../../lib/pricing.ts";

const seatsMessage = `must be a whole number from 1 to ${MAX_SEATS}`;
export const quoteQuery = z.object({
  kind: z.enum(PLAN_KINDS, { error: "must be solo or org" }).default("org")
    .describe("solo: a user's Premium; org: an organization's seats (the default)"),
  seats: z.coerce.number({ error: seatsMessage }).int(seatsMessage).min(1, seatsMessage).max(
    MAX_SEATS,
    seatsMessage,
  ).describe("Seats bought in this one transaction (the discount depends on them alone)"),
});

const planSchema = z.object({
  kind: z.enum(PLAN_KINDS),
  unitCents: z.number(),
  currency: z.string(),
  period: z.literal("month"),
  updatedAt: z.string(),
});
const tierSchema = z.object({
  minSeats: z.number(),
  maxSeats: z.number().nullable(),
  discountBps: z.number(),
  discountPercent: z.number(),
});
export const pricingSchema = z.object({
  currency: z.string(),
  period: z.literal("month"),
  plans: z.array(planSchema),
  discounts: z.array(tierSchema),
});
export const quoteSchema = z.object({
  kind: z.enum(PLAN_KINDS),
  seats: z.number(),
  unitCents: z.number(),
  discountBps: z.number(),
  discountPercent: z.number(),
  totalCents: z.number(),
  currency: z.string(),
  period: z.literal("month"),
});

const cents = z.number().int().min(0).max(1_000_000);
export const pricingChangeSchema = z.object({
  reason: z.string().trim().max(500).optional().describe("Why it changed, kept in the audit trail"),
  unitCents: z.object({ solo: cents.optional(), org: cents.optional() }).strict().optional()
    .describe("New price per seat per month, in cents, by plan"),
  discounts: z.array(
    z.object({
      minSeats: z.number().int().min(1).max(MAX_SEATS),
      maxSeats: z.number().int().min(1).max(MAX_SEATS).nullable(),
      discountBps: z.number().int().min(0).max(10_000).describe("Basis points: 1500 = 15 %"),
    }).strict(),
  ).min(1).max(50).optional().describe(
    "The whole tier table, replacing the old one: from 1 seat, no gaps, the last open-ended",
  ),
}).strict();

doc({
  method: "get",
  path: "/api/pricing",
  summary: "Prices per seat and month, discount tiers by seats bought at once, currency",
  tag: "pricing",
  auth: "public",
  response: pricingSchema,
});
doc({
  method: "get",
  path: "/api/pricing/quote",
  summary: "The price of N seats bought in one transaction (integer cents, SPEC §3)",
  tag: "pricing",
  auth: "public",
  query: quoteQuery,
  response: quoteSchema,
});
doc({
  method: "put",
  path: "/api/admin/pricing",
  summary: "Change plan prices and/or replace the discount tier table (audited)",
  tag: "admin",
  auth: "admin",
  body: pricingChangeSchema,
  response: pricingSchema,
});

/** /api/pricing (public). */
export function pricingApi(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.get("/", async (c) => c.json(await getPricing(deps.sql)));
  app.get("/quote", valid("query", quoteQuery), async (c) => {
    const { kind, seats } = c.req.valid("query");
    return c.json(await quote(deps.sql, kind, seats));
  });
  return app;
}

/** /api/admin/pricing (the administrator). */
export function adminPricingApi(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.use("*", requireAdmin);
  app.put("/", valid("json", pricingChangeSchema), async (c) => {
    const { reason, ...change } = c.req.valid("json");
    const { before, after } = await changePricing(deps.sql, change);
    const prices = (p: typeof before) => p.plans.map((x) => `${x.kind}=${x.unitCents}`).join(" ");
    const tiers = (p: typeof before) =>
      p.discounts.map((t) => `${t.minSeats}-${t.maxSeats ?? ""}:${t.discountBps}`).join(" ");
    await recordAudit(deps.sql, {
      action: "pricing.changed",
      actorUserId: c.var.user!.id,
      targetType: "pricing",
      targetId: "pricing",
      ip: clientIp(c, deps.config),
      details: {
        pricesBefore: prices(before),
        pricesAfter: prices(after),
        tiersBefore: tiers(before),
        tiersAfter: tiers(after),
        reason: reason ?? null,
      },
    });
    return c.json(after);
  });
  return app;
}
