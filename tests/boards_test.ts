// Who feeds the public boards (issue 13): only mainline runs and schedules of principals,
// fellows and the admin; everyone else's runs of public mainline items stay their own.
import assert from "node:assert/strict";
import { completeJob } from "../lib/job_completer.ts";
import { leaderboard, rollUpResults } from "../lib/metrics.ts";
import { claimJobs } from "../lib/queue.ts";
import { createSchedule, runScheduleNow } from "../lib/schedules.ts";
import { SEEDED_PROVIDERS } from "../lib/seed.ts";
import { sampleReport } from "../bench/sim_agent.ts";
import { createTestApp } from "./_app.ts";
import { apiKeyFor, createUser, jsonInit, withApiKey } from "./_auth.ts";
import { createTestDatabase } from "./_db.ts";
import { insertEvalPair } from "./_orch.ts";

const db = await createTestDatabase();
const sql = db.sql;
Deno.test.afterAll(() => db.close());
const { app } = await createTestApp(sql);
const REGION = "boards";
const [{ id: tokenId }] = await sql`
  INSERT INTO eval_agent_tokens (name, region, token_hash, display_prefix)
  VALUES ('boards', ${REGION}, ${"b".repeat(64)}, 'x') RETURNING id`;

/** Claims job `jobId` with a fresh agent and stores a result for it; returns the result row. */
async function finish(jobId: number, latency = 700) {
  const [agent] = await sql`
    INSERT INTO eval_agents (token_id, name, region) VALUES (${tokenId}, ${crypto.randomUUID()}, ${REGION})
    RETURNING id`;
  const claimed = await claimJobs(sql, REGION, [{ agentId: agent.id }]);
  assert.equal(claimed[0]?.message.jobId, jobId, "the job under test is the one claimed");
  const out = await completeJob(sql, jobId, agent.id, sampleReport(latency));
  assert.ok(out.ok);
  const [row] = await sql`SELECT id, is_mainline FROM eval_results WHERE job_id = ${jobId}`;
  return row as { id: number; isMainline: boolean };
}

/** The public board's result count per provider, after folding every queued result. */
async function board(): Promise<Map<string, number>> {
  await rollUpResults(sql);
  const lb = await leaderboard(sql, { days: 1 });
  assert.deepEqual(lb, await leaderboard(sql, { days: 1, onRead: true }), "rollups equal on-read aggregates");
  return new Map(lb.providers.map((p) => [p.providerId, p.results]));
}

const provider = SEEDED_PROVIDERS[1].id;
// A principal's public mainline pair (insertEvalPair makes the owner a principal).
const pair = await insertEvalPair(sql, { mainline: true, providerId: provider });

async function runVia(headers: Record<string, string>): Promise<number> {
  const res = await app.request(
    `/api/v1/workflows/${pair.workflowId}/run`,
    jsonInit("POST", { evalSetId: pair.evalSetId, region: REGION }, { headers }),
  );
  assert.equal(res.status, 201, await res.clone().text());
  return (await res.json()).id;
}

Deno.test("a basic user's run or schedule of a public mainline pair leaves the public boards unchanged", async () => {
  const before = await board();
  const basic = await withApiKey(sql, { role: "basic" });
  const run = await finish(await runVia(basic.headers));
  assert.equal(run.isMainline, false);
  // The same through a schedule the basic user owns.
  const sched = await createSchedule(sql, {
    workflowId: pair.workflowId,
    evalSetId: pair.evalSetId,
    region: REGION,
    scheduleType: "recurring",
    cronExpression: "0 0 1 1 *",
    timezone: "UTC",
    createdBy: basic.id,
  });
  const scheduled = await finish((await runScheduleNow(sql, sched.id, basic.id))!.id);
  assert.equal(scheduled.isMainline, false);
  // A premium user is no curator either.
  const premium = await withApiKey(sql, { role: "premium" });
  assert.equal((await finish(await runVia(premium.headers))).isMainline, false);
  assert.deepEqual(await board(), before);

  // The result is the runner's own: they see it, other users do not.
  const own = await app.request(`/api/v1/results/${run.id}`, { headers: basic.headers });
  assert.equal(own.status, 200);
  assert.equal((await own.json()).isMainline, false);
  const other = await withApiKey(sql, { role: "basic" });
  assert.equal((await app.request(`/api/v1/results/${run.id}`, { headers: other.headers })).status, 404);
  const publicList = await (await app.request("/api/v1/results?scope=mainline", { headers: other.headers }))
    .json();
  assert.ok(Array.isArray(publicList.results), JSON.stringify(publicList));
  assert.ok(
    publicList.results.every((r: { id: number }) => r.id !== run.id),
    "not among the public mainline results",
  );
});

Deno.test("a principal's mainline run and schedule, and the admin's run, change the public boards", async () => {
  const before = (await board()).get(provider) ?? 0;
  const principal = await withApiKey(sql, { role: "principal" });
  assert.equal((await finish(await runVia(principal.headers), 500)).isMainline, true);
  assert.equal((await board()).get(provider), before + 1);

  const sched = await createSchedule(sql, {
    workflowId: pair.workflowId,
    evalSetId: pair.evalSetId,
    region: REGION,
    scheduleType: "recurring",
    cronExpression: "0 0 1 1 *",
    timezone: "UTC",
    createdBy: pair.userId,
  });
  assert.equal((await finish((await runScheduleNow(sql, sched.id, pair.userId))!.id, 600)).isMainline, true);
  assert.equal((await board()).get(provider), before + 2);

  const fellow = await withApiKey(sql, { role: "fellow" });
  assert.equal((await finish(await runVia(fellow.headers))).isMainline, true);
  // The admin (one per install) counts whatever its role.
  const [admin] = await sql`SELECT id FROM users WHERE is_admin`;
  const adminHeaders = admin
    ? { authorization: `Bearer ${await apiKeyFor(sql, admin.id)}` }
    : (await withApiKey(sql, { role: "basic", isAdmin: true })).headers;
  assert.equal((await finish(await runVia(adminHeaders))).isMainline, true, "the admin's run counts");
  assert.equal((await board()).get(provider), before + 4);
});

Deno.test("a curator's job on a basic user's schedule, or a job whose owner is gone, does not count", async () => {
  const before = await board();
  const basic = await createUser(sql, { role: "basic" });
  const sched = await createSchedule(sql, {
    workflowId: pair.workflowId,
    evalSetId: pair.evalSetId,
    region: REGION,
    scheduleType: "recurring",
    cronExpression: "0 0 1 1 *",
    timezone: "UTC",
    createdBy: basic.id,
  });
  // Run now by a principal, but the schedule belongs to a basic user.
  assert.equal((await finish((await runScheduleNow(sql, sched.id, pair.userId))!.id)).isMainline, false);
  // A job without an owner (its creator was deleted).
  const [job] = await sql`
    INSERT INTO eval_jobs (workflow_id, eval_set_id, region) VALUES (${pair.workflowId}, ${pair.evalSetId}, ${REGION})
    RETURNING id`;
  assert.equal((await finish(job.id)).isMainline, false);
  // Un-marked items: a principal's run of a non-mainline pair stays private.
  const plain = await insertEvalPair(sql, { mainline: false, providerId: provider });
  await sql`UPDATE users SET role = 'principal' WHERE id = ${plain.userId}`;
  const [own] = await sql`
    INSERT INTO eval_jobs (workflow_id, eval_set_id, region, created_by)
    VALUES (${plain.workflowId}, ${plain.evalSetId}, ${REGION}, ${plain.userId}) RETURNING id`;
  assert.equal((await finish(own.id)).isMainline, false);
  assert.deepEqual(await board(), before);
});
