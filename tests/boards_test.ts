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
import { apiKeyFor, createUser, jsonInit, sessionFor, withApiKey } from "./_auth.ts";
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

/** Creates a workflow (product typed by name) and an eval set through the API; returns their ids. */
async function itemsVia(
  user: { headers: Record<string, string>; defaultProjectId: number },
  product: string,
  flags: { visibility?: "public" | "private"; isMainline?: boolean },
): Promise<{ workflowId: number; evalSetId: number; providerId: string }> {
  const w = await app.request(
    "/api/v1/workflows",
    jsonInit("POST", {
      projectId: user.defaultProjectId,
      name: `wf ${product}`,
      config: { url: "http://127.0.0.1/agent", steps: [] },
      provider: { name: product },
      ...flags,
    }, { headers: user.headers }),
  );
  assert.equal(w.status, 201, await w.clone().text());
  const e = await app.request(
    "/api/v1/eval-sets",
    jsonInit("POST", {
      projectId: user.defaultProjectId,
      name: `set ${product}`,
      config: { steps: [{ action: "wait_for_voice" }] },
      ...flags,
    }, { headers: user.headers }),
  );
  assert.equal(e.status, 201, await e.clone().text());
  const wf = await w.json();
  return { workflowId: wf.id, evalSetId: (await e.json()).id, providerId: wf.provider.id };
}

async function runPair(headers: Record<string, string>, p: { workflowId: number; evalSetId: number }) {
  const res = await app.request(
    `/api/v1/workflows/${p.workflowId}/run`,
    jsonInit("POST", { evalSetId: p.evalSetId, region: REGION }, { headers }),
  );
  assert.equal(res.status, 201, await res.clone().text());
  return await finish((await res.json()).id);
}

/** Every public surface that lists providers, as anonymous text. */
async function publicText(): Promise<string> {
  await rollUpResults(sql);
  const from = new Date(Date.now() - 3_600_000).toISOString();
  const pages = [
    "/dive",
    "/api/v1/providers",
    "/api/v1/metrics/leaderboard?days=7",
    `/api/v1/metrics/realtime?from=${from}`,
  ];
  pages.push("/leaderboard", "/realtime?range=1h", "/run-your-own");
  const texts: string[] = [];
  for (const path of pages) {
    const res = await app.request(path);
    assert.equal(res.status, 200, path);
    texts.push(await res.text());
  }
  return texts.join("\n");
}

Deno.test("a product a user typed is private to them until it appears in a mainline result", async () => {
  const secret = `Secret Product ${crypto.randomUUID().slice(0, 8)}`;
  const premium = await withApiKey(sql, { role: "premium" });
  const priv = await itemsVia(premium, secret, { visibility: "private" });
  assert.equal((await runPair(premium.headers, priv)).isMainline, false);
  // A basic user's public workflow on the same public mainline eval set: still not public.
  const basicSecret = `Basic Product ${crypto.randomUUID().slice(0, 8)}`;
  const basic = await withApiKey(sql, { role: "basic" });
  const pub = await itemsVia(basic, basicSecret, {});
  assert.equal((await runPair(basic.headers, { ...pub, evalSetId: pair.evalSetId })).isMainline, false);

  const text = await publicText();
  assert.ok(text.includes(SEEDED_PROVIDERS[0].name), "the surfaces list the seeded providers");
  for (const name of [secret, basicSecret]) assert.ok(!text.includes(name), `${name} is nowhere public`);
  for (const id of [priv.providerId, pub.providerId]) {
    assert.equal((await app.request(`/leaderboard/provider/${id}`)).status, 404);
  }
  // Another signed-in user does not see it either; its owner does (API and /run-your-own).
  const other = await withApiKey(sql, { role: "principal" });
  const seen = await (await app.request("/api/v1/providers", { headers: other.headers })).text();
  assert.ok(!seen.includes(secret) && !seen.includes(basicSecret));
  const own = await (await app.request("/api/v1/providers", { headers: premium.headers })).json();
  assert.ok(
    own.providers.some((p: { id: string; name: string }) => p.id === priv.providerId && p.name === secret),
  );
  assert.ok(
    (await (await app.request("/run-your-own", {
      headers: { cookie: (await sessionFor(sql, premium.id)).cookie },
    })).text()).includes(secret),
  );
  // Nobody else can pick it by id for a workflow of their own.
  const steal = await app.request(
    "/api/v1/workflows",
    jsonInit("POST", {
      projectId: other.defaultProjectId,
      name: "steal",
      config: { url: "http://127.0.0.1/agent", steps: [] },
      provider: { id: priv.providerId },
    }, { headers: other.headers }),
  );
  assert.equal(steal.status, 400);
  assert.match((await steal.json()).error.message, /^provider\.id: /);
});

Deno.test("a principal's new product becomes public with its first mainline result", async () => {
  const launch = `Launch Product ${crypto.randomUUID().slice(0, 8)}`;
  const principal = await withApiKey(sql, { role: "principal" });
  const items = await itemsVia(principal, launch, { isMainline: true });
  assert.ok(!(await publicText()).includes(launch), "no result yet: not public");
  assert.equal((await runPair(principal.headers, items)).isMainline, true);
  const text = await publicText();
  for (const path of ["/dive", "/api/v1/providers", "/leaderboard"]) {
    assert.ok((await (await app.request(path)).text()).includes(launch), path);
  }
  assert.ok(text.includes(launch));
  const page = await app.request(`/leaderboard/provider/${items.providerId}`);
  assert.equal(page.status, 200);
  assert.ok((await page.text()).includes(launch));
});
