import assert from "node:assert/strict";
import { completeJob } from "../lib/job_completer.ts";
import { claimJobs, createJob } from "../lib/queue.ts";
import { leaderboard, realtime, rebuildRollups, rollUpResults } from "../lib/metrics.ts";
import { SEEDED_PROVIDERS } from "../lib/seed.ts";
import { sampleReport } from "../bench/sim_agent.ts";
import { createTestDatabase } from "./_db.ts";
import { insertEvalPair, restoreResults, startOrchServer } from "./_orch.ts";

const db = await createTestDatabase();
const sql = db.sql;
Deno.test.afterAll(() => db.close());
const [agora, livekit] = SEEDED_PROVIDERS.map((p) => p.id);
const [{ id: tokenId }] = await sql`
  INSERT INTO eval_agent_tokens (name, region, token_hash, display_prefix)
  VALUES ('m', 'eu', ${"0".repeat(64)}, 'x') RETURNING id`;

async function result(pair: { workflowId: number; evalSetId: number }, region: string, latency: number) {
  const [agent] = await sql`
    INSERT INTO eval_agents (token_id, name, region) VALUES (${tokenId}, ${crypto.randomUUID()}, ${region})
    RETURNING id`;
  const job = await createJob(sql, { ...pair, region });
  await claimJobs(sql, region, [{ agentId: agent.id }]);
  const report = sampleReport(latency);
  const out = await completeJob(sql, job.id, agent.id, report);
  assert.ok(out.ok);
  return job.id;
}

const mainA = await insertEvalPair(sql, { mainline: true, providerId: agora });
const mainL = await insertEvalPair(sql, { mainline: true, providerId: livekit });
const privateish = await insertEvalPair(sql, { mainline: false, providerId: agora });
// The results every test below reads; a test that adds results removes them again.
for (
  const [pair, region, ms] of [
    [mainA, "eu", 500],
    [mainA, "eu", 700],
    [mainA, "us", 900],
    [mainL, "eu", 400],
    [mainL, "eu", 600],
    [privateish, "eu", 1],
  ] as const
) await result(pair, region, ms);
await rollUpResults(sql);

Deno.test(
  "only mainline results reach the rollups, and rollups equal aggregates computed on read",
  async () => {
    const fromRollups = await leaderboard(sql, { days: 1 });
    const onRead = await leaderboard(sql, { days: 1, onRead: true });
    assert.deepEqual(fromRollups, onRead);
    const eu = fromRollups.entries.filter((e) => e.region === "eu");
    // Each product type is a board of its own (ConvoAI first); with 6 turns each neither
    // reaches the minimum n, so both are listed, unranked (tests/boards_certainty_test.ts).
    assert.deepEqual(eu.map((e) => [e.providerName, e.productType, e.results, e.responseLatency.mean]), [
      ["Agora ConvoAI Engine", "convoai", 2, 600],
      ["LiveKit Agents", "rtc", 2, 500],
    ]);
    assert.deepEqual(eu.map((e) => [e.rank, e.enoughData, e.responseLatency.turns]), [[null, false, 6], [
      null,
      false,
      6,
    ]]);
    const agoraAll = fromRollups.providers.find((p) => p.providerId === agora)!;
    assert.equal(agoraAll.results, 3, "the non-mainline result is not counted");
    assert.equal(agoraAll.region, null);
    assert.equal(agoraAll.responseLatency.min, 500);
    assert.equal(agoraAll.responseLatency.max, 900);
    const regionOnly = await leaderboard(sql, { days: 1, region: "us" });
    assert.deepEqual(regionOnly.entries.map((e) => [e.providerId, e.region]), [[agora, "us"]]);
  },
);

Deno.test("realtime series match on-read aggregates for every bucket size and filter", async () => {
  const to = new Date(Date.now() + 60_000);
  const from = new Date(Date.now() - 3_600_000);
  for (const bucket of ["minute", "hour", "day"] as const) {
    for (const filter of [{}, { providerId: agora }, { region: "eu" }]) {
      const a = await realtime(sql, { from, to, bucket, ...filter });
      const b = await realtime(sql, { from, to, bucket, ...filter, onRead: true });
      assert.deepEqual(a, b, `${bucket} ${JSON.stringify(filter)}`);
      assert.ok(a.length > 0);
    }
  }
  const series = await realtime(sql, { from, to, bucket: "hour", providerId: livekit, region: "eu" });
  assert.equal(series.length, 1);
  assert.equal(series[0].providerName, "LiveKit Agents");
  assert.equal(series[0].points.reduce((n, p) => n + p.results, 0), 2);
});

Deno.test("rebuildRollups() reproduces the incrementally maintained rollups", async () => {
  const before =
    await sql`SELECT * FROM eval_rollups ORDER BY bucket_size, provider_id, region, method_set, bucket`;
  await rebuildRollups(sql);
  const after =
    await sql`SELECT * FROM eval_rollups ORDER BY bucket_size, provider_id, region, method_set, bucket`;
  assert.deepEqual([...after], [...before]);
});

Deno.test("public metric routes: 200 with the data, 400 naming the bad field", async () => {
  const server = await startOrchServer(sql);
  try {
    const lb = await server.app.request("/api/v1/metrics/leaderboard?days=7");
    assert.equal(lb.status, 200);
    assert.match(lb.headers.get("content-type") ?? "", /json/);
    assert.ok((await lb.json()).entries.length >= 2);
    const rt = await server.app.request(
      `/api/v1/metrics/realtime?from=${new Date(Date.now() - 7_200_000).toISOString()}&region=eu`,
    );
    assert.equal(rt.status, 200);
    const body = await rt.json();
    assert.equal(body.bucket, "minute");
    assert.ok(body.series.every((s: { region: string }) => s.region === "eu"));
    for (
      const [q, field] of [
        ["/leaderboard?days=0", "days"],
        ["/leaderboard?region=EU!", "region"],
        ["/realtime?from=yesterday", "from"],
        ["/realtime?providerId=nope", "providerId"],
        ["/realtime?bucket=week", "bucket"],
        [`/realtime?from=2020-01-01T00:00:00Z&bucket=minute`, "bucket"],
        [`/realtime?from=2030-01-01T00:00:00Z&to=2029-01-01T00:00:00Z`, "from"],
      ]
    ) {
      const res = await server.app.request(`/api/v1/metrics${q}`);
      assert.equal(res.status, 400, q);
      const err = await res.json();
      assert.equal(err.error.code, "invalid_input");
      assert.ok(err.error.message.startsWith(`${field}: `), `${q}: ${err.error.message}`);
    }
    assert.equal((await server.app.request("/api/v1/metrics/nothing")).status, 404);
  } finally {
    await server.stop();
  }
});

Deno.test("the public metrics stream pushes a new mainline result as a server-sent event", async () => {
  await using _restored = await restoreResults(sql);
  const server = await startOrchServer(sql);
  const ac = new AbortController();
  try {
    const res = await fetch(`${server.baseUrl}/api/v1/metrics/stream`, { signal: ac.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /text\/event-stream/);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    while (!text.includes("event: ready")) text += (await reader.read()).value ?? "";
    const jobId = await result(mainL, "eu", 432);
    await result(privateish, "eu", 1);
    while (!text.includes(`"jobId":${jobId}`)) text += (await reader.read()).value ?? "";
    const line = text.split("\n").find((l) => l.startsWith("data: ") && l.includes(`"jobId":${jobId}`))!;
    const event = JSON.parse(line.slice(6));
    assert.equal(event.providerId, livekit);
    assert.equal(event.region, "eu");
    assert.equal(event.responseLatency, 432);
    assert.ok(!text.includes('"responseLatency":1,'), "non-mainline results are not pushed");
  } finally {
    ac.abort();
    await server.stop();
  }
});
