// Rollups never drift (issue 13): after deleting a workflow, un-marking mainline, or any
// cascade that removes mainline results, the boards read from the rollups equal the same
// aggregates computed from eval_results, and a from-scratch rebuild changes nothing.
import assert from "node:assert/strict";
import { completeJob } from "../lib/job_completer.ts";
import { leaderboard, realtime, rebuildRollups, rollUpResults } from "../lib/metrics.ts";
import { claimJobs, createJob } from "../lib/queue.ts";
import { SEEDED_PROVIDERS } from "../lib/seed.ts";
import { sampleReport } from "../bench/sim_agent.ts";
import { createTestApp } from "./_app.ts";
import { apiKeyFor, jsonInit } from "./_auth.ts";
import { createTestDatabase } from "./_db.ts";
import { insertEvalPair } from "./_orch.ts";

const db = await createTestDatabase();
const sql = db.sql;
Deno.test.afterAll(() => db.close());
const { app } = await createTestApp(sql);
const [{ id: tokenId }] = await sql`
  INSERT INTO eval_agent_tokens (name, region, token_hash, display_prefix)
  VALUES ('drift', 'eu', ${"d".repeat(64)}, 'x') RETURNING id`;

type Pair = Awaited<ReturnType<typeof insertEvalPair>>;

async function result(pair: Pair, region: string, latency: number): Promise<void> {
  const [agent] = await sql`
    INSERT INTO eval_agents (token_id, name, region) VALUES (${tokenId}, ${crypto.randomUUID()}, ${region})
    RETURNING id`;
  const job = await createJob(sql, { ...pair, region });
  await claimJobs(sql, region, [{ agentId: agent.id }]);
  assert.ok((await completeJob(sql, job.id, agent.id, sampleReport(latency))).ok);
}

/**
 * The boards as served (from the rollups, as they are now: nothing folded here) equal the
 * from-scratch computation over eval_results, and rebuilding the rollups changes no row.
 * Returns the all-regions result count per provider.
 */
async function assertNoDrift(what: string): Promise<Map<string, number>> {
  const served = await leaderboard(sql, { days: 1 });
  assert.deepEqual(served, await leaderboard(sql, { days: 1, onRead: true }), `leaderboard after ${what}`);
  const to = new Date(Date.now() + 60_000);
  const from = new Date(Date.now() - 3_600_000);
  for (const bucket of ["minute", "hour", "day"] as const) {
    assert.deepEqual(
      await realtime(sql, { from, to, bucket }),
      await realtime(sql, { from, to, bucket, onRead: true }),
      `realtime (${bucket}) after ${what}`,
    );
  }
  const rows = async () => [
    ...await sql`SELECT * FROM eval_rollups ORDER BY bucket_size, provider_id, region, method_set, bucket`,
  ];
  const before = await rows();
  await rebuildRollups(sql);
  assert.deepEqual(await rows(), before, `rollup rows equal a rebuild after ${what}`);
  return new Map(served.providers.map((p) => [p.providerId, p.results]));
}

const [a, b] = SEEDED_PROVIDERS.map((p) => p.id);

Deno.test("deleting a workflow, an eval set or a project, and un-marking mainline, leave no drift", async () => {
  const pairs: Pair[] = [];
  for (let i = 0; i < 5; i++) {
    pairs.push(await insertEvalPair(sql, { mainline: true, providerId: i % 2 ? b : a }));
  }
  // Several results per pair in two regions, with distinct latencies so min/max must move.
  for (const [i, p] of pairs.entries()) {
    await result(p, "eu", 300 + 100 * i);
    await result(p, "us", 350 + 100 * i);
    await result(p, "eu", 900 + 100 * i);
  }
  await rollUpResults(sql);
  const start = await assertNoDrift("the first results");
  assert.equal(start.get(a), 9);
  assert.equal(start.get(b), 6);

  const key = async (p: Pair) => ({ authorization: `Bearer ${await apiKeyFor(sql, p.userId)}` });
  // 1. Deleting a workflow (through the API; the route's answer comes after the recompute).
  const del = await app.request(`/api/v1/workflows/${pairs[0].workflowId}`, {
    method: "DELETE",
    headers: await key(pairs[0]),
  });
  assert.equal(del.status, 200);
  let now = await assertNoDrift("deleting a workflow");
  assert.equal(now.get(a), 6, "its three results left the boards");

  // 2. Un-marking a workflow: its past results leave the boards.
  const unmark = await app.request(
    `/api/v1/workflows/${pairs[1].workflowId}`,
    jsonInit("PATCH", { isMainline: false }, { headers: await key(pairs[1]) }),
  );
  assert.equal(unmark.status, 200, await unmark.clone().text());
  now = await assertNoDrift("un-marking a workflow");
  assert.equal(now.get(b), 3);
  const [{ n }] = await sql`SELECT count(*)::int AS n FROM eval_results WHERE workflow_id = ${
    pairs[1].workflowId
  } AND is_mainline`;
  assert.equal(n, 0, "the un-marked workflow's results are no longer mainline");

  // 3. Un-marking an eval set, while one of its results still waits in the queue.
  await result(pairs[2], "eu", 5000);
  const unmarkSet = await app.request(
    `/api/v1/eval-sets/${pairs[2].evalSetId}`,
    jsonInit("PATCH", { isMainline: false }, { headers: await key(pairs[2]) }),
  );
  assert.equal(unmarkSet.status, 200, await unmarkSet.clone().text());
  now = await assertNoDrift("un-marking an eval set");
  assert.equal(now.get(a), 3);

  // 4. Deleting an eval set.
  const delSet = await app.request(`/api/v1/eval-sets/${pairs[3].evalSetId}`, {
    method: "DELETE",
    headers: await key(pairs[3]),
  });
  assert.equal(delSet.status, 200);
  now = await assertNoDrift("deleting an eval set");
  assert.equal(now.get(b), undefined, "no mainline result of b is left");

  // 5. A cascade no route recomputes (deleting the owner deletes their project): the
  //    orchestrator's roller (rollUpResults) picks up the marked days.
  await sql`DELETE FROM users WHERE id = ${pairs[4].userId}`;
  await rollUpResults(sql);
  now = await assertNoDrift("deleting a user and their project");
  assert.equal(now.get(a), undefined);
  assert.equal((await sql`SELECT count(*)::int AS n FROM eval_rollups`)[0].n, 0, "nothing left to show");
});
