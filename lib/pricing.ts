// Prices and per-transaction discounts (SPEC §3), read from pricing_config and
// pricing_discounts on every use so an administrator's change applies at once in every server
// process. Money is integer cents; a discount is integer basis points (1000 = 10 %), so a quote
// is exact integer arithmetic with one rounding at the end.
import type { Db, Sql } from "./db.ts";
import { HttpError } from "./errors.ts";

/** What a seat is bought for: one user (solo Premium) or an organization. */
export type PlanKind = "solo" | "org";
export const PLAN_KINDS = ["solo", "org"] as const;

/** pricing_config.plan for a plan kind. */
const PLAN_ROW: Record<PlanKind, "solo" | "organization"> = { solo: "solo", org: "organization" };

/** The most seats one quote or purchase may cover (keeps totals far inside a 32-bit integer). */
export const MAX_SEATS = 10_000;

export interface PlanPrice {
  kind: PlanKind;
  unitCents: number;
  currency: string;
  period: "month";
  updatedAt: string;
}

export interface DiscountTier {
  minSeats: number;
  /** null: no upper bound. */
  maxSeats: number | null;
  discountBps: number;
  /** discountBps / 100, e.g. 15 for 15 %. */
  discountPercent: number;
}

export interface Pricing {
  /** The currency of the plans (lower-case ISO 4217), e.g. "usd". */
  currency: string;
  period: "month";
  plans: PlanPrice[];
  discounts: DiscountTier[];
}

/** One purchase of `seats` seats of a plan, priced (SPEC §3). */
export interface Quote {
  kind: PlanKind;
  seats: number;
  unitCents: number;
  discountBps: number;
  discountPercent: number;
  totalCents: number;
  currency: string;
  period: "month";
}

/** The prices and discount tiers as stored, tiers by their first seat. */
export async function getPricing(sql: Db): Promise<Pricing> {
  const plans = await sql<{ plan: string; unitPriceCents: number; currency: string; updatedAt: Date }[]>`
    SELECT plan, unit_price_cents, currency, updated_at FROM pricing_config ORDER BY plan DESC`;
  const tiers = await sql<{ minSeats: number; maxSeats: number | null; discountBps: number }[]>`
    SELECT min_seats, max_seats, discount_bps FROM pricing_discounts ORDER BY min_seats`;
  const byKind = (kind: PlanKind) => plans.find((p) => p.plan === PLAN_ROW[kind]);
  const out: PlanPrice[] = [];
  for (const kind of PLAN_KINDS) {
    const p = byKind(kind);
    if (!p) continue;
    out.push({
      kind,
      unitCents: p.unitPriceCents,
      currency: p.currency,
      period: "month",
      updatedAt: p.updatedAt.toISOString(),
    });
  }
  return {
    currency: out[0]?.currency ?? "usd",
    period: "month",
    plans: out,
    discounts: tiers.map((t) => ({ ...t, discountPercent: t.discountBps / 100 })),
  };
}

/**
 * The exact total of `seats` seats at `unitCents` each less `discountBps`: seats × unit ×
 * (1 − discount), rounded once, half up, to a whole cent. Pure; the property tests pin it.
 */
export function totalCents(seats: number, unitCents: number, discountBps: number): number {
  // seats × unit × (10000 − bps) is an integer below 2^53 for seats ≤ MAX_SEATS and any int32
  // price, so integer division with a half-up remainder is exact.
  const scaled = seats * unitCents * (10_000 - discountBps);
  return Math.floor((scaled + 5_000) / 10_000);
}

/** The tier that covers `seats`, or undefined when the table has a gap there. */
export function tierFor(tiers: readonly DiscountTier[], seats: number): DiscountTier | undefined {
  return tiers.find((t) => seats >= t.minSeats && (t.maxSeats === null || seats <= t.maxSeats));
}

/** Prices `seats` seats bought in one transaction; pure, from a Pricing already read. */
export function quoteFrom(pricing: Pricing, kind: PlanKind, seats: number): Quote {
  if (!Number.isSafeInteger(seats) || seats < 1 || seats > MAX_SEATS) {
    throw new HttpError(400, "invalid_input", `seats: must be a whole number from 1 to ${MAX_SEATS}`, {
      details: { issues: [{ field: "seats", message: `must be a whole number from 1 to ${MAX_SEATS}` }] },
    });
  }
  const plan = pricing.plans.find((p) => p.kind === kind);
  if (!plan) throw new HttpError(503, "pricing_missing", `No price is configured for the ${kind} plan`);
  // A gap in the table (which saveDiscounts() refuses) would mean no discount, never a refusal.
  const discountBps = tierFor(pricing.discounts, seats)?.discountBps ?? 0;
  return {
    kind,
    seats,
    unitCents: plan.unitCents,
    discountBps,
    discountPercent: discountBps / 100,
    totalCents: totalCents(seats, plan.unitCents, discountBps),
    currency: plan.currency,
    period: "month",
  };
}

/**
 * The price of `seats` seats of plan `kind` bought in one transaction (SPEC §3: the discount
 * depends on this purchase's seats only, never on seats the buyer already has). Billing charges
 * exactly this.
 */
export async function quote(sql: Db, kind: PlanKind, seats: number): Promise<Quote> {
  return quoteFrom(await getPricing(sql), kind, seats);
}

/** What the administrator may change: any plan's unit price, and the whole tier table. */
export interface PricingChange {
  unitCents?: Partial<Record<PlanKind, number>>;
  discounts?: { minSeats: number; maxSeats: number | null; discountBps: number }[];
}

/**
 * Why a tier table cannot be used, or null: tiers must start at 1 seat, follow each other
 * without gap or overlap, and the last must be open-ended, so every seat count has exactly one.
 */
export function discountTableProblem(
  tiers: readonly { minSeats: number; maxSeats: number | null; discountBps: number }[],
): string | null {
  if (tiers.length === 0) return "discounts: at least one tier is needed";
  const sorted = [...tiers].sort((a, b) => a.minSeats - b.minSeats);
  if (sorted[0].minSeats !== 1) return "discounts: the first tier must start at 1 seat";
  for (let i = 0; i < sorted.length; i++) {
    const t = sorted[i];
    const last = i === sorted.length - 1;
    if (t.maxSeats !== null && t.maxSeats < t.minSeats) {
      return `discounts.${i}.maxSeats: ${t.maxSeats} is below minSeats ${t.minSeats}`;
    }
    if (last && t.maxSeats !== null) {
      return `discounts.${i}.maxSeats: the last tier must have no upper bound (null)`;
    }
    if (!last && t.maxSeats === null) return `discounts.${i}.maxSeats: only the last tier may be open-ended`;
    if (!last && sorted[i + 1].minSeats !== t.maxSeats! + 1) {
      return `discounts.${i + 1}.minSeats: must be ${t.maxSeats! + 1}, right after the tier before it`;
    }
  }
  return null;
}

/**
 * Applies an administrator's change in one transaction (the tier table is replaced whole) and
 * returns the pricing before and after. A table with a gap or an overlap is a 400.
 */
export async function changePricing(
  sql: Sql,
  change: PricingChange,
): Promise<{ before: Pricing; after: Pricing }> {
  if (change.discounts) {
    const problem = discountTableProblem(change.discounts);
    if (problem) {
      const field = problem.slice(0, problem.indexOf(":"));
      throw new HttpError(400, "invalid_input", problem, {
        details: { issues: [{ field, message: problem.slice(field.length + 2) }] },
      });
    }
  }
  return await sql.begin(async (tx) => {
    // One writer at a time: two concurrent table replacements must not interleave.
    await tx`LOCK TABLE pricing_discounts IN EXCLUSIVE MODE`;
    const before = await getPricing(tx);
    for (const kind of PLAN_KINDS) {
      const cents = change.unitCents?.[kind];
      if (cents === undefined) continue;
      await tx`
        INSERT INTO pricing_config (plan, unit_price_cents) VALUES (${PLAN_ROW[kind]}, ${cents})
        ON CONFLICT (plan) DO UPDATE SET unit_price_cents = excluded.unit_price_cents, updated_at = now()`;
    }
    if (change.discounts) {
      await tx`DELETE FROM pricing_discounts`;
      for (const t of change.discounts) {
        await tx`
          INSERT INTO pricing_discounts (min_seats, max_seats, discount_bps)
          VALUES (${t.minSeats}, ${t.maxSeats}, ${t.discountBps})`;
      }
    }
    return { before, after: await getPricing(tx) };
  });
}

/** "$30.60" style text for cents in `currency` (pages and mails). */
export function formatCents(cents: number, currency = "usd"): string {
  return new Intl.NumberFormat("en-US", { style: "currency", currency: currency.toUpperCase() }).format(
    cents / 100,
  );
}
