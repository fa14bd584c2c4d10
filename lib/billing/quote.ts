// The price billing charges for a seat purchase: the same quote as GET /api/pricing/quote
// (lib/pricing.ts, SPEC §3), plus what the tier discount takes off, which checkout hands to the
// provider as a fixed amount so the provider charges exactly the quoted total.
import type { Db } from "../db.ts";
import { quote } from "../pricing.ts";

/** A purchase's price per month, in integer cents. */
export interface Quote {
  kind: "solo" | "organization";
  seats: number;
  unitCents: number;
  discountBps: number;
  discountPercent: number;
  /** seats × unit × (1 − discount), rounded once (lib/pricing.ts). */
  totalCents: number;
  /** seats × unit − total: what the tier discount takes off each month. */
  discountCents: number;
  currency: string;
}

/** The quote for `seats` bought in one transaction (400 naming seats when out of range). */
export async function quoteFor(sql: Db, kind: "solo" | "organization", seats: number): Promise<Quote> {
  const q = await quote(sql, kind === "solo" ? "solo" : "org", seats);
  return {
    kind,
    seats: q.seats,
    unitCents: q.unitCents,
    discountBps: q.discountBps,
    discountPercent: q.discountPercent,
    totalCents: q.totalCents,
    discountCents: q.seats * q.unitCents - q.totalCents,
    currency: q.currency,
  };
}
