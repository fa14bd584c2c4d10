// Receipts on a result (issue 13): the result API, the console's result view and the public
// provider page carry the SHA-256 of the stored report (as `deno task verify` recomputes it)
// and of each recording (as downloaded), so a reader can tie a number to its evidence.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { encodeWav } from "../agent/audio.ts";
import type { RunReport } from "../agent/protocol.ts";
import { completeJob } from "../lib/job_completer.ts";
import { rollUpResults } from "../lib/metrics.ts";
import { claimJobs, createJob } from "../lib/queue.ts";
import { createTestApp } from "./_app.ts";
import { sessionFor } from "./_auth.ts";
import { createTestDatabase } from "./_db.ts";
import { insertEvalPair } from "./_orch.ts";

const db = await createTestDatabase();
const sql = db.sql;
Deno.test.afterAll(() => db.close());
const { app } = await createTestApp(sql);
const REGION = "receipts";
const RATE = 16_000;

const hex = (bytes: Uint8Array | string) => createHash("sha256").update(bytes).digest("hex");

// A principal's mainline result (so it is counted on the boards) with one stereo recording,
// stored as the daemon would.
const [{ id: providerId }] = await sql`
  INSERT INTO providers (name, sku, curated) VALUES ('Receipt Co', 0, true) RETURNING id`;
const pair = await insertEvalPair(sql, { mainline: true, providerId });
const [{ id: tokenId }] = await sql`
  INSERT INTO eval_agent_tokens (name, region, token_hash, display_prefix)
  VALUES ('receipts', ${REGION}, ${"e".repeat(64)}, 'x') RETURNING id`;
const [agent] = await sql`
  INSERT INTO eval_agents (token_id, name, region) VALUES (${tokenId}, 'receipts', ${REGION}) RETURNING id`;
const job = await createJob(sql, { ...pair, region: REGION });
await claimJobs(sql, REGION, [{ agentId: agent.id }]);
const report = {
  metrics: {
    response_latency: { median: 412.5, sd: 0, p90: 412.5, n: 1 },
    interrupt_latency: { median: null, sd: null, p90: null, n: 0 },
    network_resilience: null,
    noise_reduction: null,
    naturalness: null,
  },
  turns: [{ kind: "response", latency_ms: 412.5, ok: true, run: 1, file: "suite.yaml", step: 1 }],
  methods: { response_latency: "vox-audioclock-response/1" },
  runs: [{ run: 1, recording: "recording-1.wav", recording_first_frame: 0, sample_rate: RATE }],
} as unknown as RunReport;
const out = await completeJob(sql, job.id, agent.id, report);
assert.ok(out.ok);
const resultId = out.resultId;
const pcm = new Uint8Array(RATE * 4).map((_, i) => (i * 37) % 251);
const wav = encodeWav(pcm, RATE, 2);
await sql`
  INSERT INTO eval_artifacts (job_id, kind, name, content_type, size_bytes, sha256, data, storage)
  VALUES (${job.id}, 'recording', 'recording-1.wav', 'audio/wav', ${wav.length}, ${
  hex(wav)
}, ${wav}, 'inline')`;
await rollUpResults(sql);
const { cookie } = await sessionFor(sql, pair.userId);
const headers = { cookie };

Deno.test("GET /api/v1/results/{id} carries reportSha256, the SHA-256 of the stored report's text", async () => {
  const res = await app.request(`/api/v1/results/${resultId}`, { headers });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /application\/json/);
  const body = await res.json();
  // lib/verify.ts: encode(sha256(convert_to(report::text, 'UTF8')), 'hex').
  const [{ text }] = await sql`SELECT report::text AS text FROM eval_results WHERE id = ${resultId}`;
  assert.equal(body.reportSha256, hex(new TextEncoder().encode(text)));
  assert.deepEqual(body.artifacts.map((a: { name: string; sha256: string }) => [a.name, a.sha256]), [
    ["recording-1.wav", hex(wav)],
  ]);

  const openapi = await (await app.request("/openapi.json")).json();
  const doc = JSON.stringify(openapi.paths["/api/v1/results/{id}"].get);
  assert.match(doc, /"reportSha256"/);
});

Deno.test("the result page shows both receipts without JavaScript; the downloaded WAV hashes to the shown one", async () => {
  const res = await app.request(`/console/jobs/${job.id}`, { headers });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /text\/html/);
  const html = await res.text();
  assert.match(html, />Receipts</);
  const shown = (name: string) => html.match(new RegExp(`data-receipt="${name}">([0-9a-f]{64})<`))?.[1];
  const [{ reportSha256 }] = await sql`SELECT report_sha256 FROM eval_results WHERE id = ${resultId}`;
  assert.equal(shown("report"), reportSha256);
  assert.match(html, /sha256sum recording-1\.wav/);
  assert.match(html, /deno task verify/);

  const download = await app.request(`/api/v1/results/${resultId}/artifacts/recording-1.wav`, { headers });
  assert.equal(download.status, 200);
  assert.equal(download.headers.get("content-type"), "audio/wav");
  const bytes = new Uint8Array(await download.arrayBuffer());
  assert.equal(shown("recording-1\\.wav"), hex(bytes));
});

Deno.test("the public provider page lists the counted result's receipts", async () => {
  const res = await app.request(`/leaderboard/provider/${providerId}?days=1`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /text\/html/);
  const html = await res.text();
  const item = html.match(new RegExp(`<li data-result="${resultId}">(.*?)</li>`, "s"))?.[1] ?? "";
  const [{ reportSha256 }] = await sql`SELECT report_sha256 FROM eval_results WHERE id = ${resultId}`;
  assert.match(item, new RegExp(`data-receipt="report">${reportSha256}<`));
  assert.match(item, new RegExp(`data-receipt="recording-1\\.wav">${hex(wav)}<`));

  // The page's receipts are the receipts API's.
  const api = await (await app.request(`/api/v1/metrics/receipts?providerId=${providerId}&days=1`)).json();
  assert.deepEqual(
    api.results.map((r: Record<string, unknown>) => [r.resultId, r.reportSha256, r.recordings]),
    [[resultId, reportSha256, [{ name: "recording-1.wav", sha256: hex(wav), sizeBytes: wav.length }]]],
  );
});
