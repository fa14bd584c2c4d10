import type { Sql } from "./db.ts";
import { SETTINGS } from "./settings.ts";

/**
 * The seeded providers. Their ids were drawn at random once and are fixed here so every
 * Vox database agrees on them; SPEC §4 forbids ever changing a provider id.
 */
export const SEEDED_PROVIDERS = [
  { id: "55q6lmqndb3b", name: "Agora ConvoAI Engine", sku: 0, website: "https://www.agora.io" },
  { id: "5qu0w8ulgkb5", name: "LiveKit Agents", sku: 1, website: "https://livekit.io" },
] as const;

/** Plan limits (SPEC §2); admins may change them later, so seeding never overwrites. */
export const DEFAULT_PLAN_LIMITS = [
  { ownerKind: "basic", maxProjects: 5, maxWorkflowsPerProject: 10, ...fairUse(20, 5, 60) },
  { ownerKind: "premium", maxProjects: 20, maxWorkflowsPerProject: 20, ...fairUse(100, 25, 15) },
  { ownerKind: "principal", maxProjects: 20, maxWorkflowsPerProject: 20, ...fairUse(500, 100, 5) },
  { ownerKind: "fellow", maxProjects: 20, maxWorkflowsPerProject: 20, ...fairUse(500, 100, 5) },
  { ownerKind: "organization", maxProjects: 100, maxWorkflowsPerProject: 20, ...fairUse(500, 100, 5) },
  { ownerKind: "org_member", maxProjects: 20, maxWorkflowsPerProject: 20, ...fairUse(100, 25, 15) },
] as const;

function fairUse(maxPendingJobs: number, maxSchedules: number, minScheduleIntervalMinutes: number) {
  return { maxPendingJobs, maxSchedules, minScheduleIntervalMinutes };
}

/** Prices in cents per seat per month and per-transaction discounts (SPEC §3). */
export const DEFAULT_PRICING = [
  { plan: "solo", unitPriceCents: 500 },
  { plan: "organization", unitPriceCents: 600 },
] as const;

export const DEFAULT_DISCOUNTS = [
  { minSeats: 1, maxSeats: 2, discountBps: 0 },
  { minSeats: 3, maxSeats: 5, discountBps: 1000 },
  { minSeats: 6, maxSeats: 10, discountBps: 1500 },
  { minSeats: 11, maxSeats: null, discountBps: 2500 },
] as const;

/** Inserts reference data that is missing; never changes rows that exist. Safe to run often. */
export async function seed(sql: Sql): Promise<void> {
  await sql.begin(async (tx) => {
    for (const p of SEEDED_PROVIDERS) {
      await tx`
        INSERT INTO providers (id, name, sku, website, curated)
        VALUES (${p.id}, ${p.name}, ${p.sku}, ${p.website}, true)
        ON CONFLICT DO NOTHING`;
    }
    for (const l of DEFAULT_PLAN_LIMITS) {
      await tx`
        INSERT INTO plan_limits (owner_kind, max_projects, max_workflows_per_project, max_pending_jobs,
                                 max_schedules, min_schedule_interval_minutes)
        VALUES (${l.ownerKind}, ${l.maxProjects}, ${l.maxWorkflowsPerProject}, ${l.maxPendingJobs},
                ${l.maxSchedules}, ${l.minScheduleIntervalMinutes})
        ON CONFLICT DO NOTHING`;
    }
    for (const p of DEFAULT_PRICING) {
      await tx`
        INSERT INTO pricing_config (plan, unit_price_cents)
        VALUES (${p.plan}, ${p.unitPriceCents})
        ON CONFLICT DO NOTHING`;
    }
    // The tiers are one table (lib/pricing.ts replaces it whole): seeding a tier beside ones an
    // administrator chose would overlap them, so the defaults go in only when there are none.
    const [{ tiers }] = await tx<{ tiers: number }[]>`SELECT count(*)::int AS tiers FROM pricing_discounts`;
    for (const d of tiers === 0 ? DEFAULT_DISCOUNTS : []) {
      await tx`
        INSERT INTO pricing_discounts (min_seats, max_seats, discount_bps)
        VALUES (${d.minSeats}, ${d.maxSeats}, ${d.discountBps})
        ON CONFLICT DO NOTHING`;
    }
    for (const [key, { default: value, description }] of Object.entries(SETTINGS)) {
      await tx`
        INSERT INTO system_config (key, value, description)
        VALUES (${key}, ${tx.json(value)}, ${description})
        ON CONFLICT DO NOTHING`;
    }
  });
}
