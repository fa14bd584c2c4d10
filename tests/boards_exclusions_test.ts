// What the boards leave out and who may steer them (issue 13): an administrator's exclusion
// with a reason takes a result off the boards (audited, shown on the provider page, rollups
// exact), discards are counted per reason, and the three holes noticed last session are shut:
// provider-name squatting, a non-curator changing a mainline item's config, a deactivated
// principal's schedule feeding the boards.
import assert from "node:assert/strict";
import type { RunReport } from "../agent/protocol.ts";
import { completeJob } from "../lib/job_completer.ts";
import { leaderboard, rebuildRollups, rollUpResults } from "../lib/metrics.ts";
import { ensureProvider, listProviders } from "../lib/providers.ts";
import { claimJobs, createJob } from "../lib/queue.ts";
import { createSchedule, runScheduleNow } from "../lib/schedules.ts";
import { createTestApp } from "./_app.ts";
import { apiKeyFor, createUser, jsonInit, sessionFor } from "./_auth.ts";
import { createTestDatabase } from "./_db.ts";
import { insertEvalPair } from "./_orch.ts";

const db = await createTestDatabase();
const sql = db.sql;
Deno.test.afterAll(() => db.close());
const { app } = await createTestApp(sql);
const REGION = "excl";
const [{ id: tokenId }] = await sql`
  INSERT INTO eval_agent_tokens (name, region, token_hash, display_prefix)
  VALUES ('excl', ${REGION}, ${"e".repeat(64)}, 'x') RETURNING id`;
const admin = await createUser(sql, { isAdmin: true });
const adminBrowser = {
  cookie: (await sessionFor(sql, admin.id)).cookie,
  origin: "http://localhost",
  "sec-fetch-site": "same-origin",
};
const [{ id: providerId }] = await sql`
  INSERT INTO providers (name, sku, curated) VALUES ('Excluded Co', 0, true) RETURNING id`;
const pair = await insertEvalPair(sql, { mainline: true, providerId });

function report(median: number): RunReport {
  return {
    metrics: {
      response_latency: { median, sd: 5, p90: median + 10, n: 2 },
      interrupt_latency: { median: null, sd: null, p90: null, n: 0 },
      network_resilience: null,
      noise_reduction: null,
      naturalness: null,
    },
    turns: [
      { kind: "response", latency_ms: median, ok: true },
      { kind: "response", latency_ms: median, ok: true },
      { kind: "response", latency_ms: null, ok: false, note: "no reply" },
      {
        kind: "response",
        latency_ms: -40,
        ok: false,
        note: "the agent started talking before the caller had finished",
      },
      {
        kind: "interrupt",
        latency_ms: 512,
        ok: false,
        unreliable: true,
        note: "unreliable: the page's thread ran 180 ms late while this turn was measured (host overloaded)",
      },
    ],
    methods: { response_latency: "vox-audioclock-response/1" },
  };
}

async function agent(): Promise<number> {
  const [a] = await sql`
    INSERT INTO eval_agents (token_id, name, region) VALUES (${tokenId}, ${crypto.randomUUID()}, ${REGION})
    RETURNING id`;
  return a.id;
}

/** Runs job `jobId` to a stored result; returns the result's id and mainline flag. */
async function finish(jobId: number, median = 600) {
  const a = await agent();
  const claimed = await claimJobs(sql, REGION, [{ agentId: a }]);
  assert.equal(claimed[0]?.message.jobId, jobId);
  assert.ok((await completeJob(sql, jobId, a, report(median))).ok);
  const [row] = await sql`SELECT id, is_mainline FROM eval_results WHERE job_id = ${jobId}`;
  return row as { id: number; isMainline: boolean };
}

async function boardOf(id: string) {
  await rollUpResults(sql);
  const lb = await leaderboard(sql, { days: 1, region: REGION });
  assert.deepEqual(lb, await leaderboard(sql, { days: 1, region: REGION, onRead: true }), "no drift");
  const rows = async () => [...await sql`SELECT * FROM eval_rollups ORDER BY 1, 2, 3, 5, 4`];
  const before = await rows();
  await rebuildRollups(sql);
  assert.deepEqual(await rows(), before, "equal to a rebuild");
  return lb.providers.find((p) => p.providerId === id) ?? null;
}

Deno.test("an admin exclusion with a reason takes a result off the boards, audited, shown on the provider page", async () => {
  const ids: number[] = [];
  for (const ms of [500, 600, 4000]) {
    ids.push((await finish((await createJob(sql, { ...pair, region: REGION })).id, ms)).id);
  }
  let e = (await boardOf(providerId))!;
  assert.deepEqual([e.results, e.responseLatency.mean], [3, 1700]);

  // Not the admin: 403. A missing reason: 400 naming it. A result that is not mainline: 404.
  const basic = await createUser(sql);
  const basicBrowser = { ...adminBrowser, cookie: (await sessionFor(sql, basic.id)).cookie };
  const path = `/api/admin/results/${ids[2]}/exclusion`;
  assert.equal(
    (await app.request(path, jsonInit("POST", { reason: "x" }, { headers: basicBrowser }))).status,
    403,
  );
  const noReason = await app.request(path, jsonInit("POST", { reason: " " }, { headers: adminBrowser }));
  assert.equal(noReason.status, 400);
  assert.match((await noReason.json()).error.message, /^reason: /);

  const reason = "the agent's TURN server was down for this run";
  const res = await app.request(path, jsonInit("POST", { reason }, { headers: adminBrowser }));
  assert.equal(res.status, 200, await res.clone().text());
  assert.deepEqual((await res.json()).excluded, [ids[2]]);
  e = (await boardOf(providerId))!;
  assert.deepEqual([e.results, e.responseLatency.mean], [2, 550], "the excluded result left the figure");

  const [audit] = await sql`SELECT * FROM audit_log WHERE action = 'board.excluded' ORDER BY id DESC LIMIT 1`;
  assert.equal(audit.actorUserId, admin.id);
  assert.equal(audit.details.reason, reason);
  // The result itself stays public, marked excluded.
  const [stored] = await sql`SELECT is_mainline, excluded_reason FROM eval_results WHERE id = ${ids[2]}`;
  assert.deepEqual([stored.isMainline, stored.excludedReason], [true, reason]);

  // The provider page and the API state it, with the discards per reason.
  const page = await (await app.request(`/leaderboard/provider/${providerId}?days=1`)).text();
  assert.match(page, new RegExp(reason.replace(/[.*+?^${}()|[\]\\']/g, ".")));
  assert.match(page, /Excluded from the boards/);
  const api = await (await app.request(`/api/v1/metrics/providers/${providerId}/discards?days=1`)).json();
  assert.deepEqual(api.exclusions.map((x: { resultId: number; reason: string }) => [x.resultId, x.reason]), [[
    ids[2],
    reason,
  ]]);
  const count = (r: string) => api.discards.find((d: { reason: string }) => d.reason === r).count;
  assert.equal(count("excluded by an administrator"), 1);
  assert.equal(count("no voice detected"), 2, "one unanswered turn in each counted result");
  assert.equal(count("ambiguous turn"), 2);
  assert.equal(count("measurement unreliable (host overloaded)"), 2, "its own reason, not an ambiguous turn");

  // Restoring puts it back; a window exclusion takes every result of the window.
  const back = await app.request(path, { method: "DELETE", headers: adminBrowser });
  assert.equal(back.status, 200);
  assert.equal((await boardOf(providerId))!.results, 3);
  const win = await app.request(
    "/api/admin/exclusions",
    jsonInit("POST", {
      providerId,
      region: REGION,
      from: new Date(Date.now() - 3_600_000).toISOString(),
      to: new Date(Date.now() + 60_000).toISOString(),
      reason: "maintenance window of the provider",
    }, { headers: adminBrowser }),
  );
  assert.equal(win.status, 200, await win.clone().text());
  assert.deepEqual((await win.json()).excluded, ids);
  assert.equal(await boardOf(providerId), null, "nothing of the provider is left on the board");
  // Still listed on its page, excluded, with the reason.
  const after = await app.request(`/leaderboard/provider/${providerId}?days=1`);
  assert.equal(after.status, 200);
  assert.match(await after.text(), /maintenance window of the provider/);
  for (const id of ids) {
    assert.equal(
      (await app.request(`/api/admin/results/${id}/exclusion`, { method: "DELETE", headers: adminBrowser }))
        .status,
      200,
    );
  }
});

Deno.test("failed board runs are counted as discards", async () => {
  const before = await (await app.request(`/api/v1/metrics/providers/${providerId}/discards?days=1`)).json();
  const job = await createJob(sql, { ...pair, region: REGION });
  const a = await agent();
  await claimJobs(sql, REGION, [{ agentId: a }]);
  await sql`UPDATE eval_jobs SET status = 'failed', finished_at = now(), error = 'page did not load' WHERE id = ${job.id}`;
  const after = await (await app.request(`/api/v1/metrics/providers/${providerId}/discards?days=1`)).json();
  const n = (b: { discards: { reason: string; count: number }[] }) =>
    b.discards.find((d) => d.reason === "run failed")!.count;
  assert.equal(n(after), n(before) + 1);
});

Deno.test("a board result whose report names a failed step is counted as a step-failed discard", async () => {
  const count = async () =>
    ((await (await app.request(`/api/v1/metrics/providers/${providerId}/discards?days=1`)).json())
      .discards as {
        reason: string;
        count: number;
      }[]).find((d) => d.reason === "step failed")!.count;
  const before = await count();
  const job = await createJob(sql, { ...pair, region: REGION });
  const a = await agent();
  await claimJobs(sql, REGION, [{ agentId: a }]);
  const withError = { ...report(600), errors: ["step 7 (wait_for_voice): timed out after 30000 ms"] };
  assert.ok((await completeJob(sql, job.id, a, withError)).ok);
  assert.equal(await count(), before + 1);
  // A clean result does not count.
  await finish((await createJob(sql, { ...pair, region: REGION })).id);
  assert.equal(await count(), before + 1);
});

Deno.test("provider names cannot be squatted: another user's private name is never reused", async () => {
  const alice = await createUser(sql);
  const bob = await createUser(sql);
  const principal = await createUser(sql, { role: "principal" });
  const a = await ensureProvider(sql, { name: "Acme Voice", sku: 0, createdBy: alice.id });
  const b = await ensureProvider(sql, { name: "acme voice", sku: 1, createdBy: bob.id });
  const p = await ensureProvider(sql, { name: "ACME Voice", sku: 0, createdBy: principal.id });
  assert.notEqual(a, b, "bob gets his own provider, not alice's");
  assert.notEqual(p, a, "a principal is not handed alice's row");
  assert.equal(
    await ensureProvider(sql, { name: "Acme voice", sku: 0, createdBy: alice.id }),
    a,
    "alice's own again",
  );
  // Bob cannot pick alice's by id either, and sees only his own.
  const res = await app.request(
    "/api/v1/workflows",
    jsonInit("POST", {
      projectId: bob.defaultProjectId,
      name: "steal",
      provider: { id: a },
      config: { url: "https://example.com/", steps: [] },
    }, { headers: { authorization: `Bearer ${await apiKeyFor(sql, bob.id)}` } }),
  );
  assert.equal(res.status, 400);
  const bobs = await listProviders(sql, { viewerId: bob.id });
  assert.deepEqual(bobs.filter((x) => x.name.toLowerCase() === "acme voice").map((x) => x.id), [b]);
  // A curated name resolves to the curated provider for everyone.
  const curated = await ensureProvider(sql, { name: "excluded co", sku: 0, createdBy: bob.id });
  assert.equal(curated, providerId);
});

Deno.test("a non-curator cannot change what a mainline item measures", async () => {
  const owner = await insertEvalPair(sql, { mainline: true, providerId });
  // The owner was a principal when they marked it; now they are basic.
  await sql`UPDATE users SET role = 'basic' WHERE id = ${owner.userId}`;
  const key = { authorization: `Bearer ${await apiKeyFor(sql, owner.userId)}` };
  const patch = (path: string, body: unknown) => app.request(path, jsonInit("PATCH", body, { headers: key }));
  const cfg = await patch(`/api/v1/workflows/${owner.workflowId}`, {
    config: { url: "https://evil.example/", steps: [] },
  });
  assert.equal(cfg.status, 403);
  assert.match((await cfg.json()).error.message, /^config: /);
  const set = await patch(`/api/v1/eval-sets/${owner.evalSetId}`, {
    config: { steps: [{ action: "wait_for_voice" }, { action: "wait_for_silence" }] },
  });
  assert.equal(set.status, 403);
  const prov = await patch(`/api/v1/workflows/${owner.workflowId}`, { provider: { name: "Other Co" } });
  assert.equal(prov.status, 403);
  assert.match((await prov.json()).error.message, /^provider: /);
  // The text stays theirs to edit.
  assert.equal(
    (await patch(`/api/v1/workflows/${owner.workflowId}`, { description: "better words" })).status,
    200,
  );
  const [w] = await sql`SELECT config FROM workflows WHERE id = ${owner.workflowId}`;
  assert.equal(w.config.url, "http://127.0.0.1/agent");
  // A principal may.
  await sql`UPDATE users SET role = 'principal' WHERE id = ${owner.userId}`;
  const ok = await patch(`/api/v1/workflows/${owner.workflowId}`, {
    config: { url: "https://example.com/", steps: [] },
  });
  assert.equal(ok.status, 200, await ok.clone().text());
});

Deno.test("a deactivated principal's schedule no longer feeds the boards; the demo's system user still does", async () => {
  const principal = await createUser(sql, { role: "principal" });
  const sched = await createSchedule(sql, {
    workflowId: pair.workflowId,
    evalSetId: pair.evalSetId,
    region: REGION,
    scheduleType: "recurring",
    cronExpression: "0 0 1 1 *",
    timezone: "UTC",
    createdBy: principal.id,
  });
  assert.equal((await finish((await runScheduleNow(sql, sched.id, principal.id))!.id)).isMainline, true);
  await sql`UPDATE users SET deactivated_at = now() WHERE id = ${principal.id}`;
  // Run by an active principal, but the schedule's owner is deactivated: not public.
  assert.equal((await finish((await runScheduleNow(sql, sched.id, pair.userId))!.id)).isMainline, false);
  // The job's creator deactivated, no schedule: not public either.
  const job = await createJob(sql, { ...pair, region: REGION, createdBy: principal.id });
  assert.equal((await finish(job.id)).isMainline, false);
  // The system user (deactivated so nobody signs in as it) counts.
  await sql`UPDATE users SET is_system = true WHERE id = ${principal.id}`;
  assert.equal((await finish((await runScheduleNow(sql, sched.id, principal.id))!.id)).isMainline, true);
});
