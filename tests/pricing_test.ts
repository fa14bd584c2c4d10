// Pricing (SPEC §3): quotes at every tier boundary through GET /api/pricing/quote, properties of
// the arithmetic with fast-check, and the administrator's audited changes.
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  discountTableProblem,
  type DiscountTier,
  type Pricing,
  quoteFrom,
  totalCents,
} from "../lib/pricing.ts";
import { seed } from "../lib/seed.ts";
import { createUser, sessionFor } from "./_auth.ts";
import { createTestApp } from "./_app.ts";
import { createTestDatabase } from "./_db.ts";

const db = await createTestDatabase();
const sql = db.sql;
const { app } = await createTestApp(sql);
Deno.test.afterAll(() => db.close());

const admin = await createUser(sql, { isAdmin: true });
const adminHeaders = {
  cookie: (await sessionFor(sql, admin.id)).cookie,
  origin: "http://localhost",
  "sec-fetch-site": "same-origin",
  "content-type": "application/json",
};

async function getQuote(query: string) {
  const res = await app.request(`/api/pricing/quote?${query}`);
  return { status: res.status, type: res.headers.get("content-type"), body: await res.json() };
}

Deno.test("GET /api/pricing lists both plans, the four seeded tiers and the currency", async () => {
  const res = await app.request("/api/pricing");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type")!, /application\/json/);
  const p = await res.json();
  assert.equal(p.currency, "usd");
  assert.deepEqual(p.plans.map((x: { kind: string; unitCents: number }) => [x.kind, x.unitCents]), [
    ["solo", 500],
    ["org", 600],
  ]);
  assert.deepEqual(
    p.discounts.map((t: DiscountTier) => [t.minSeats, t.maxSeats, t.discountPercent]),
    [[1, 2, 0], [3, 5, 10], [6, 10, 15], [11, null, 25]],
  );
});

// Expected totals by hand from SPEC §3: seats × unit × (1 − discount).
const BOUNDARIES: [number, number, number, number][] = [
  // seats, discount %, solo total, org total
  [1, 0, 500, 600],
  [2, 0, 1000, 1200],
  [3, 10, 1350, 1620],
  [5, 10, 2250, 2700],
  [6, 15, 2550, 3060],
  [10, 15, 4250, 5100],
  [11, 25, 4125, 4950],
  [40, 25, 15000, 18000],
];

Deno.test("the quote at every tier boundary, solo and org (6 org seats = 3060 cents as in SPEC §3)", async () => {
  for (const [seats, percent, solo, org] of BOUNDARIES) {
    for (const [kind, unit, total] of [["solo", 500, solo], ["org", 600, org]] as const) {
      const q = await getQuote(`kind=${kind}&seats=${seats}`);
      assert.equal(q.status, 200, `${kind} ${seats}`);
      assert.match(q.type!, /application\/json/);
      assert.equal(q.body.unitCents, unit, `${kind} ${seats} unit`);
      assert.equal(q.body.discountPercent, percent, `${kind} ${seats} discount`);
      assert.equal(q.body.totalCents, total, `${kind} ${seats} total`);
    }
  }
  assert.equal((await getQuote("kind=org&seats=6")).body.totalCents, 3060);
});

Deno.test("seats missing, zero, negative, fractional or not a number: 400 naming seats", async () => {
  for (
    const query of ["kind=org", "kind=org&seats=0", "kind=solo&seats=-3", "kind=org&seats=2.5", "seats=abc"]
  ) {
    const q = await getQuote(query);
    assert.equal(q.status, 400, query);
    assert.equal(q.body.error.code, "invalid_input", query);
    assert.match(q.body.error.message, /^seats: /, query);
  }
  const kind = await getQuote("kind=team&seats=3");
  assert.equal(kind.status, 400);
  assert.match(kind.body.error.message, /^kind: must be solo or org/);
});

// A pricing made of arbitrary prices and a valid arbitrary tier table.
const tierTable = fc.array(fc.tuple(fc.integer({ min: 1, max: 30 }), fc.integer({ min: 0, max: 10_000 })), {
  minLength: 0,
  maxLength: 5,
}).chain((spans) =>
  fc.integer({ min: 0, max: 10_000 }).map((lastBps) => {
    const tiers: DiscountTier[] = [];
    let from = 1;
    for (const [len, bps] of spans) {
      tiers.push({ minSeats: from, maxSeats: from + len - 1, discountBps: bps, discountPercent: bps / 100 });
      from += len;
    }
    tiers.push({ minSeats: from, maxSeats: null, discountBps: lastBps, discountPercent: lastBps / 100 });
    return tiers;
  })
);
const pricingArb = fc.record({
  solo: fc.integer({ min: 0, max: 100_000 }),
  org: fc.integer({ min: 0, max: 100_000 }),
  tiers: tierTable,
}).map(({ solo, org, tiers }): Pricing => ({
  currency: "usd",
  period: "month",
  plans: [
    { kind: "solo", unitCents: solo, currency: "usd", period: "month", updatedAt: "" },
    { kind: "org", unitCents: org, currency: "usd", period: "month", updatedAt: "" },
  ],
  discounts: tiers,
}));
const kindArb = fc.constantFrom("solo" as const, "org" as const);

Deno.test("property: total = seats × unit × (1 − discount) rounded once to the nearest cent", () => {
  fc.assert(
    fc.property(pricingArb, kindArb, fc.integer({ min: 1, max: 10_000 }), (pricing, kind, seats) => {
      const q = quoteFrom(pricing, kind, seats);
      // Exactly, in integers: 10000 × total lies within half a cent (5000) of seats × unit ×
      // (10000 − bps), halves rounding up; rounded once, not a sum of per-seat roundings.
      const exact = BigInt(seats) * BigInt(q.unitCents) * BigInt(10_000 - q.discountBps);
      const diff = BigInt(q.totalCents) * 10_000n - exact;
      assert.ok(diff > -5_000n && diff <= 5_000n, `${q.totalCents} vs ${exact}/10000`);
      // And by the formula in SPEC §3 with floating point, to the cent.
      assert.ok(Math.abs(q.totalCents - seats * q.unitCents * (1 - q.discountPercent / 100)) <= 0.5 + 1e-6);
      assert.ok(Number.isInteger(q.totalCents));
      // Money is integer cents and the table is a valid one.
      assert.equal(discountTableProblem(pricing.discounts), null);
    }),
    { numRuns: 500 },
  );
  // Once, not per seat: 3 seats at 333 cents less 10 % is 899.1 → 899 (per seat: 3 × 300 = 900).
  assert.equal(totalCents(3, 333, 1000), 899);
  // Half a cent rounds up.
  assert.equal(totalCents(1, 5, 5000), 3);
});

Deno.test("property: within a tier the total never decreases as seats grow", () => {
  fc.assert(
    fc.property(pricingArb, kindArb, fc.integer({ min: 1, max: 9_999 }), (pricing, kind, seats) => {
      const a = quoteFrom(pricing, kind, seats);
      const b = quoteFrom(pricing, kind, seats + 1);
      if (a.discountBps === b.discountBps) assert.ok(b.totalCents >= a.totalCents, `${seats} → ${seats + 1}`);
    }),
    { numRuns: 500 },
  );
});

Deno.test("property: the discount is per transaction — two purchases cost their own quotes", () => {
  fc.assert(
    fc.property(
      pricingArb,
      fc.integer({ min: 1, max: 200 }),
      fc.integer({ min: 1, max: 200 }),
      (pricing, a, b) => {
        // Buying a seats, then b more, costs quote(a) + quote(b): the second purchase gets the tier
        // of b alone, whatever the buyer already holds.
        const tierOf = (n: number) =>
          pricing.discounts.find((t) => n >= t.minSeats && (t.maxSeats === null || n <= t.maxSeats))!;
        const second = quoteFrom(pricing, "org", b);
        assert.equal(second.discountBps, tierOf(b).discountBps);
        assert.equal(second.totalCents, totalCents(b, pricing.plans[1].unitCents, tierOf(b).discountBps));
        const both = quoteFrom(pricing, "org", a).totalCents + second.totalCents;
        if (
          tierOf(a + b).discountBps === tierOf(a).discountBps &&
          tierOf(a).discountBps === tierOf(b).discountBps
        ) {
          // Same tier throughout: the split differs from one purchase by rounding only.
          assert.ok(Math.abs(both - quoteFrom(pricing, "org", a + b).totalCents) <= 1);
        }
      },
    ),
    { numRuns: 300 },
  );
  // SPEC §3's case: an organization with 10 seats buying 1 more pays the 1-seat price, 600.
  const seeded = quoteFrom(
    {
      currency: "usd",
      period: "month",
      plans: [{ kind: "org", unitCents: 600, currency: "usd", period: "month", updatedAt: "" }],
      discounts: [
        { minSeats: 1, maxSeats: 2, discountBps: 0, discountPercent: 0 },
        { minSeats: 3, maxSeats: 5, discountBps: 1000, discountPercent: 10 },
        { minSeats: 6, maxSeats: 10, discountBps: 1500, discountPercent: 15 },
        { minSeats: 11, maxSeats: null, discountBps: 2500, discountPercent: 25 },
      ],
    },
    "org",
    1,
  );
  assert.equal(seeded.totalCents, 600);
});

Deno.test("the admin changes prices and tiers (audited); quotes follow; a gappy table is refused", async () => {
  const put = (body: unknown, headers: Record<string, string> = adminHeaders) =>
    app.request("/api/admin/pricing", { method: "PUT", headers, body: JSON.stringify(body) });

  const gap = await put({
    discounts: [{ minSeats: 1, maxSeats: 2, discountBps: 0 }, {
      minSeats: 4,
      maxSeats: null,
      discountBps: 500,
    }],
  });
  assert.equal(gap.status, 400);
  assert.match((await gap.json()).error.message, /^discounts\.1\.minSeats: must be 3/);
  const closed = await put({ discounts: [{ minSeats: 1, maxSeats: 5, discountBps: 0 }] });
  assert.equal(closed.status, 400);
  assert.match((await closed.json()).error.message, /last tier must have no upper bound/);
  const late = await put({ discounts: [{ minSeats: 2, maxSeats: null, discountBps: 0 }] });
  assert.match((await late.json()).error.message, /first tier must start at 1 seat/);
  // Nothing changed by the refusals.
  assert.equal((await getQuote("kind=org&seats=6")).body.totalCents, 3060);

  const basic = await createUser(sql);
  const notAdmin = await put({ unitCents: { org: 1 } }, {
    ...adminHeaders,
    cookie: (await sessionFor(sql, basic.id)).cookie,
  });
  assert.equal(notAdmin.status, 403);

  const ok = await put({
    reason: "winter offer",
    unitCents: { org: 700 },
    discounts: [{ minSeats: 1, maxSeats: 4, discountBps: 0 }, {
      minSeats: 5,
      maxSeats: null,
      discountBps: 2000,
    }],
  });
  assert.equal(ok.status, 200);
  const after = await ok.json();
  assert.equal(after.plans.find((p: { kind: string }) => p.kind === "org").unitCents, 700);
  assert.equal(after.plans.find((p: { kind: string }) => p.kind === "solo").unitCents, 500);
  assert.equal((await getQuote("kind=org&seats=6")).body.totalCents, 6 * 700 * 0.8);
  assert.equal((await getQuote("kind=org&seats=4")).body.discountPercent, 0);

  const [audit] = await sql`SELECT actor_user_id, details FROM audit_log WHERE action = 'pricing.changed'`;
  assert.equal(audit.actorUserId, admin.id);
  assert.equal(audit.details.reason, "winter offer");
  assert.match(audit.details.pricesBefore, /org=600/);
  assert.match(audit.details.pricesAfter, /org=700/);
  assert.equal(audit.details.tiersAfter, "1-4:0 5-:2000");

  // Seeding again (every start) keeps the administrator's table rather than adding the defaults back.
  await seed(sql);
  const tiers = await sql`SELECT min_seats FROM pricing_discounts ORDER BY min_seats`;
  assert.deepEqual(tiers.map((t) => t.minSeats), [1, 5]);
});
