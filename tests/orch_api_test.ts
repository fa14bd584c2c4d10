// /api/v1 routes of issue 4: status codes (400/401/403/404), plan limits, visibility. Requests
// authenticate for real: API keys (the REST API's own clients) for most, session cookies with
// the headers a browser sends for a representative subset, and the CSRF check on those. The
// checks that walk every route (401 without credentials, malformed and missing ids) are in
// api_routes_test.ts.
import assert from "node:assert/strict";
import { completeJob } from "../lib/job_completer.ts";
import { claimJobs } from "../lib/queue.ts";
import { SEEDED_PROVIDERS } from "../lib/seed.ts";
import { sampleReport } from "../bench/sim_agent.ts";
import { createTestApp } from "./_app.ts";
import { apiKeyFor, createUser, sessionFor } from "./_auth.ts";
import { createTestDatabase } from "./_db.ts";
import { startOrchServer } from "./_orch.ts";

const db = await createTestDatabase();
const sql = db.sql;
const server = await startOrchServer(sql);
const { app } = await createTestApp(sql, { orchestrator: server.orch });
Deno.test.afterAll(async () => {
  await server.stop();
  await db.close();
});

/** Who makes a request: the user's ids and the headers that authenticate it as them. */
interface Caller {
  id: number;
  projectId: number;
  headers: Record<string, string>;
}
/** A user calling with an API key; `web` is the same user in a browser with a session cookie. */
interface Member extends Caller {
  apiKey: string;
  web: Caller;
}

/** The origin app.request() serves (http://localhost), as a browser on our own pages sends it. */
const OWN_ORIGIN = "http://localhost";

/** A user with an API key and a signed-in browser session. */
async function member(
  o: {
    role?: "basic" | "premium" | "principal" | "fellow";
    isAdmin?: boolean;
    organizationId?: number;
    orgRole?: string;
  } = {},
): Promise<Member> {
  const u = await createUser(sql, o);
  const apiKey = await apiKeyFor(sql, u.id);
  const { cookie } = await sessionFor(sql, u.id);
  const ids = { id: u.id, projectId: u.defaultProjectId };
  return {
    ...ids,
    apiKey,
    headers: { authorization: `Bearer ${apiKey}` },
    web: { ...ids, headers: { cookie, origin: OWN_ORIGIN, "sec-fetch-site": "same-origin" } },
  };
}

const basic = await member({ role: "basic" });
const premium = await member({ role: "premium" });
const principal = await member({ role: "principal" });
const stranger = await member({ role: "premium" });
const admin = await member({ isAdmin: true });

const APP_YAML = `url: "https://agent.example.test/demo"
steps:
  - action: wait_for_element
    selector: "#start"
  - action: click
    selector: "#start"
  - action: sleep
    time: 1000
`;
const SCENARIO = {
  tags: ["default"],
  steps: [{ action: "speak", file: "hello.wav" }, { action: "wait_for_voice", metrics: "elapsed_time" }],
};

async function call(method: string, path: string, who: Caller | null, body?: unknown) {
  const headers: Record<string, string> = { ...who?.headers };
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await app.request(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const type = res.headers.get("content-type") ?? "";
  const data = type.includes("json") ? await res.json() : await res.text();
  return { status: res.status, data, type };
}

async function workflow(user: Caller, extra: Record<string, unknown> = {}) {
  const r = await call("POST", "/api/v1/workflows", user, {
    projectId: user.projectId,
    name: "wf",
    provider: { id: SEEDED_PROVIDERS[0].id },
    yaml: APP_YAML,
    ...extra,
  });
  assert.equal(r.status, 201, JSON.stringify(r.data));
  return r.data;
}
async function evalSet(user: Caller, extra: Record<string, unknown> = {}) {
  const r = await call("POST", "/api/v1/eval-sets", user, {
    projectId: user.projectId,
    name: "es",
    config: SCENARIO,
    ...extra,
  });
  assert.equal(r.status, 201, JSON.stringify(r.data));
  return r.data;
}

Deno.test(
  "projects: create, 400 naming the field, plan limit 403 naming the limit, 404 for others",
  async () => {
    const u = await member({ role: "basic" });
    const bad = await call("POST", "/api/v1/projects", u, { name: "" });
    assert.equal(bad.status, 400);
    assert.match(bad.data.error.message, /^name: /);
    for (let i = 2; i <= 5; i++) {
      assert.equal(
        (await call("POST", "/api/v1/projects", u, { name: `p${i}` })).status,
        201,
      );
    }
    const over = await call("POST", "/api/v1/projects", u, { name: "p6" });
    assert.equal(over.status, 403);
    assert.equal(over.data.error.code, "plan_limit");
    assert.equal(over.data.error.message, "Project limit reached: basic users may have at most 5 projects");
    assert.equal(over.data.error.details.limit, "max_projects");
    const list = await call("GET", "/api/v1/projects", u);
    assert.equal(list.data.projects.length, 5);
    assert.equal((await call("GET", `/api/v1/projects/${u.projectId}`, stranger)).status, 404);
    assert.equal(
      (await call("PATCH", `/api/v1/projects/${u.projectId}`, stranger, { name: "mine now" })).status,
      404,
    );
    assert.equal((await call("DELETE", `/api/v1/projects/${u.projectId}`, stranger)).status, 404);
    assert.equal((await call("GET", "/api/v1/projects/abc", u)).status, 400);
    const org = await call("POST", "/api/v1/projects", u, { name: "org", organization: true });
    assert.equal(org.status, 403);
    const renamed = await call("PATCH", `/api/v1/projects/${u.projectId}`, u, { name: "Renamed" });
    assert.equal(renamed.data.name, "Renamed");
  },
);

Deno.test(
  "workflows: YAML import/export, config validation naming the field, provider by name",
  async () => {
    const wf = await workflow(basic);
    assert.equal(wf.config.url, "https://agent.example.test/demo");
    assert.equal(wf.provider.id, SEEDED_PROVIDERS[0].id);
    const exported = await call("GET", `/api/v1/workflows/${wf.id}/yaml`, basic);
    assert.equal(exported.status, 200);
    assert.match(exported.type, /application\/yaml/);
    assert.match(exported.data, /action: wait_for_element/);
    const roundTrip = await workflow(basic, { yaml: exported.data });
    assert.deepEqual(roundTrip.config, wf.config);

    const cases: [Record<string, unknown>, RegExp][] = [
      [{ yaml: "url: [unclosed" }, /^yaml: /],
      [{ yaml: "- a\n- b\n" }, /^yaml: the document must be a mapping/],
      [
        { yaml: undefined, config: { url: "https://x.test", steps: [{ action: "click" }] } },
        /^config\.steps\.0\.selector: /,
      ],
      [{ yaml: undefined, config: { steps: [] } }, /^config\.url: needs exactly one of url or html/],
      [
        { yaml: undefined, config: { url: "https://x.test", steps: [{ action: "teleport" }] } },
        /^config\.steps\.0\.action: /,
      ],
      [
        { yaml: "url: https://x.test\nsteps:\n  - action: speak\n" },
        /^yaml\.steps\.0: needs exactly one of file or text/,
      ],
      [{ provider: { id: "nope" } }, /^provider\.id: |^provider: /],
      [{ projectId: "one" }, /^projectId: /],
      [{ yaml: undefined }, /^config: required/],
    ];
    for (const [extra, message] of cases) {
      const r = await call("POST", "/api/v1/workflows", basic, {
        projectId: basic.projectId,
        name: "x",
        provider: { id: SEEDED_PROVIDERS[0].id },
        yaml: APP_YAML,
        ...extra,
      });
      assert.equal(r.status, 400, JSON.stringify(extra));
      assert.equal(r.data.error.code, "invalid_input");
      assert.match(r.data.error.message, message, JSON.stringify(r.data));
    }
    const created = await workflow(basic, { provider: { name: "Vapi Widgets", sku: 0 } });
    const again = await workflow(basic, { provider: { name: "vapi widgets" } });
    assert.equal(created.provider.id, again.provider.id, "picked by name, case-insensitive");
    assert.equal(
      (await call("POST", "/api/v1/workflows", basic, {
        projectId: stranger.projectId,
        name: "intrude",
        provider: { id: SEEDED_PROVIDERS[0].id },
        yaml: APP_YAML,
      })).status,
      404,
    );
  },
);

Deno.test("workflows per project: the plan limit is a 403 naming the limit", async () => {
  const u = await member({ role: "basic" });
  await sql`UPDATE plan_limits SET max_workflows_per_project = 2 WHERE owner_kind = 'basic'`;
  try {
    await workflow(u);
    await workflow(u);
    const r = await call("POST", "/api/v1/workflows", u, {
      projectId: u.projectId,
      name: "third",
      provider: { id: SEEDED_PROVIDERS[0].id },
      yaml: APP_YAML,
    });
    assert.equal(r.status, 403);
    assert.equal(r.data.error.code, "plan_limit");
    assert.equal(
      r.data.error.message,
      "Workflow limit reached: a project of basic users may hold at most 2 workflows",
    );
  } finally {
    await sql`UPDATE plan_limits SET max_workflows_per_project = 10 WHERE owner_kind = 'basic'`;
  }
});

Deno.test(
  "visibility: private needs premium, mainline needs principal; others' private items never leak",
  async () => {
    const denied = await call("POST", "/api/v1/workflows", basic, {
      projectId: basic.projectId,
      name: "secret",
      provider: { id: SEEDED_PROVIDERS[0].id },
      yaml: APP_YAML,
      visibility: "private",
    });
    assert.equal(denied.status, 403);
    assert.match(denied.data.error.message, /premium/);
    const mainlineDenied = await call("POST", "/api/v1/eval-sets", premium, {
      projectId: premium.projectId,
      name: "m",
      config: SCENARIO,
      isMainline: true,
    });
    assert.equal(mainlineDenied.status, 403);
    const both = await call("POST", "/api/v1/eval-sets", principal, {
      projectId: principal.projectId,
      name: "m",
      config: SCENARIO,
      isMainline: true,
      visibility: "private",
    });
    assert.equal(both.status, 400);
    assert.match(both.data.error.message, /^isMainline: /);
    const main = await evalSet(principal, { isMainline: true });
    assert.equal(main.isMainline, true);

    const secretWf = await workflow(premium, { visibility: "private", name: "SECRET-WF-NAME" });
    const secretEs = await evalSet(premium, { visibility: "private", name: "SECRET-ES-NAME" });
    const publicWf = await workflow(premium, { name: "public-wf" });
    const strangerEs = await evalSet(stranger);

    // Lists and counts.
    for (
      const path of [
        "/api/v1/workflows?scope=public",
        "/api/v1/workflows",
        "/api/v1/eval-sets?scope=public",
        "/api/v1/eval-sets",
      ]
    ) {
      const r = await call("GET", path, stranger);
      assert.equal(r.status, 200);
      const text = JSON.stringify(r.data);
      assert.ok(!text.includes("SECRET-"), path);
      assert.ok(
        r.data.items.every((i: { id: number }) =>
          i.id !== (path.includes("workflows") ? secretWf.id : secretEs.id)
        ),
        path,
      );
    }
    const pub = await call("GET", "/api/v1/workflows?scope=public", stranger);
    assert.ok(pub.data.items.some((i: { id: number }) => i.id === publicWf.id));
    const [{ n }] = await sql`SELECT count(*)::int AS n FROM workflows WHERE visibility = 'public'`;
    assert.equal(pub.data.total, n, "the public count excludes private items");
    // Direct access: the same 404 as for an id that does not exist.
    const missing = await call("GET", "/api/v1/workflows/99999999", stranger);
    for (
      const [method, path, body] of [
        ["GET", `/api/v1/workflows/${secretWf.id}`],
        ["GET", `/api/v1/workflows/${secretWf.id}/yaml`],
        ["PATCH", `/api/v1/workflows/${secretWf.id}`, { name: "x" }],
        ["DELETE", `/api/v1/workflows/${secretWf.id}`],
        ["POST", `/api/v1/workflows/${secretWf.id}/run`, { evalSetId: strangerEs.id, region: "eu" }],
        ["GET", `/api/v1/eval-sets/${secretEs.id}`],
        ["GET", `/api/v1/eval-sets/${secretEs.id}/yaml`],
        ["POST", `/api/v1/workflows/${publicWf.id}/run`, { evalSetId: secretEs.id, region: "eu" }],
        ["POST", "/api/v1/schedules", {
          workflowId: secretWf.id,
          evalSetId: strangerEs.id,
          region: "eu",
          scheduleType: "once",
          runAt: new Date(Date.now() + 60_000).toISOString(),
        }],
      ] as [string, string, unknown?][]
    ) {
      const r = await call(method, path, stranger, body);
      assert.equal(r.status, 404, `${method} ${path}`);
      assert.ok(!JSON.stringify(r.data).includes("SECRET-"), `${method} ${path}`);
      assert.equal(r.data.error.code, missing.data.error.code);
    }
    // Public items of others: readable, not changeable.
    const read = await call("GET", `/api/v1/workflows/${publicWf.id}`, stranger);
    assert.equal(read.status, 200);
    assert.equal(read.data.editable, false);
    assert.equal(
      (await call("PATCH", `/api/v1/workflows/${publicWf.id}`, stranger, { name: "mine" })).status,
      403,
    );
    assert.equal((await call("DELETE", `/api/v1/workflows/${publicWf.id}`, stranger)).status, 403);
    // The owner sees their private items.
    assert.equal((await call("GET", `/api/v1/workflows/${secretWf.id}`, premium)).status, 200);
    const edited = await call("PUT", `/api/v1/workflows/${secretWf.id}`, premium, {
      visibility: "public",
    });
    assert.equal(edited.data.visibility, "public");
  },
);

Deno.test(
  "jobs: run, status, cancel while pending (409 after), live events, nobody else sees them",
  async () => {
    const wf = await workflow(basic);
    const es = await evalSet(basic);
    const bad = await call("POST", `/api/v1/workflows/${wf.id}/run`, basic, {
      evalSetId: es.id,
      region: "EU WEST",
    });
    assert.equal(bad.status, 400);
    assert.match(bad.data.error.message, /^region: /);
    const run = await call("POST", `/api/v1/workflows/${wf.id}/run`, basic, {
      evalSetId: es.id,
      region: "eu-west",
      // A basic user may lower a job's priority, not raise it (api_job_limits_test.ts).
      priority: -3,
    });
    assert.equal(run.status, 201);
    assert.equal(run.data.status, "pending");
    assert.equal(run.data.priority, -3);
    const jobId = run.data.id;
    assert.equal((await call("GET", `/api/v1/jobs/${jobId}`, basic)).data.status, "pending");
    assert.equal((await call("GET", `/api/v1/jobs/${jobId}`, stranger)).status, 404);
    assert.equal((await call("POST", `/api/v1/jobs/${jobId}/cancel`, stranger)).status, 404);
    assert.ok(
      !(await call("GET", "/api/v1/jobs", stranger)).data.jobs.some((j: { id: number }) => j.id === jobId),
    );
    assert.ok(
      (await call("GET", "/api/v1/jobs?status=pending", basic)).data.jobs.some((j: { id: number }) =>
        j.id === jobId
      ),
    );
    assert.equal((await call("GET", "/api/v1/jobs?status=lost", basic)).status, 400);

    // Live events: the stream opens with the status and ends when the job is cancelled.
    const res = await app.request(`/api/v1/jobs/${jobId}/events`, { headers: basic.headers });
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /text\/event-stream/);
    const body = res.body!.pipeThrough(new TextDecoderStream());
    const cancel = await call("POST", `/api/v1/jobs/${jobId}/cancel`, basic);
    assert.equal(cancel.status, 200);
    assert.equal(cancel.data.status, "cancelled");
    let text = "";
    for await (const chunk of body) text += chunk;
    assert.match(text, /event: status\ndata: \{"id":\d+.*"status":"pending"/);
    assert.match(text, /"status":"cancelled"/);
    const again = await call("DELETE", `/api/v1/jobs/${jobId}`, basic);
    assert.equal(again.status, 409);
    assert.match(again.data.error.message, /it is cancelled, only pending jobs can be cancelled/);
    assert.equal((await call("GET", "/api/v1/jobs/0", basic)).status, 400);
  },
);

Deno.test(
  "schedules: 400 naming cron/timezone/runAt, create, pause, run-now, 404 for others",
  async () => {
    const wf = await workflow(basic);
    const es = await evalSet(basic);
    const base = { workflowId: wf.id, evalSetId: es.id, region: "eu-west" };
    for (
      const [body, field] of [
        [{ ...base, scheduleType: "recurring", cronExpression: "every minute" }, "cronExpression"],
        [{ ...base, scheduleType: "recurring" }, "cronExpression"],
        [
          { ...base, scheduleType: "recurring", cronExpression: "* * * * *", timezone: "Moon/Base" },
          "timezone",
        ],
        [{ ...base, scheduleType: "once" }, "runAt"],
        [{ ...base, scheduleType: "weekly" }, "scheduleType"],
      ] as [Record<string, unknown>, string][]
    ) {
      const r = await call("POST", "/api/v1/schedules", basic, body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.ok(r.data.error.message.startsWith(`${field}: `), r.data.error.message);
    }
    const created = await call("POST", "/api/v1/schedules", basic, {
      ...base,
      scheduleType: "recurring",
      cronExpression: "30 8 * * 1-5",
      timezone: "Europe/Berlin",
      maxRuns: 10,
    });
    assert.equal(created.status, 201);
    assert.ok(created.data.nextRunAt);
    const id = created.data.id;
    assert.equal((await call("GET", `/api/v1/schedules/${id}`, stranger)).status, 404);
    assert.equal((await call("POST", `/api/v1/schedules/${id}/run-now`, stranger)).status, 404);
    assert.ok(
      !(await call("GET", "/api/v1/schedules", stranger)).data.schedules.some((s: { id: number }) =>
        s.id === id
      ),
    );
    const paused = await call("PATCH", `/api/v1/schedules/${id}`, basic, { isEnabled: false });
    assert.equal(paused.data.isEnabled, false);
    assert.equal(paused.data.nextRunAt, null);
    const badPatch = await call("PATCH", `/api/v1/schedules/${id}`, basic, { cronExpression: "nope" });
    assert.equal(badPatch.status, 400);
    assert.match(badPatch.data.error.message, /^cronExpression: /);
    const now = await call("POST", `/api/v1/schedules/${id}/run-now`, basic);
    assert.equal(now.status, 201);
    assert.equal(now.data.scheduleId, id);
    assert.equal((await call("DELETE", `/api/v1/schedules/${id}`, stranger)).status, 404);
    assert.equal((await call("DELETE", `/api/v1/schedules/${id}`, basic)).status, 200);
    assert.equal((await call("GET", `/api/v1/schedules/${id}`, basic)).status, 404);
  },
);

Deno.test(
  "results: the owner's and mainline results are visible, others' are not; artifacts download",
  async () => {
    const wf = await workflow(premium, { visibility: "private" });
    const es = await evalSet(premium);
    const run = await call("POST", `/api/v1/workflows/${wf.id}/run`, premium, {
      evalSetId: es.id,
      region: "res",
    });
    const [{ id: tokenId }] = await sql`
    INSERT INTO eval_agent_tokens (name, region, token_hash, display_prefix)
    VALUES ('r', 'res', ${"1".repeat(64)}, 'x') RETURNING id`;
    const [agent] =
      await sql`INSERT INTO eval_agents (token_id, name, region) VALUES (${tokenId}, 'res', 'res') RETURNING id`;
    await claimJobs(sql, "res", [{ agentId: agent.id }]);
    await sql`INSERT INTO eval_artifacts (job_id, kind, name, content_type, size_bytes, sha256, data)
            VALUES (${run.data.id}, 'recording', 'call.wav', 'audio/wav', 3, ${
      "a".repeat(64)
    }, ${new Uint8Array([1, 2, 3])})`;
    const done = await completeJob(sql, run.data.id, agent.id, sampleReport(555));
    assert.ok(done.ok);
    const resultId = done.resultId;
    const mine = await call("GET", "/api/v1/results", premium);
    assert.ok(mine.data.results.some((r: { id: number }) => r.id === resultId));
    const theirs = await call("GET", "/api/v1/results", stranger);
    assert.ok(!theirs.data.results.some((r: { id: number }) => r.id === resultId));
    const mainline = await call("GET", "/api/v1/results?scope=mainline", stranger);
    assert.ok(mainline.data.results.every((r: { isMainline: boolean }) => r.isMainline));
    assert.equal((await call("GET", `/api/v1/results/${resultId}`, stranger)).status, 404);
    assert.equal(
      (await call("GET", `/api/v1/results/${resultId}/artifacts/call.wav`, stranger)).status,
      404,
    );
    const detail = await call("GET", `/api/v1/results/${resultId}`, premium);
    assert.equal(detail.data.responseLatency.median, 555);
    assert.deepEqual(detail.data.artifacts.map((a: { name: string }) => a.name), ["call.wav"]);
    const wav = await app.request(`/api/v1/results/${resultId}/artifacts/call.wav`, {
      headers: premium.headers,
    });
    assert.equal(wav.status, 200);
    assert.equal(wav.headers.get("content-type"), "audio/wav");
    assert.deepEqual(new Uint8Array(await wav.arrayBuffer()), new Uint8Array([1, 2, 3]));
    assert.equal(
      (await call("GET", `/api/v1/results/${resultId}/artifacts/none.wav`, premium)).status,
      404,
    );
    assert.equal((await call("GET", "/api/v1/results?region=Bad Region", premium)).status, 400);
    // One job's result (how `vox run` finds it); none for a job it cannot see or that has none.
    const byJob = await call("GET", `/api/v1/results?jobId=${run.data.id}`, premium);
    assert.deepEqual(byJob.data.results.map((r: { id: number }) => r.id), [resultId]);
    assert.equal((await call("GET", `/api/v1/results?jobId=${run.data.id}`, stranger)).data.total, 0);
    const bad = await call("GET", "/api/v1/results?jobId=x", premium);
    assert.equal(bad.status, 400);
    assert.match(bad.data.error.message, /^jobId: /);
  },
);

Deno.test("workflow and eval-set lists filter by exact name (how `vox push` finds its items)", async () => {
  const user = await member({ role: "basic" });
  const a = await workflow(user, { name: "checkout agent" });
  await workflow(user, { name: "checkout agent v2" });
  const es = await evalSet(user, { name: "checkout" });
  const byName = await call("GET", `/api/v1/workflows?name=${encodeURIComponent("checkout agent")}`, user);
  assert.deepEqual(byName.data.items.map((i: { id: number }) => i.id), [a.id]);
  assert.equal(byName.data.total, 1);
  const sets = await call("GET", "/api/v1/eval-sets?name=checkout", user);
  assert.deepEqual(sets.data.items.map((i: { id: number }) => i.id), [es.id]);
  // Another user's item of the same name is not theirs to find.
  assert.equal((await call("GET", "/api/v1/eval-sets?name=checkout", stranger)).data.total, 0);
  const empty = await call("GET", "/api/v1/workflows?name=", user);
  assert.equal(empty.status, 400);
  assert.match(empty.data.error.message, /^name: /);
});

Deno.test(
  "organizations: members share org projects and their private items; outsiders see none",
  async () => {
    const [org] = await sql`INSERT INTO organizations (name) VALUES ('Acme') RETURNING id`;
    // In the browser: every request here carries a session cookie and same-origin headers.
    const admin = (await member({ role: "premium", organizationId: org.id, orgRole: "admin" })).web;
    const colleague = (await member({ role: "basic", organizationId: org.id, orgRole: "member" })).web;
    const outsider = (await member({ role: "premium" })).web;
    const denied = await call("POST", "/api/v1/projects", colleague, { name: "Team", organization: true });
    assert.equal(denied.status, 403);
    const team = await call("POST", "/api/v1/projects", admin, { name: "Team", organization: true });
    assert.equal(team.status, 201);
    assert.equal(team.data.organizationId, org.id);
    const secret = await workflow({ ...admin, projectId: team.data.id }, {
      visibility: "private",
      name: "ORG-SECRET",
    });
    assert.equal((await call("GET", `/api/v1/workflows/${secret.id}`, colleague)).data.editable, true);
    assert.ok(
      (await call("GET", "/api/v1/projects", colleague)).data.projects.some((p: { id: number }) =>
        p.id === team.data.id
      ),
    );
    assert.equal(
      (await call("PATCH", `/api/v1/projects/${team.data.id}`, colleague, { name: "Mine" })).status,
      403,
    );
    assert.equal((await call("GET", `/api/v1/workflows/${secret.id}`, outsider)).status, 404);
    assert.equal((await call("GET", `/api/v1/projects/${team.data.id}`, outsider)).status, 404);
    const listed = await call("GET", "/api/v1/workflows?scope=public", outsider);
    assert.ok(!JSON.stringify(listed.data).includes("ORG-SECRET"));
  },
);

Deno.test("/openapi.json documents every route from the same schemas; /docs renders it", async () => {
  const res = await app.request("/openapi.json");
  assert.equal(res.status, 200);
  const doc = await res.json();
  assert.equal(doc.openapi, "3.1.0");
  for (
    const p of [
      "/api/v1/workflows",
      "/api/v1/workflows/{id}/run",
      "/api/v1/jobs/{id}/cancel",
      "/api/v1/schedules",
      "/api/v1/metrics/leaderboard",
      "/api/admin/agent-tokens",
      "/api/agent/ws",
    ]
  ) {
    assert.ok(doc.paths[p], p);
  }
  const create = doc.paths["/api/v1/schedules"].post;
  assert.ok(create.requestBody.content["application/json"].schema.properties.cronExpression);
  assert.ok(create.responses["400"] && create.responses["401"] && create.responses["403"]);
  const page = await app.request("/docs");
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type") ?? "", /text\/html/);
  const html = await page.text();
  assert.match(html, /POST \/api\/v1\/workflows\/\{id\}\/run/);
});

Deno.test("403 on every route where a signed-in caller may see but not do", async () => {
  const owner = await member({ role: "premium" });
  const wf = await workflow(owner);
  const es = await evalSet(owner);
  const cases: [string, string, unknown][] = [
    ["PATCH", `/api/v1/workflows/${wf.id}`, { name: "x" }],
    ["PUT", `/api/v1/workflows/${wf.id}`, { name: "x" }],
    ["DELETE", `/api/v1/workflows/${wf.id}`, undefined],
    ["PATCH", `/api/v1/eval-sets/${es.id}`, { name: "x" }],
    ["PUT", `/api/v1/eval-sets/${es.id}`, { name: "x" }],
    ["DELETE", `/api/v1/eval-sets/${es.id}`, undefined],
    ["POST", "/api/v1/workflows", {
      projectId: basic.projectId,
      name: "p",
      provider: { id: SEEDED_PROVIDERS[0].id },
      yaml: APP_YAML,
      visibility: "private",
    }],
    ["POST", "/api/v1/eval-sets", {
      projectId: basic.projectId,
      name: "m",
      config: SCENARIO,
      isMainline: true,
    }],
    ["POST", "/api/v1/projects", { name: "org", organization: true }],
    ["GET", "/api/admin/agent-tokens", undefined],
    ["POST", "/api/admin/agent-tokens", { name: "t", region: "eu" }],
    ["DELETE", "/api/admin/agent-tokens/1", undefined],
  ];
  for (const [method, path, body] of cases) {
    // The same refusal through the browser session and, on /api/v1, through the API key.
    const callers = path.startsWith("/api/v1/") ? [basic, basic.web] : [basic.web];
    for (const who of callers) {
      const r = await call(method, path, who, body);
      const via = who === basic ? "API key" : "session";
      assert.equal(r.status, 403, `${method} ${path} (${via}): ${JSON.stringify(r.data)}`);
      assert.equal(r.data.error.code, "forbidden");
    }
  }
  // Plan limits are 403s too (covered with their messages above); the admin passes the admin
  // routes in the browser. API keys are accepted only on /api/v1, so the admin's key is no one there.
  assert.equal((await call("GET", "/api/admin/agent-tokens", admin.web)).status, 200);
  const byKey = await call("GET", "/api/admin/agent-tokens", admin);
  assert.equal(byKey.status, 401);
  assert.equal(byKey.data.error.code, "unauthorized");
});

Deno.test(
  "session cookies: cross-site state changes are refused (csrf_rejected); API keys need no browser headers",
  async () => {
    const u = await member({ role: "basic" });
    const count = async () =>
      (await sql`SELECT count(*)::int AS n FROM projects WHERE owner_user_id = ${u.id}`)[0].n as number;
    const before = await count();
    const crossSite: Record<string, string>[] = [
      { origin: "https://evil.example", "sec-fetch-site": "cross-site" },
      { "sec-fetch-site": "cross-site" },
      { "sec-fetch-site": "same-site" },
      { origin: "https://evil.example" },
      { origin: "null" },
    ];
    for (const browser of crossSite) {
      for (
        const [method, path, body] of [
          ["POST", "/api/v1/projects", { name: "forged" }],
          ["PATCH", `/api/v1/projects/${u.projectId}`, { name: "forged" }],
          ["DELETE", `/api/v1/projects/${u.projectId}`, undefined],
        ] as [string, string, unknown][]
      ) {
        const r = await call(method, path, {
          ...u.web,
          headers: { cookie: u.web.headers.cookie, ...browser },
        }, body);
        assert.equal(r.status, 403, `${method} ${path} ${JSON.stringify(browser)}`);
        assert.equal(r.data.error.code, "csrf_rejected");
        assert.match(r.data.error.message, /^Cross-site request refused: /);
      }
    }
    assert.equal(await count(), before, "no forged request changed anything");
    const [{ name }] = await sql`SELECT name FROM projects WHERE id = ${u.projectId}`;
    assert.equal(name, "Default");
    // Reading is not a state change: a cross-site GET with the cookie is answered.
    const read = await call("GET", "/api/v1/projects", {
      ...u.web,
      headers: { cookie: u.web.headers.cookie, "sec-fetch-site": "cross-site" },
    });
    assert.equal(read.status, 200);
    // The browser on our own pages (same-origin headers) may change state.
    const own = await call("POST", "/api/v1/projects", u.web, { name: "from the page" });
    assert.equal(own.status, 201, JSON.stringify(own.data));
    // The API key sends no browser headers and needs none.
    assert.equal(u.headers.origin, undefined);
    const scripted = await call("POST", "/api/v1/projects", u, { name: "from a script" });
    assert.equal(scripted.status, 201, JSON.stringify(scripted.data));
    const renamed = await call("PATCH", `/api/v1/projects/${scripted.data.id}`, u, { name: "renamed" });
    assert.equal(renamed.status, 200);
    assert.equal((await call("DELETE", `/api/v1/projects/${scripted.data.id}`, u)).status, 200);
    assert.equal(await count(), before + 1);
  },
);
