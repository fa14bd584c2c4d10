// The job limits the API enforces: only principal, fellow and admin users may jump the shared
// queue with a priority above 0 (on a run and on a schedule), and repeat is capped.
import assert from "node:assert/strict";
import { createTestApp } from "./_app.ts";
import { withApiKey } from "./_auth.ts";
import { createTestDatabase } from "./_db.ts";
import type { Role } from "../lib/roles.ts";

const db = await createTestDatabase();
Deno.test.afterAll(() => db.close());
const sql = db.sql;
const { app } = await createTestApp(sql);

async function call(headers: Record<string, string>, method: string, path: string, body?: unknown) {
  const res = await app.request(path, {
    method,
    headers: { ...headers, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, data: await res.json() };
}

/** A user of `role` (or an admin) with a workflow and an eval set of their own. */
async function userWithPair(role: Role, isAdmin = false) {
  const me = await withApiKey(sql, { role, isAdmin });
  const w = await call(me.headers, "POST", "/api/v1/workflows", {
    projectId: me.defaultProjectId,
    name: "w",
    provider: { name: "Limits " + crypto.randomUUID().slice(0, 8), sku: 0 },
    config: { url: "https://agent.example.test/", steps: [] },
  });
  assert.equal(w.status, 201, JSON.stringify(w.data));
  const e = await call(me.headers, "POST", "/api/v1/eval-sets", {
    projectId: me.defaultProjectId,
    name: "e",
    config: { steps: [{ action: "wait_for_voice" }] },
  });
  assert.equal(e.status, 201, JSON.stringify(e.data));
  return { headers: me.headers, workflowId: w.data.id as number, evalSetId: e.data.id as number };
}

Deno.test("basic and premium users get 403 for a priority above 0; principal, fellow and admin do not", async () => {
  for (const role of ["basic", "premium"] as const) {
    const u = await userWithPair(role);
    const run = await call(u.headers, "POST", `/api/v1/workflows/${u.workflowId}/run`, {
      evalSetId: u.evalSetId,
      region: "local",
      priority: 10,
    });
    assert.equal(run.status, 403, `${role}: ${JSON.stringify(run.data)}`);
    assert.equal(run.data.error.code, "forbidden");
    assert.match(run.data.error.message, /^priority: only principal, fellow and admin/);
    const schedule = await call(u.headers, "POST", "/api/v1/schedules", {
      workflowId: u.workflowId,
      evalSetId: u.evalSetId,
      region: "local",
      scheduleType: "recurring",
      cronExpression: "0 * * * *",
      priority: 1,
    });
    assert.equal(schedule.status, 403, `${role} schedule: ${JSON.stringify(schedule.data)}`);
    // Priority 0 or below stays theirs to choose.
    const normal = await call(u.headers, "POST", `/api/v1/workflows/${u.workflowId}/run`, {
      evalSetId: u.evalSetId,
      region: "local",
      priority: -1,
    });
    assert.equal(normal.status, 201, JSON.stringify(normal.data));
    const own = await call(u.headers, "POST", "/api/v1/schedules", {
      workflowId: u.workflowId,
      evalSetId: u.evalSetId,
      region: "local",
      scheduleType: "recurring",
      cronExpression: "0 * * * *",
    });
    assert.equal(own.status, 201, JSON.stringify(own.data));
    const raised = await call(u.headers, "PATCH", `/api/v1/schedules/${own.data.id}`, { priority: 5 });
    assert.equal(raised.status, 403, JSON.stringify(raised.data));
  }
  for (const [role, isAdmin] of [["principal", false], ["fellow", false], ["basic", true]] as const) {
    const u = await userWithPair(role, isAdmin);
    const run = await call(u.headers, "POST", `/api/v1/workflows/${u.workflowId}/run`, {
      evalSetId: u.evalSetId,
      region: "local",
      priority: 10,
    });
    assert.equal(run.status, 201, `${role}${isAdmin ? " admin" : ""}: ${JSON.stringify(run.data)}`);
    assert.equal(run.data.priority, 10);
  }
});

Deno.test("a repeat above the cap is a 400 naming repeat", async () => {
  const u = await userWithPair("principal");
  const run = await call(u.headers, "POST", `/api/v1/workflows/${u.workflowId}/run`, {
    evalSetId: u.evalSetId,
    region: "local",
    repeat: 101,
  });
  assert.equal(run.status, 400);
  assert.match(run.data.error.message, /^repeat: /);
});

Deno.test("the server fails a job running past jobs.max_runtime_seconds, whatever its agent says", async () => {
  const { failOverrunJobs } = await import("../lib/queue.ts");
  const { setSetting } = await import("./_db.ts");
  const u = await userWithPair("principal");
  const run = await call(u.headers, "POST", `/api/v1/workflows/${u.workflowId}/run`, {
    evalSetId: u.evalSetId,
    region: "local",
  });
  const { createAgentToken } = await import("../lib/agent_tokens.ts");
  const { info } = await createAgentToken(sql, { name: "overrun", region: "local" });
  const [agent] = await sql`
    INSERT INTO eval_agents (token_id, name, region, state) VALUES (${info.id}, 'overrun', 'local', 'OCCUPIED')
    RETURNING id`;
  // Running for 100 s, heartbeats fresh: only the run-time cap can end it.
  await sql`
    UPDATE eval_jobs SET status = 'running', agent_id = ${agent.id}, attempts = 1,
      started_at = now() - interval '100 seconds', heartbeat_at = now()
    WHERE id = ${run.data.id}`;
  await setSetting(sql, "jobs.max_runtime_seconds", 3600);
  assert.deepEqual(await failOverrunJobs(sql), []);
  await setSetting(sql, "jobs.max_runtime_seconds", 30);
  assert.deepEqual(await failOverrunJobs(sql), [{ id: run.data.id, agentId: agent.id }]);
  const [job] = await sql`SELECT status, error FROM eval_jobs WHERE id = ${run.data.id}`;
  assert.equal(job.status, "failed");
  assert.match(job.error, /ran past the server's limit of 30 s/);
  await setSetting(sql, "jobs.max_runtime_seconds", 3600);
});
