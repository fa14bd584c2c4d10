// Receipts and re-derivation (issue 13): every board number ties to its results' report and
// recordings' SHA-256, and `deno task verify` re-derives each turn's latency from the stereo
// recording with the meter's detector. A clean database verifies with zero mismatches;
// altering one stored latency, one turn, or one recording's bytes is reported for exactly
// that result.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import type { RunReport } from "../agent/protocol.ts";
import { encodeWav } from "../agent/audio.ts";
import { PostgresArtifactStore } from "../lib/artifact_store.ts";
import { completeJob } from "../lib/job_completer.ts";
import { rollUpResults } from "../lib/metrics.ts";
import { claimJobs, createJob } from "../lib/queue.ts";
import { decodeWav, figureDifference, verifyBoards, voicedSegments } from "../lib/verify.ts";
import { createTestApp } from "./_app.ts";
import { createTestDatabase, verifyTask } from "./_db.ts";
import { insertEvalPair } from "./_orch.ts";

const db = await createTestDatabase();
const sql = db.sql;
Deno.test.afterAll(() => db.close());
const { app } = await createTestApp(sql);
const store = new PostgresArtifactStore();
const REGION = "verify";
const RATE = 16_000;
const FIRST = 1000;
const [{ id: tokenId }] = await sql`
  INSERT INTO eval_agent_tokens (name, region, token_hash, display_prefix)
  VALUES ('verify', ${REGION}, ${"f".repeat(64)}, 'x') RETURNING id`;
const [{ id: providerId }] = await sql`
  INSERT INTO providers (name, sku, curated) VALUES ('Receipt Co', 0, true) RETURNING id`;
const pair = await insertEvalPair(sql, { mainline: true, providerId });

/**
 * A stereo call: caller (left) and agent (right) speech as ±0.3 square waves, so every
 * voiced sample is above the detector's threshold and the true frames are known exactly.
 * Turns: caller [start, end) then the agent after `gap` ms.
 */
function call(
  turns: {
    start: number;
    end: number;
    gapMs: number;
    agentMs: number;
    bargeIn?: { afterMs: number; stopMs: number };
  }[],
  length: number,
) {
  const pcm = new Uint8Array(length * 4);
  const v = new DataView(pcm.buffer);
  const put = (ch: number, from: number, to: number) => {
    for (let i = from; i < to; i++) v.setInt16(i * 4 + ch * 2, i % 2 ? 9830 : -9830, true);
  };
  const stored = [];
  const interrupts: Record<string, unknown>[] = [];
  for (const t of turns) {
    put(0, t.start, t.end);
    const onset = t.end - 1 + Math.round((t.gapMs * RATE) / 1000);
    const ms = (v: number) => Math.round((v * RATE) / 1000);
    const barge = t.bargeIn ? onset + ms(t.bargeIn.afterMs) : null;
    // A barge-in cuts the agent's reply short: its last voiced sample is stopMs after the barge-in.
    put(1, onset, barge !== null ? barge + ms(t.bargeIn!.stopMs) : onset + ms(t.agentMs));
    if (barge !== null) {
      put(0, barge, barge + ms(300));
      interrupts.push({
        kind: "interrupt" as const,
        latency_ms: Math.round(((ms(t.bargeIn!.stopMs) - 1) / RATE) * 1000 * 100) / 100,
        ok: true,
        run: 1,
        file: "suite.yaml",
        step: 10,
        caller_voiced_start_frame: FIRST + barge,
        caller_voiced_end_frame: FIRST + barge + ms(300) - 1,
        agent_frame: FIRST + barge + ms(t.bargeIn!.stopMs) - 1,
        sample_rate: RATE,
      });
    }
    stored.push({
      kind: "response" as const,
      latency_ms: t.gapMs,
      ok: true,
      run: 1,
      file: "suite.yaml",
      step: stored.length + 1,
      caller_voiced_start_frame: FIRST + t.start,
      caller_voiced_end_frame: FIRST + t.end - 1,
      agent_frame: FIRST + onset,
      sample_rate: RATE,
    });
  }
  return { wav: encodeWav(pcm, RATE, 2), turns: [...stored, ...interrupts] };
}

/** Stores a board result with its recording, as the daemon would; returns its id. */
async function stored(gaps: [number, number]): Promise<number> {
  const { wav, turns } = call([
    { start: 8000, end: 24000, gapMs: gaps[0], agentMs: 600 },
    { start: 44800, end: 52800, gapMs: gaps[1], agentMs: 500, bargeIn: { afterMs: 200, stopMs: 250 } },
  ], 80_000);
  const sorted = [...gaps].sort((a, b) => a - b);
  const report = {
    metrics: {
      response_latency: { median: (sorted[0] + sorted[1]) / 2, sd: 0, p90: sorted[1], n: 2 },
      interrupt_latency: { median: 249.94, sd: 0, p90: 249.94, n: 1 },
      network_resilience: null,
      noise_reduction: null,
      naturalness: null,
    },
    turns,
    methods: { response_latency: "vox-audioclock-response/1" },
    runs: [{ run: 1, recording: "recording-1.wav", recording_first_frame: FIRST, sample_rate: RATE }],
  } as unknown as RunReport;
  const [agent] = await sql`
    INSERT INTO eval_agents (token_id, name, region) VALUES (${tokenId}, ${crypto.randomUUID()}, ${REGION})
    RETURNING id`;
  const job = await createJob(sql, { ...pair, region: REGION });
  await claimJobs(sql, REGION, [{ agentId: agent.id }]);
  const out = await completeJob(sql, job.id, agent.id, report);
  assert.ok(out.ok);
  await sql`
    INSERT INTO eval_artifacts (job_id, kind, name, content_type, size_bytes, sha256, data, storage)
    VALUES (${job.id}, 'recording', 'recording-1.wav', 'audio/wav', ${wav.length},
            ${createHash("sha256").update(wav).digest("hex")}, ${wav}, 'inline')`;
  return out.ok ? out.resultId : 0;
}

const r1 = await stored([250, 400]);
const r2 = await stored([830.5, 912.25]);
await rollUpResults(sql);

const flagged = (m: { resultId: number }[]) => [...new Set(m.map((x) => x.resultId))].sort((a, b) => a - b);

Deno.test("the detector re-finds the synthetic call's segments exactly", () => {
  const { wav } = call([{ start: 8000, end: 24000, gapMs: 250, agentMs: 600 }], 40_000);
  const { sampleRate, channels } = decodeWav(wav);
  assert.equal(sampleRate, RATE);
  assert.deepEqual(voicedSegments(channels[0], RATE), [{ start: 8000, end: 23999 }]);
  assert.deepEqual(voicedSegments(channels[1], RATE), [{ start: 27999, end: 27999 + 9599 }]);
});

Deno.test("figureDifference(): one rounding step agrees; a real difference is named with its path", () => {
  // The demo's two results on a fresh install: sd 0.58 from the rollups' sums, 0.59 from stddev_pop.
  const served = { providers: [{ responseLatency: { mean: 916.83, sd: 0.58, n: 2 } }] };
  const fresh = { providers: [{ responseLatency: { mean: 916.83, sd: 0.59, n: 2 } }] };
  assert.equal(figureDifference(served, fresh), null);
  const moved = { providers: [{ responseLatency: { mean: 921.83, sd: 0.58, n: 2 } }] };
  assert.equal(figureDifference(moved, fresh), ".providers.0.responseLatency.mean (921.83 vs 916.83)");
  assert.equal(figureDifference({ rank: null }, { rank: 1 }), ".rank (null vs 1)");
  assert.equal(figureDifference({ ids: [1, 2] }, { ids: [1] }), ".ids.1 (2 vs undefined)");
  assert.equal(figureDifference({ name: "a" }, { name: "b" }), '.name ("a" vs "b")');
});

Deno.test("a clean database verifies with zero mismatches; receipts carry the SHA-256", async () => {
  const report = await verifyBoards(sql, store);
  assert.deepEqual(report.mismatches, []);
  assert.equal(report.results, 2);
  assert.equal(report.recordings, 2);
  assert.equal(report.turnsRederived, 6, "two replies and a barge-in per result");
  assert.equal(report.maxTurnDiffMs, 0);
  assert.ok(report.figuresAgree);

  const res = await app.request(`/api/v1/metrics/receipts?providerId=${providerId}&days=1`);
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.deepEqual(body.results.map((r: { resultId: number }) => r.resultId), [r1, r2]);
  const [a] =
    await sql`SELECT a.sha256 FROM eval_artifacts a JOIN eval_results r USING (job_id) WHERE r.id = ${r1}`;
  assert.equal(body.results[0].recordings[0].sha256, a.sha256);
  assert.match(body.results[0].reportSha256, /^[0-9a-f]{64}$/);
  // The figure is the mean of the receipts' medians.
  const medians = body.results.map((r: { responseLatency: { median: number } }) => r.responseLatency.median);
  assert.equal(body.figure.responseLatencyMean, Math.round((medians[0] + medians[1]) / 2 * 100) / 100);
  assert.equal((await app.request(`/api/v1/metrics/receipts?providerId=zzzzzzzzzzzz`)).status, 404);
});

Deno.test("altering one stored latency, one turn or one recording is reported for exactly that result", async () => {
  // 1. The stored per-job median (and so the published figure).
  await sql`UPDATE eval_results SET response_latency_median = 700 WHERE id = ${r2}`;
  let report = await verifyBoards(sql, store);
  assert.deepEqual(flagged(report.mismatches.filter((m) => m.resultId !== 0)), [r2]);
  assert.ok(report.mismatches.some((m) => m.resultId === r2 && /response_latency/.test(m.what)));
  await sql`UPDATE eval_results SET response_latency_median = ${(830.5 + 912.25) / 2} WHERE id = ${r2}`;
  assert.deepEqual((await verifyBoards(sql, store)).mismatches, []);

  // 2. One turn's latency inside the stored turns (a page that lied about its measurement).
  await sql`UPDATE eval_results SET turns = jsonb_set(turns, '{0,latency_ms}', '100') WHERE id = ${r1}`;
  report = await verifyBoards(sql, store);
  assert.deepEqual(flagged(report.mismatches), [r1]);
  assert.ok(
    report.mismatches.some((m) =>
      /turn 1: stored 100 ms, re-derived from recording-1.wav 250 ms/.test(m.what)
    ),
  );
  await sql`UPDATE eval_results SET turns = jsonb_set(turns, '{0,latency_ms}', '250') WHERE id = ${r1}`;

  // 3. The recording's bytes: the receipt no longer matches.
  const [art] = await sql`
    SELECT a.id, a.data FROM eval_artifacts a JOIN eval_results r USING (job_id) WHERE r.id = ${r2}`;
  const tampered = new Uint8Array(art.data);
  tampered[44 + 4 * 30_000 + 2] ^= 0x40;
  await sql`UPDATE eval_artifacts SET data = ${tampered} WHERE id = ${art.id}`;
  report = await verifyBoards(sql, store);
  assert.deepEqual(flagged(report.mismatches), [r2]);
  assert.match(report.mismatches[0].what, /recording-1\.wav: SHA-256 differs/);

  // The task reports the same and exits 1.
  const out = await verifyTask(db.url);
  assert.equal(out.code, 1, out.text);
  assert.match(out.text, new RegExp(`MISMATCH result ${r2} .*recording-1\\.wav: SHA-256 differs`));
  assert.doesNotMatch(out.text, new RegExp(`MISMATCH result ${r1} `));

  await sql`UPDATE eval_artifacts SET data = ${art.data} WHERE id = ${art.id}`;
  const clean = await verifyTask(db.url);
  assert.equal(clean.code, 0, clean.text);
  assert.match(clean.text, /0 mismatches/);
});
