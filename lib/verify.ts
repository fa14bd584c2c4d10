// Re-derivation of the public numbers (issue 13), used by `deno task verify` and
// GET /api/admin/verify. For every board result it checks, offline:
//   1. the report is the one stored (SHA-256 of its canonical text = report_sha256);
//   2. the stored per-job numbers are the report's and follow from its turns (the median and
//      n of the ok response/interrupt turns);
//   3. each recording's bytes hash to the SHA-256 stored when it was uploaded;
//   4. each measured turn's latency (response and interrupt), re-derived from the stereo
//      recording (caller left, agent right) with the meter's own voice detector
//      (agent/page/meter_worklet.js), is within TOLERANCE_MS of the stored one;
// and that the published figures (leaderboard from the rollups) equal a from-scratch
// computation over eval_results. A page that fakes its in-page measurement cannot fake the
// recording the agent pulled from the meter, so (4) is also a consistency check against it.
import { createHash } from "node:crypto";
import { DETECTOR } from "../agent/page_hooks.ts";
import { summarize } from "../agent/stats.ts";
import type { ArtifactStore } from "./artifact_store.ts";
import type { Sql } from "./db.ts";
import { leaderboard, onBoardSql, rollUpResults } from "./metrics.ts";

/** Largest difference between a stored and a re-derived turn latency that still agrees, ms. */
export const TOLERANCE_MS = 2;
// Stored per-job numbers are the report's, rounded at most to 0.01 ms.
const NUMBER_TOLERANCE = 0.011;

export interface Mismatch {
  resultId: number;
  jobId: number;
  what: string;
}

export interface VerifyReport {
  results: number;
  recordings: number;
  turnsRederived: number;
  /** Largest |stored − re-derived| over the re-derived turns, ms. */
  maxTurnDiffMs: number | null;
  figuresAgree: boolean;
  mismatches: Mismatch[];
}

/** A voiced segment on one channel, in recording sample indices (end = last voiced sample). */
export interface Segment {
  start: number;
  end: number;
}

/**
 * The meter's voice detector (agent/page/meter_worklet.js `Detector`) over one channel:
 * a segment starts at the first sample with |x| ≥ theta when at least minCount such samples
 * fall within the confirm window, and ends at the last such sample once `hold` samples below
 * theta have passed.
 */
export function voicedSegments(samples: Float32Array, sampleRate: number): Segment[] {
  const ms = (v: number) => Math.max(1, Math.round((v * sampleRate) / 1000));
  const theta = DETECTOR.theta;
  const confirm = ms(DETECTOR.confirmMs);
  const minCount = Math.round(confirm * DETECTOR.minFraction);
  const hold = ms(DETECTOR.holdMs);
  const out: Segment[] = [];
  let voiced = false;
  let cand = -1;
  let count = 0;
  let candLast = -1;
  let lastAbove = -1;
  let start = -1;
  for (let f = 0; f < samples.length; f++) {
    const a = Math.abs(samples[f]);
    if (!voiced) {
      if (a >= theta) {
        if (cand < 0) {
          cand = f;
          count = 0;
        }
        count++;
        candLast = f;
      }
      if (cand >= 0 && f - cand + 1 >= confirm) {
        if (count >= minCount) {
          voiced = true;
          lastAbove = candLast;
          start = cand;
        }
        cand = -1;
      }
      continue;
    }
    if (a >= theta) lastAbove = f;
    else if (f - lastAbove >= hold) {
      voiced = false;
      cand = -1;
      out.push({ start, end: lastAbove });
    }
  }
  if (voiced) out.push({ start, end: lastAbove });
  return out;
}

/** A 16-bit PCM WAV's channels as floats (−1…1) and its sample rate. */
export function decodeWav(bytes: Uint8Array): { sampleRate: number; channels: Float32Array[] } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (o: number) => String.fromCharCode(...bytes.subarray(o, o + 4));
  if (bytes.length < 12 || tag(0) !== "RIFF" || tag(8) !== "WAVE") throw new Error("not a WAV file");
  let off = 12;
  let fmt: { channels: number; sampleRate: number; bits: number } | null = null;
  while (off + 8 <= bytes.length) {
    const id = tag(off);
    const size = view.getUint32(off + 4, true);
    if (id === "fmt ") {
      fmt = {
        channels: view.getUint16(off + 10, true),
        sampleRate: view.getUint32(off + 12, true),
        bits: view.getUint16(off + 22, true),
      };
    } else if (id === "data") {
      if (!fmt || fmt.bits !== 16) throw new Error("only 16-bit PCM WAV is supported");
      const frames = Math.floor(Math.min(size, bytes.length - off - 8) / (2 * fmt.channels));
      const channels = Array.from({ length: fmt.channels }, () => new Float32Array(frames));
      for (let i = 0; i < frames; i++) {
        for (let c = 0; c < fmt.channels; c++) {
          channels[c][i] = view.getInt16(off + 8 + (i * fmt.channels + c) * 2, true) / 32768;
        }
      }
      return { sampleRate: fmt.sampleRate, channels };
    }
    off += 8 + size + (size % 2);
  }
  throw new Error("WAV file has no data chunk");
}

/** What a stored response turn says about itself (agent/report.ts Turn). */
interface StoredTurn {
  kind?: string;
  ok?: boolean;
  latency_ms?: number | null;
  run?: number;
  noisy?: boolean;
  caller_voiced_start_frame?: number;
  caller_voiced_end_frame?: number;
  agent_frame?: number;
}

/** Frames the caller's speech may differ by between the stored turn and the 16-bit recording. */
const FRAME_SLACK = 2;

/**
 * Re-derives the measured turns of one recording, in the order the caller spoke them. Each
 * turn's caller speech is found in the left channel as the next voiced segments spanning the
 * turn's stored voiced duration (so the alignment comes from the audio, not from the stored
 * frame numbers; a noisy turn, whose left channel carries the noise too, keeps its stored
 * frames shifted like the turn before it). A response turn's latency is the agent's first
 * voice onset (right channel) at or after the caller's start minus the caller's voiced end;
 * an interrupt turn's is the end of the agent's voiced segment that was on when the barge-in
 * began minus the barge-in's voiced start. Returns one latency (ms) or null per turn.
 */
export function rederiveTurns(
  turns: StoredTurn[],
  caller: Segment[],
  agent: Segment[],
  firstFrame: number,
  sampleRate: number,
): (number | null)[] {
  let next = 0;
  let shift: number | null = null;
  // Two turns can time from the same caller speech (an interrupt and the reply that follows
  // the barge-in): the second reuses the segments the first was matched to.
  const matched = new Map<string, { start: number; end: number }>();
  return turns.map((t) => {
    if (t.caller_voiced_start_frame === undefined || t.caller_voiced_end_frame === undefined) return null;
    const start = t.caller_voiced_start_frame - firstFrame;
    const end = t.caller_voiced_end_frame - firstFrame;
    let callerStart: number | null = null;
    let callerEnd: number | null = null;
    const same = matched.get(`${start}:${end}`);
    if (same) {
      callerStart = same.start;
      callerEnd = same.end;
    } else if (!t.noisy) {
      search: for (let i = next; i < caller.length; i++) {
        for (let j = i; j < caller.length; j++) {
          const d = caller[j].end - caller[i].start - (end - start);
          if (Math.abs(d) <= FRAME_SLACK) {
            callerStart = caller[i].start;
            callerEnd = caller[j].end;
            shift = start - callerStart;
            next = j + 1;
            break search;
          }
          if (d > FRAME_SLACK) break;
        }
      }
    } else if (shift !== null) {
      callerStart = start - shift;
      callerEnd = end - shift;
    }
    if (callerStart === null || callerEnd === null) return null;
    matched.set(`${start}:${end}`, { start: callerStart, end: callerEnd });
    let frames: number;
    if (t.kind === "interrupt") {
      const on = agent.filter((s) => s.start <= callerStart!).at(-1);
      if (!on) return null;
      frames = on.end - callerStart;
    } else {
      const onset = agent.find((s) => s.start >= callerStart!)?.start;
      if (onset === undefined) return null;
      frames = onset - callerEnd;
    }
    return Math.round((frames / sampleRate) * 1000 * 100) / 100;
  });
}

/**
 * Where two computations of the published figures differ, as `path (a vs b)`, or null when they
 * agree. Numbers agree within one step of the figures' rounding (0.01): a spread computed from
 * the rollups' sums and one computed by PostgreSQL from the rows can round to either side.
 */
export function figureDifference(a: unknown, b: unknown, path = ""): string | null {
  if (typeof a === "number" && typeof b === "number") {
    return Math.abs(a - b) <= NUMBER_TOLERANCE ? null : `${path || "."} (${a} vs ${b})`;
  }
  if (a && b && typeof a === "object" && typeof b === "object" && Array.isArray(a) === Array.isArray(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) {
      const d = figureDifference(
        (a as Record<string, unknown>)[k],
        (b as Record<string, unknown>)[k],
        `${path}.${k}`,
      );
      if (d !== null) return d;
    }
    return null;
  }
  return a === b ? null : `${path || "."} (${JSON.stringify(a)} vs ${JSON.stringify(b)})`;
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  for await (const p of stream) {
    parts.push(p);
    n += p.length;
  }
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const near = (a: number | null | undefined, b: number | null | undefined, tol = NUMBER_TOLERANCE) =>
  (a ?? null) === null ? (b ?? null) === null : (b ?? null) !== null && Math.abs(a! - b!) <= tol;

/**
 * Checks every board result (or, with `all`, every stored result) and the published figures.
 * Reads one result and its recordings at a time.
 */
export async function verifyBoards(
  sql: Sql,
  store: ArtifactStore | undefined,
  opts: { all?: boolean; resultIds?: number[] } = {},
): Promise<VerifyReport> {
  const report: VerifyReport = {
    results: 0,
    recordings: 0,
    turnsRederived: 0,
    maxTurnDiffMs: null,
    figuresAgree: true,
    mismatches: [],
  };
  const ids = await sql<{ id: number }[]>`
    SELECT id FROM eval_results e
    WHERE ${opts.all ? sql`true` : onBoardSql(sql)}
      ${opts.resultIds ? sql`AND id IN ${sql(opts.resultIds)}` : sql``}
    ORDER BY id`;
  for (const { id } of ids) {
    const [r] = await sql`
      SELECT id, job_id, report, report_sha256, turns,
             encode(sha256(convert_to(report::text, 'UTF8')), 'hex') AS report_hash_now,
             response_latency_median, response_latency_n, interrupt_latency_median, interrupt_latency_n
      FROM eval_results WHERE id = ${id}`;
    if (!r) continue;
    report.results++;
    const bad = (what: string) =>
      report.mismatches.push({ resultId: Number(r.id), jobId: Number(r.jobId), what });
    if (r.report !== null && r.reportSha256 !== r.reportHashNow) {
      bad("report: SHA-256 differs from its receipt");
    }
    const turns = (Array.isArray(r.turns) ? r.turns : []) as StoredTurn[];
    for (const kind of ["response", "interrupt"] as const) {
      const col = kind === "response" ? "responseLatency" : "interruptLatency";
      const stored = { median: r[`${col}Median`] as number | null, n: r[`${col}N`] as number };
      const fromTurns = summarize(
        turns.filter((t) => t.kind === kind && t.ok && typeof t.latency_ms === "number").map((t) =>
          t.latency_ms!
        ),
      );
      const m = (r.report?.metrics?.[`${kind}_latency`] ?? null) as
        | { median: number | null; n: number }
        | null;
      if (m && (!near(stored.median, m.median) || stored.n !== m.n)) {
        bad(
          `${kind}_latency: stored median/n ${stored.median}/${stored.n} differ from the report's ${m.median}/${m.n}`,
        );
      }
      // The daemon may drop turns' detail to fit a frame, never the turns themselves.
      if (turns.length > 0 && (!near(stored.median, fromTurns.median) || stored.n !== fromTurns.n)) {
        bad(
          `${kind}_latency: stored median/n ${stored.median}/${stored.n} do not follow from the turns ` +
            `(${fromTurns.median}/${fromTurns.n})`,
        );
      }
    }
    const artifacts = await sql`
      SELECT id, name, sha256, storage, storage_key FROM eval_artifacts
      WHERE job_id = ${r.jobId} AND kind = 'recording' ORDER BY id`;
    const runs = (Array.isArray(r.report?.runs) ? r.report.runs : []) as {
      run?: number;
      recording?: string | null;
      recording_first_frame?: number;
    }[];
    for (const a of artifacts) {
      if (!store) break;
      report.recordings++;
      const bytes = await readAll(
        store.read(sql, { id: a.id, storage: a.storage, storageKey: a.storageKey }),
      );
      if (createHash("sha256").update(bytes).digest("hex") !== a.sha256) {
        bad(`${a.name}: SHA-256 differs from its receipt`);
        continue;
      }
      const run = runs.find((x) => x.recording === a.name);
      if (!run || typeof run.recording_first_frame !== "number") continue;
      let wav;
      try {
        wav = decodeWav(bytes);
      } catch (err) {
        bad(`${a.name}: ${(err as Error).message}`);
        continue;
      }
      if (wav.channels.length < 2) {
        bad(`${a.name}: not a stereo recording`);
        continue;
      }
      const caller = voicedSegments(wav.channels[0], wav.sampleRate);
      const agent = voicedSegments(wav.channels[1], wav.sampleRate);
      const measured = turns
        .map((t, i) => ({ t, i }))
        .filter(({ t }) =>
          (t.kind === "response" || t.kind === "interrupt") && t.ok && typeof t.latency_ms === "number" &&
          t.run === run.run &&
          t.caller_voiced_start_frame !== undefined
        )
        .sort((a, b) => a.t.caller_voiced_start_frame! - b.t.caller_voiced_start_frame!);
      const derived = rederiveTurns(
        measured.map((m) => m.t),
        caller,
        agent,
        run.recording_first_frame,
        wav.sampleRate,
      );
      for (const [k, { t, i }] of measured.entries()) {
        const d = derived[k];
        if (d === null) {
          bad(`turn ${i + 1}: the recording ${a.name} does not show it`);
          continue;
        }
        report.turnsRederived++;
        const diff = Math.abs(d - t.latency_ms!);
        report.maxTurnDiffMs = Math.max(report.maxTurnDiffMs ?? 0, Math.round(diff * 100) / 100);
        if (diff > TOLERANCE_MS) {
          bad(`turn ${i + 1}: stored ${t.latency_ms} ms, re-derived from ${a.name} ${d} ms`);
        }
      }
    }
  }
  // The published figures equal a computation from scratch (every period the board offers
  // reads the same day rollups; the longest covers them all). Results stored a moment ago may
  // still wait in the roller's queue: they are folded first, as the next roller tick would.
  await rollUpResults(sql);
  const served = await leaderboard(sql, { days: 365 });
  const fresh = await leaderboard(sql, { days: 365, onRead: true });
  const difference = figureDifference(served, fresh);
  report.figuresAgree = difference === null;
  if (difference !== null) {
    report.mismatches.push({
      resultId: 0,
      jobId: 0,
      what: `leaderboard: the rollups differ from eval_results at ${difference}`,
    });
  }
  return report;
}
