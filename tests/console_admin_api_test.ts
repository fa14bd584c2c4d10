// The API under the newer console pages: a user's signed-in browsers (list, sign one out, sign
// out the others), the admin's plan limits (read, change with an audit entry, refused out of
// range, and in force at once) and the admin's agents list with each agent's current job.
import assert from "node:assert/strict";
import { createTestApp } from "./_app.ts";
import { apiKeyFor, createUser, sessionFor, signedIn } from "./_auth.ts";
import { createTestDatabase } from "./_db.ts";

const db = await createTestDatabase();
const sql = db.sql;
const { app } = await createTestApp(sql);
Deno.test.afterAll(() => db.close());
// One system admin per database (users_single_admin).
const admin = await signedIn(sql, { isAdmin: true });

async function call(cookie: string, method: string, path: string, body?: unknown) {
  const res = await app.request(path, {
    method,
    headers: {
      cookie,
      "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0",
      ...(body ? { "content-type": "application/json" } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: res.status, body: await res.json().catch(() => null) };
}

Deno.test("sessions: a user lists their browsers, signs one out, then all the others", async () => {
  const u = await createUser(sql);
  const a = await sessionFor(sql, u.id);
  const b = await sessionFor(sql, u.id);
  const c = await sessionFor(sql, u.id);
  const other = await signedIn(sql);

  const list = await call(a.cookie, "GET", "/api/v1/user/sessions");
  assert.equal(list.status, 200);
  assert.equal(list.body.sessions.length, 3);
  assert.deepEqual(list.body.sessions.filter((s: { current: boolean }) => s.current).length, 1);
  // Handles name sessions without being anything that signs in.
  for (const s of list.body.sessions) {
    assert.match(s.id, /^[0-9a-f]{16}$/);
    assert.ok(![a.token, b.token, c.token].some((t) => JSON.stringify(list.body).includes(t)));
  }
  const current = list.body.sessions.find((s: { current: boolean }) => s.current).id;
  const bHandle = list.body.sessions.find((s: { id: string; current: boolean }) => !s.current).id;

  // Someone else's handle is not theirs to end: 404, and nothing changes.
  assert.equal((await call(other.cookie, "DELETE", `/api/v1/user/sessions/${bHandle}`)).status, 404);
  assert.equal((await call(a.cookie, "DELETE", "/api/v1/user/sessions/nothex")).status, 400);

  assert.deepEqual(await call(a.cookie, "DELETE", `/api/v1/user/sessions/${bHandle}`), {
    status: 200,
    body: { ended: 1 },
  });
  const left = (await call(a.cookie, "GET", "/api/v1/user/sessions")).body.sessions;
  assert.equal(left.length, 2);
  assert.ok(!left.some((s: { id: string }) => s.id === bHandle));

  // Every other browser: only this one stays, and the others' cookies no longer sign in.
  assert.deepEqual(await call(a.cookie, "DELETE", "/api/v1/user/sessions"), {
    status: 200,
    body: { ended: 1 },
  });
  const after = (await call(a.cookie, "GET", "/api/v1/user/sessions")).body.sessions;
  assert.deepEqual(after.map((s: { id: string }) => s.id), [current]);
  assert.equal((await call(b.cookie, "GET", "/api/v1/user")).status, 401);
  assert.equal((await call(c.cookie, "GET", "/api/v1/user")).status, 401);
  assert.equal((await call(other.cookie, "GET", "/api/v1/user")).status, 200);
  const [audit] = await sql`
    SELECT details FROM audit_log WHERE action = 'session.ended' AND actor_user_id = ${u.id} ORDER BY id DESC`;
  assert.equal(audit.details.which, "all others");

  // Signing out this browser from the list ends this session too.
  assert.equal((await call(a.cookie, "DELETE", `/api/v1/user/sessions/${current}`)).status, 200);
  assert.equal((await call(a.cookie, "GET", "/api/v1/user")).status, 401);

  // An API key cannot manage browser sessions.
  const key = await apiKeyFor(sql, other.id);
  const res = await app.request("/api/v1/user/sessions", { headers: { authorization: `Bearer ${key}` } });
  assert.equal(res.status, 403);
  await res.body?.cancel();
});

Deno.test("plan limits: the admin reads and changes them, audited, out-of-range refused, in force at once", async () => {
  const basic = await signedIn(sql);
  const list = await call(admin.cookie, "GET", "/api/admin/plan-limits");
  assert.equal(list.status, 200);
  assert.deepEqual(
    list.body.limits.map((l: { ownerKind: string }) => l.ownerKind),
    ["basic", "premium", "principal", "fellow", "organization", "org_member"],
  );
  const before = list.body.limits[0];
  assert.equal(before.maxWorkflowsPerProject, 10);

  // Not the admin: 403. Out of range or unknown: 400 naming the field.
  assert.equal(
    (await call(basic.cookie, "PATCH", "/api/admin/plan-limits/basic", { maxProjects: 9 })).status,
    403,
  );
  const bad = await call(admin.cookie, "PATCH", "/api/admin/plan-limits/basic", {
    minScheduleIntervalMinutes: 0,
  });
  assert.equal(bad.status, 400);
  assert.match(bad.body.error.message, /minScheduleIntervalMinutes/);
  const unknown = await call(admin.cookie, "PATCH", "/api/admin/plan-limits/basic", { maxUsers: 3 });
  assert.equal(unknown.status, 400);
  assert.equal(
    (await call(admin.cookie, "PATCH", "/api/admin/plan-limits/gold", { maxProjects: 1 })).status,
    400,
  );

  const changed = await call(admin.cookie, "PATCH", "/api/admin/plan-limits/basic", {
    maxWorkflowsPerProject: 1,
    maxPendingJobs: 7,
    reason: "tighter for the beta",
  });
  assert.equal(changed.status, 200);
  assert.equal(changed.body.limits.maxWorkflowsPerProject, 1);
  assert.equal(changed.body.limits.maxPendingJobs, 7);
  assert.equal(changed.body.limits.maxProjects, before.maxProjects);
  const [audit] = await sql`
    SELECT actor_user_id, target_id, details FROM audit_log WHERE action = 'plan_limits.changed' ORDER BY id DESC`;
  assert.equal(audit.actorUserId, admin.id);
  assert.equal(audit.targetId, "basic");
  assert.deepEqual(audit.details, {
    reason: "tighter for the beta",
    maxWorkflowsPerProject: "10 → 1",
    maxPendingJobs: "20 → 7",
  });

  // In force: a basic user's second workflow in a project is refused by the new limit.
  const wf = (n: number) =>
    call(basic.cookie, "POST", "/api/v1/workflows", {
      projectId: basic.defaultProjectId,
      name: `wf ${n}`,
      provider: { name: "Vapi" },
      yaml: "url: https://example.com/a\nsteps: []\n",
    });
  assert.equal((await wf(1)).status, 201);
  const refused = await wf(2);
  assert.equal(refused.status, 403);
  assert.match(refused.body.error.message, /1 of 1|limit/i);
  await call(admin.cookie, "PATCH", "/api/admin/plan-limits/basic", {
    maxWorkflowsPerProject: 10,
    maxPendingJobs: 20,
  });
});

Deno.test("the admin's agents list shows the job each agent is running", async () => {
  const u = await createUser(sql);
  const [token] = await sql`
    INSERT INTO eval_agent_tokens (name, region, token_hash, display_prefix)
    VALUES ('adm', 'eu', ${"3".repeat(64)}, 'x') RETURNING id`;
  const [busy] = await sql`
    INSERT INTO eval_agents (token_id, name, region, state) VALUES (${token.id}, 'busy-one', 'eu', 'OCCUPIED')
    RETURNING id`;
  await sql`INSERT INTO eval_agents (token_id, name, region) VALUES (${token.id}, 'idle-one', 'eu')`;
  const [w] = await sql`
    INSERT INTO workflows (project_id, provider_id, name, config, created_by)
    SELECT ${u.defaultProjectId}, id, 'Night shift', ${
    sql.json({ url: "https://example.com", steps: [] })
  }, ${u.id}
    FROM providers LIMIT 1 RETURNING id`;
  const [e] = await sql`
    INSERT INTO eval_sets (project_id, name, config, created_by)
    VALUES (${u.defaultProjectId}, 'set', ${sql.json({ steps: [] })}, ${u.id}) RETURNING id`;
  const [job] = await sql`
    INSERT INTO eval_jobs (workflow_id, eval_set_id, region, status, agent_id, attempts, started_at, created_by)
    VALUES (${w.id}, ${e.id}, 'eu', 'running', ${busy.id}, 1, now(), ${u.id}) RETURNING id`;

  const res = await call(admin.cookie, "GET", "/api/admin/agents");
  assert.equal(res.status, 200);
  const byName = Object.fromEntries(res.body.agents.map((a: { name: string }) => [a.name, a]));
  assert.deepEqual(
    byName["busy-one"].currentJobs.map((j: { id: number; workflowName: string }) => [j.id, j.workflowName]),
    [
      [Number(job.id), "Night shift"],
    ],
  );
  assert.deepEqual(byName["idle-one"].currentJobs, []);
  // The public list says nothing about jobs; the admin's is for the admin only.
  const pub = await (await app.request("/api/v1/agents")).json();
  assert.ok(pub.agents.every((a: object) => !("currentJobs" in a)));
  assert.equal(
    (await call((await sessionFor(sql, u.id)).cookie, "GET", "/api/admin/agents")).status,
    403,
  );

  // The workers page shows it.
  const html = await (await app.request("/admin/console/workers", { headers: { cookie: admin.cookie } }))
    .text();
  assert.match(html, new RegExp(`job ${job.id} · Night shift`));
});
