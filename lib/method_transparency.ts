// What /dive says about how the public numbers are made (issue 13): each metric's method
// version (the eval agent's own table), its measured accuracy read from the committed
// benchmark output (bench/accuracy.json, written by `deno task bench:accuracy --json`), what it
// does not capture, and the blind check: the bundled reference agent, whose delays are set in
// its URL and unknown to the detector, as the production path last measured it.
import { METHODS } from "../agent/report.ts";
import type { Db } from "./db.ts";
import { DEMO, DEMO_AGENT_QUERY } from "./demo.ts";

/** One metric's method as /dive shows it. */
export interface MethodNote {
  key: keyof typeof METHODS;
  version: string;
  notCaptured: string;
}

export const METHOD_NOTES: MethodNote[] = [
  {
    key: "response_latency",
    version: METHODS.response_latency,
    notCaptured:
      "Time the caller's own speech recogniser would need, audio the page never plays, and what the agent says: a fast wrong answer counts as fast.",
  },
  {
    key: "interrupt_latency",
    version: METHODS.interrupt_latency,
    notCaptured:
      "Whether the agent understood the interruption or resumed sensibly afterwards; only when its voice stopped.",
  },
  {
    key: "network_resilience",
    version: METHODS.network_resilience,
    notCaptured:
      "Real mobile networks' burst patterns and hand-overs; only the documented impairment profiles. Hosts without netem apply them in user space (vox-relay/1), named in each report.",
  },
  {
    key: "noise_reduction",
    version: METHODS.noise_reduction,
    notCaptured: "Noise types other than the bundled ones, and speech quality under noise.",
  },
  {
    key: "naturalness",
    version: METHODS.naturalness,
    notCaptured: "Content, correctness, helpfulness and voice quality; it is a heuristic on delivery only.",
  },
  {
    key: "turn_taking",
    version: METHODS.turn_taking,
    notCaptured:
      "What the agent said, whether the caller would have yielded to it, and a reply that ends on its own inside the stop window (counted as a stop).",
  },
];

/** One row of bench/accuracy.json: |error| of one kind of turn on one output path, ms. */
export interface AccuracyRow {
  path: string;
  /** "response" or "interrupt". */
  kind: string;
  n: number;
  detected?: number;
  p50: number | null;
  p95: number | null;
  max: number | null;
  target_p95?: number;
}

const ACCURACY_FILE = new URL("../bench/accuracy.json", import.meta.url);

/** The committed accuracy benchmark output, or null when absent or not its shape. */
export async function readAccuracy(): Promise<AccuracyRow[] | null> {
  try {
    const rows = JSON.parse(await Deno.readTextFile(ACCURACY_FILE));
    return Array.isArray(rows) ? rows as AccuracyRow[] : null;
  } catch {
    return null;
  }
}

/** The blind check: the reference agent's set delays and the production path's latest measurement. */
export interface BlindCheck {
  truth: { responseMs: number; interruptMs: number };
  measured: { responseMs: number | null; interruptMs: number | null; at: string; resultId: number } | null;
}

export async function blindCheck(sql: Db): Promise<BlindCheck> {
  const q = new URLSearchParams(DEMO_AGENT_QUERY);
  const truth = { responseMs: Number(q.get("delay")), interruptMs: Number(q.get("stop")) };
  const [r] = await sql`
    SELECT r.id, r.response_latency_median, r.interrupt_latency_median, r.created_at
    FROM eval_results r JOIN providers p ON p.id = r.provider_id
    WHERE p.curated AND p.name = ${DEMO.provider} AND r.is_mainline AND r.excluded_at IS NULL
    ORDER BY r.id DESC LIMIT 1`;
  return {
    truth,
    measured: r
      ? {
        responseMs: r.responseLatencyMedian,
        interruptMs: r.interruptLatencyMedian,
        at: (r.createdAt as Date).toISOString(),
        resultId: Number(r.id),
      }
      : null,
  };
}
