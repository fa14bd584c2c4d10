import type { Sql } from "./db.ts";

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
  { ownerKind: "basic", maxProjects: 5, maxWorkflowsPerProject: 10 },
  { ownerKind: "premium", maxProjects: 20, maxWorkflowsPerProject: 20 },
  { ownerKind: "principal", maxProjects: 20, maxWorkflowsPerProject: 20 },
  { ownerKind: "fellow", maxProjects: 20, maxWorkflowsPerProject: 20 },
  { ownerKind: "organization", maxProjects: 100, maxWorkflowsPerProject: 20 },
  { ownerKind: "org_member", maxProjects: 20, maxWorkflowsPerProject: 20 },
] as const;

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

/** System settings with their defaults; values are JSON. */
export const DEFAULT_SYSTEM_CONFIG: Record<string, { value: unknown; description: string }> = {
  "rate_limit.general": {
    value: { max: 100, windowSeconds: 900 },
    description: "Requests per client per window on the API",
  },
  "rate_limit.auth": {
    value: { max: 20, windowSeconds: 900 },
    description: "Login, sign-up and token requests per client per window",
  },
  "auth.session_idle_seconds": { value: 60 * 60 * 24 * 7, description: "Session idle timeout" },
  "auth.session_absolute_seconds": {
    value: 60 * 60 * 24 * 30,
    description: "Session lifetime however active",
  },
  "auth.activation_ttl_seconds": { value: 60 * 60 * 48, description: "Activation link lifetime" },
  "auth.lockout": {
    value: { failures: 5, lockSeconds: 900 },
    description: "Failed logins for one account before it is locked, and for how long",
  },
  "jobs.max_attempts": { value: 3, description: "Attempts before a job is failed" },
  "jobs.heartbeat_timeout_seconds": {
    value: 30,
    description: "Silence after which an agent's job is released",
  },
  "agents.heartbeat_interval_seconds": { value: 10, description: "Agent heartbeat period" },
};

/** Inserts reference data that is missing; never changes rows that exist. Safe to run often. */
export async function seed(sql: Sql): Promise<void> {
  await sql.begin(async (tx) => {
    for (const p of SEEDED_PROVIDERS) {
      await tx`
        INSERT INTO providers (id, name, sku, website)
        VALUES (${p.id}, ${p.name}, ${p.sku}, ${p.website})
        ON CONFLICT DO NOTHING`;
    }
    for (const l of DEFAULT_PLAN_LIMITS) {
      await tx`
        INSERT INTO plan_limits (owner_kind, max_projects, max_workflows_per_project)
        VALUES (${l.ownerKind}, ${l.maxProjects}, ${l.maxWorkflowsPerProject})
        ON CONFLICT DO NOTHING`;
    }
    for (const p of DEFAULT_PRICING) {
      await tx`
        INSERT INTO pricing_config (plan, unit_price_cents)
        VALUES (${p.plan}, ${p.unitPriceCents})
        ON CONFLICT DO NOTHING`;
    }
    for (const d of DEFAULT_DISCOUNTS) {
      await tx`
        INSERT INTO pricing_discounts (min_seats, max_seats, discount_bps)
        VALUES (${d.minSeats}, ${d.maxSeats}, ${d.discountBps})
        ON CONFLICT DO NOTHING`;
    }
    for (const [key, { value, description }] of Object.entries(DEFAULT_SYSTEM_CONFIG)) {
      await tx`
        INSERT INTO system_config (key, value, description)
        VALUES (${key}, ${tx.json(value as never)}, ${description})
        ON CONFLICT DO NOTHING`;
    }
  });
}
