/**
 * One thing to gate: a server result or a local run report (agent/report.ts), in one shape, so
 * gates, the baseline test and every output format treat both alike.
 */
import { z } from "zod";
import { runReportSchema } from "../protocol.ts";
import type { Summary } from "../stats.ts";
import { type TurnTaking, turnTaking } from "../turn_taking_metrics.ts";
import { CliError } from "./errors.ts";

/** A turn as gates and the baseline test read it. */
export interface MeasuredTurn {
  kind: "response" | "interrupt";
  latency_ms: number | null;
  ok: boolean;
}

/** A result or report, normalized. */
export interface Measurement {
  /** "result 12" or the report's path. */
  label: string;
  resultId?: number;
  jobId?: number;
  region?: string;
  /** Where a person can look at it (the result's API resource). */
  link?: string;
  response: Summary;
  interrupt: Summary;
  networkResilience: number | null;
  noiseReduction: number | null;
  naturalness: number | null;
  /** Turn taking (vox-turntaking/1); null when nothing of it was measured. */
  turnTaking?: TurnTaking | null;
  turns: MeasuredTurn[];
}

/** The `turn_taking.*` values a gate may name. */
export const TURN_TAKING_KEYS = [
  "pause_takeover_rate",
  "backchannel_stop_rate",
  "background_false_trigger_rate",
  "n_pause",
  "n_backchannel",
  "n_background",
  "penalty_ms",
] as const;

const ttTurn = z.looseObject({ kind: z.string(), ok: z.boolean(), latency_ms: z.number().nullable() });

/** Turn taking recomputed from stored turns (the same function the agent uses); null without such turns. */
function turnTakingOf(list: unknown[]): TurnTaking | null {
  const turns = list.flatMap((t) => {
    const r = ttTurn.safeParse(t);
    return r.success ? [r.data] : [];
  });
  if (!turns.some((t) => t.kind === "pause" || t.kind === "backchannel" || t.kind === "background")) {
    return null;
  }
  return turnTaking(turns);
}

const stats = z.object({
  median: z.number().nullable(),
  sd: z.number().nullable(),
  p90: z.number().nullable(),
  n: z.number(),
});

/** GET /api/v1/results/{id} as far as the CLI reads it. */
export const resultDetailSchema = z.looseObject({
  id: z.number(),
  jobId: z.number(),
  workflowId: z.number(),
  evalSetId: z.number(),
  region: z.string(),
  isMainline: z.boolean(),
  responseLatency: stats,
  interruptLatency: stats,
  networkResilience: z.number().nullable(),
  naturalness: z.number().nullable(),
  noiseReduction: z.number().nullable(),
  createdAt: z.string(),
  turns: z.array(z.unknown()).default([]),
});
export type ResultDetail = z.infer<typeof resultDetailSchema>;

const turn = z.looseObject({
  kind: z.enum(["response", "interrupt"]),
  latency_ms: z.number().nullable(),
  ok: z.boolean(),
});

function turnsOf(list: unknown[]): MeasuredTurn[] {
  return list.flatMap((t) => {
    const r = turn.safeParse(t);
    return r.success ? [{ kind: r.data.kind, latency_ms: r.data.latency_ms, ok: r.data.ok }] : [];
  });
}

/** A server result (its detail, with turns). */
export function fromResult(r: ResultDetail, serverUrl: string): Measurement {
  return {
    label: `result ${r.id}`,
    resultId: r.id,
    jobId: r.jobId,
    region: r.region,
    link: `${serverUrl.replace(/\/+$/, "")}/api/v1/results/${r.id}`,
    response: r.responseLatency,
    interrupt: r.interruptLatency,
    networkResilience: r.networkResilience,
    noiseReduction: r.noiseReduction,
    naturalness: r.naturalness,
    turnTaking: turnTakingOf(r.turns),
    turns: turnsOf(r.turns),
  };
}

/** A local report as `deno task agent run --report` writes it; a bad file is a CliError. */
export function fromReport(json: unknown, label: string): Measurement {
  const parsed = runReportSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CliError(
      `${label}: not a Vox run report (${issue.path.join(".") || "document"}: ${issue.message})`,
    );
  }
  const m = parsed.data.metrics;
  return {
    label,
    response: m.response_latency,
    interrupt: m.interrupt_latency,
    networkResilience: m.network_resilience,
    noiseReduction: m.noise_reduction,
    naturalness: m.naturalness,
    turnTaking: m.turn_taking ?? turnTakingOf(parsed.data.turns),
    turns: turnsOf(parsed.data.turns),
  };
}

/** Latencies of the measured (ok) turns of one kind. */
export function latencies(m: Measurement, kind: MeasuredTurn["kind"]): number[] {
  return m.turns.filter((t) => t.kind === kind && t.ok && t.latency_ms != null).map((t) => t.latency_ms!);
}
