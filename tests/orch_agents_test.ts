import assert from "node:assert/strict";
import { AGENT_WS_PATH, MAX_FRAME_BYTES, PROTOCOL_VERSION } from "../agent/protocol.ts";
import { type CloseInfo, SimAgent } from "../bench/sim_agent.ts";
import { createAgentToken, revokeAgentToken } from "../lib/agent_tokens.ts";
import { createJob, getJob } from "../lib/queue.ts";
import { createTestDatabase } from "./_db.ts";
import { createTestApp } from "./_app.ts";
import { apiKeyFor, signedIn } from "./_auth.ts";
import { agentToken, insertEvalPair, startOrchServer } from "./_orch.ts";
import { eventually, sleep } from "./_wait.ts";

const db = await createTestDatabase();
const sql = db.sql;
const server = await startOrchServer(sql);
const base = server.baseUrl;
Deno.test.afterAll(async () => {
  await server.stop();
  await db.close();
});

/** Opens a raw socket to the agent endpoint; resolves with how it ended. For bad-input tests. */
function rawSocket(
  baseUrl: string,
  opts: { token?: string; frames?: (string | Uint8Array)[]; waitMs?: number } = {},
): Promise<CloseInfo & { messages: string[]; opened: boolean }> {
  return new Promise((resolve) => {
    const url = baseUrl.replace(/^http/, "ws") + AGENT_WS_PATH;
    const init = opts.token ? { headers: { authorization: `Bearer ${opts.token}` } } : undefined;
    const ws = new WebSocket(url, init as unknown as string[]);
    const messages: string[] = [];
    let opened = false;
    const timer = setTimeout(() => ws.close(1000, "test done"), opts.waitMs ?? 5000);
    ws.onopen = () => {
      opened = true;
      for (const f of opts.frames ?? []) ws.send(f);
    };
    ws.onmessage = (e) => messages.push(String(e.data));
    ws.onerror = () => {};
    ws.onclose = (e) => {
      clearTimeout(timer);
      resolve({ code: e.code, reason: e.reason, messages, opened });
    };
  });
}

const hello = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({ type: "hello", protocol: PROTOCOL_VERSION, name: "raw", region: "bad", ...extra });

Deno.test("a bad token in the upgrade header is refused with 401 before any socket opens", async () => {
  for (const token of ["vox_agent_" + "x".repeat(40), "nonsense"]) {
    const res = await fetch(`${base}/api/agent/ws`, {
      headers: {
        upgrade: "websocket",
        connection: "Upgrade",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-version": "13",
        authorization: `Bearer ${token}`,
      },
    });
    assert.equal(res.status, 401);
    const body = await res.json();
    assert.equal(body.error.code, "unauthorized");
    assert.match(body.error.message, /agent token/);
  }
});

Deno.test("plain HTTP on the agent socket path is 426 with a good token, 401 without", async () => {
  const token = await agentToken(sql, "plain");
  const res = await fetch(`${base}/api/agent/ws`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 426);
  assert.equal((await res.json()).error.code, "upgrade_required");
  const without = await fetch(`${base}/api/agent/ws`);
  assert.equal(without.status, 401);
  assert.equal((await without.json()).error.details.reason, "malformed");
});

Deno.test("bad frames close only their own socket, with a reason", async () => {
  const token = await agentToken(sql, "bad");
  const bystander = await SimAgent.connect({ baseUrl: base, token, name: "bystander", region: "bad" });
  const cases: { frames: (string | Uint8Array)[]; code: number; reason: RegExp }[] = [
    { frames: ["{not json"], code: 4400, reason: /not valid JSON/ },
    { frames: [new Uint8Array([1, 2, 3])], code: 4400, reason: /binary/ },
    { frames: ["x".repeat(MAX_FRAME_BYTES + 1)], code: 1009, reason: /larger than/ },
    {
      frames: [JSON.stringify({ type: "launch.missiles" })],
      code: 4404,
      reason: /unknown message type launch\.missiles/,
    },
    { frames: [JSON.stringify({ no: "type" })], code: 4400, reason: /no string field type/ },
    {
      frames: [JSON.stringify({ type: "heartbeat", activeJobs: [] })],
      code: 4400,
      reason: /first message must be hello/,
    },
    { frames: [hello({ capacity: 0 })], code: 4400, reason: /hello: capacity/ },
    { frames: [hello(), hello()], code: 4400, reason: /hello sent twice/ },
    {
      frames: [hello(), JSON.stringify({ type: "job.result", jobId: "one" })],
      code: 4400,
      reason: /job\.result: jobId/,
    },
  ];
  for (const c of cases) {
    const res = await rawSocket(base, { token, frames: c.frames });
    assert.ok(res.opened);
    assert.equal(res.code, c.code, `${c.reason}: got ${res.code} ${res.reason}`);
    assert.match(res.reason, c.reason);
  }
  // The bystander on the same token is untouched and still gets work.
  assert.equal(bystander.closeInfo, null);
  const pair = await insertEvalPair(sql);
  const job = await createJob(sql, { ...pair, region: "bad" });
  await eventually(async () => (await getJob(sql, job.id))?.status === "completed", "the bystander's job");
  await bystander.kill();
});

Deno.test("a token for another region is closed with 4003 naming both regions", async () => {
  const token = await agentToken(sql, "eu-west");
  const viaHeader = await rawSocket(base, { token, frames: [hello({ region: "us-east" })] });
  assert.equal(viaHeader.code, 4003);
  assert.equal(viaHeader.reason, "token is for region eu-west, not us-east");
});

Deno.test("missing, expired, revoked and unknown tokens are refused at the upgrade with the reason", async () => {
  const refusal = async (token?: string) => {
    const res = await fetch(`${base}/api/agent/ws`, {
      headers: {
        upgrade: "websocket",
        connection: "Upgrade",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
        "sec-websocket-version": "13",
        ...(token ? { authorization: `Bearer ${token}` } : {}),
      },
    });
    const { error } = await res.json();
    return [res.status, error.details.closeCode, error.details.reason, error.message];
  };
  const expired = await createAgentToken(sql, {
    name: "old",
    region: "bad",
    expiresAt: new Date(Date.now() - 1000),
  });
  assert.deepEqual(await refusal(expired.token), [
    401,
    4002,
    "expired",
    "Cannot connect: agent token has expired",
  ]);
  const revoked = await createAgentToken(sql, { name: "gone", region: "bad" });
  await revokeAgentToken(sql, revoked.info.id);
  assert.deepEqual(await refusal(revoked.token), [
    401,
    4002,
    "revoked",
    "Cannot connect: agent token was revoked",
  ]);
  assert.deepEqual(await refusal("vox_agent_" + "A".repeat(40)), [
    401,
    4001,
    "unknown",
    "Cannot connect: agent token is not known",
  ]);
  assert.deepEqual(await refusal(), [
    401,
    4001,
    "malformed",
    "Cannot connect: agent token is missing or malformed",
  ]);
  // A socket without the header never opens, whatever its hello says.
  const r = await rawSocket(base, { frames: [hello({ token: revoked.token })] });
  assert.equal(r.opened, false);
});

Deno.test("revoking a token disconnects its live agents with 4002", async () => {
  const created = await createAgentToken(sql, { name: "live", region: "rev" });
  const agent = await SimAgent.connect({
    baseUrl: base,
    token: created.token,
    name: "victim",
    region: "rev",
  });
  await revokeAgentToken(sql, created.info.id);
  const closed = await agent.closed;
  assert.deepEqual(closed, { code: 4002, reason: "token revoked" });
});

Deno.test(
  "agent state: IDLE on connect, OCCUPIED with a job, IDLE after, OFFLINE on close",
  async () => {
    const token = await agentToken(sql, "state");
    const pair = await insertEvalPair(sql);
    const agent = await SimAgent.connect({
      baseUrl: base,
      token,
      name: "stateful",
      region: "state",
      auto: false,
    });
    const id = agent.registered!.agentId;
    const state = async () => (await sql`SELECT state, last_job_id FROM eval_agents WHERE id = ${id}`)[0];
    assert.equal((await state()).state, "IDLE");
    const job = await createJob(sql, { ...pair, region: "state" });
    await agent.seen((m) => m.type === "job.offer");
    assert.equal((await state()).state, "OCCUPIED");
    assert.equal((await state()).lastJobId, job.id);
    agent.result(job.id);
    await agent.waitFor((m) => m.type === "job.ack");
    assert.equal((await state()).state, "IDLE");
    await agent.kill();
    await eventually(async () => (await state()).state === "OFFLINE", "OFFLINE after close");
    const res = await fetch(`${base}/api/v1/agents`);
    const listed = (await res.json()).agents.find((a: { id: number }) => a.id === id);
    assert.equal(listed.state, "OFFLINE");
    assert.equal(listed.region, "state");
    assert.ok(listed.lastSeenAt);
    assert.equal(JSON.stringify(listed).includes("token"), false);
  },
);

Deno.test("heartbeats reach last_seen through batched writes", async () => {
  const token = await agentToken(sql, "beat");
  const agent = await SimAgent.connect({
    baseUrl: base,
    token,
    name: "beater",
    region: "beat",
    heartbeat: false,
  });
  const id = agent.registered!.agentId;
  const [before] = await sql`SELECT last_seen_at FROM eval_agents WHERE id = ${id}`;
  await sleep(50);
  agent.send({ type: "heartbeat", activeJobs: [] });
  await eventually(async () => {
    const [row] = await sql`SELECT last_seen_at FROM eval_agents WHERE id = ${id}`;
    return row.lastSeenAt > before.lastSeenAt;
  }, "last_seen moved");
  await agent.kill();
});

Deno.test("a reconnecting agent keeps the jobs it still runs and drops the rest", async () => {
  const token = await agentToken(sql, "resume");
  const pair = await insertEvalPair(sql);
  const first = await SimAgent.connect({
    baseUrl: base,
    token,
    name: "phoenix",
    region: "resume",
    auto: false,
    capacity: 2,
  });
  const a = await createJob(sql, { ...pair, region: "resume" });
  const b = await createJob(sql, { ...pair, region: "resume" });
  await eventually(() => first.offers.length === 2, "two offers");
  await first.kill();
  const second = await SimAgent.connect({
    baseUrl: base,
    token,
    name: "phoenix",
    region: "resume",
    auto: false,
    capacity: 2,
    activeJobs: [a.id, 999_999],
  });
  assert.deepEqual(second.registered!.resumed, [a.id]);
  assert.deepEqual(second.registered!.dropped, [999_999]);
  assert.equal(second.registered!.agentId, first.registered!.agentId);
  // b was lost with the old connection: requeued at once and offered again (attempt 2).
  const again = await eventually(() => second.offers.find((o) => o.jobId === b.id), "b offered again");
  assert.equal(again.attempt, 2);
  second.result(a.id);
  second.result(b.id);
  await eventually(async () => (await getJob(sql, a.id))?.status === "completed", "a completed");
  await eventually(async () => (await getJob(sql, b.id))?.status === "completed", "b completed");
  await second.kill();
});

Deno.test("a second connection with the same token and name replaces the first (4009)", async () => {
  const token = await agentToken(sql, "twin");
  const one = await SimAgent.connect({ baseUrl: base, token, name: "twin", region: "twin" });
  const two = await SimAgent.connect({ baseUrl: base, token, name: "twin", region: "twin" });
  assert.equal((await one.closed).code, 4009);
  assert.equal(two.closeInfo, null);
  await two.kill();
});

Deno.test("a late notice of an older connection leaves the current one open; a newer one elsewhere closes it", async () => {
  const token = await agentToken(sql, "late");
  const agent = await SimAgent.connect({ baseUrl: base, token, name: "late", region: "late" });
  const agentId = agent.registered!.agentId;
  // An older connection's "registered" notice, delivered after this one registered.
  const notice = (connectionId: string) =>
    sql`SELECT pg_notify('vox_agents', ${JSON.stringify({ agentId, connectionId })})`;
  await notice(crypto.randomUUID());
  await sleep(300);
  assert.equal(agent.closeInfo, null, "a stale notice closed the current connection");
  // Another process registered the agent again: its row names the newer connection.
  const newer = crypto.randomUUID();
  await sql`UPDATE eval_agents SET connection_id = ${newer} WHERE id = ${agentId}`;
  await notice(newer);
  const closed = await agent.closed;
  assert.equal(closed.code, 4009);
  assert.match(closed.reason, /replaced by a newer connection/);
  await agent.kill();
});

Deno.test("artifacts: only the holding agent uploads; a repeat keeps the first copy", async () => {
  const token = await agentToken(sql, "art");
  const other = await agentToken(sql, "art");
  const pair = await insertEvalPair(sql);
  const agent = await SimAgent.connect({
    baseUrl: base,
    token,
    name: "recorder",
    region: "art",
    auto: false,
  });
  const job = await createJob(sql, { ...pair, region: "art" });
  await agent.seen((m) => m.type === "job.offer");
  const wav = new Uint8Array(1000).fill(3);
  const put = (t: string, body: BodyInit) =>
    fetch(`${base}/api/agent/jobs/${job.id}/artifacts/recording-1.wav`, {
      method: "PUT",
      headers: { authorization: `Bearer ${t}`, "content-type": "audio/wav" },
      body,
    });
  const r1 = await put(token, wav);
  assert.equal(r1.status, 201);
  assert.deepEqual(await r1.json(), {
    jobId: job.id,
    name: "recording-1.wav",
    sizeBytes: 1000,
    stored: true,
  });
  const r2 = await put(token, new Uint8Array(5));
  assert.equal(r2.status, 200);
  assert.equal((await r2.json()).stored, false);
  const r3 = await put(other, wav);
  assert.equal(r3.status, 409);
  assert.equal((await r3.json()).error.code, "job_not_held");
  const r4 = await put("vox_agent_" + "Z".repeat(40), wav);
  assert.equal(r4.status, 401);
  await r4.body?.cancel();
  const [row] =
    await sql`SELECT kind, content_type, size_bytes, sha256 FROM eval_artifacts WHERE job_id = ${job.id}`;
  assert.deepEqual({ ...row }, {
    kind: "recording",
    contentType: "audio/wav",
    sizeBytes: 1000,
    sha256: row.sha256,
  });
  assert.match(row.sha256, /^[0-9a-f]{64}$/);
  agent.send({
    type: "job.result",
    jobId: job.id,
    report: {
      metrics: {
        response_latency: { median: 1, sd: 0, p90: 1, n: 1 },
        interrupt_latency: { median: null, sd: null, p90: null, n: 0 },
        network_resilience: null,
        noise_reduction: null,
        naturalness: null,
      },
      turns: [],
    },
    artifacts: [{ name: "recording-1.wav", kind: "recording", contentType: "audio/wav" }],
  });
  await agent.waitFor((m) => m.type === "job.ack");
  await agent.kill();
});

Deno.test(
  "admin agent-token routes: 401, 403, 400 naming the field, create shows the raw token once, revoke 404",
  async () => {
    const { app } = await createTestApp(sql, { orchestrator: server.orch });
    // The admin routes are for the administrator's browser session (API keys count only on /api/v1).
    const admin = await signedIn(sql, { isAdmin: true });
    const basic = await signedIn(sql);
    const inBrowser = (who: { cookie: string }, extra: Record<string, string> = {}) => ({
      cookie: who.cookie,
      origin: "http://localhost",
      "sec-fetch-site": "same-origin",
      ...extra,
    });
    assert.equal((await app.request("/api/admin/agent-tokens")).status, 401);
    assert.equal((await app.request("/api/admin/agent-tokens", { headers: inBrowser(basic) })).status, 403);
    const adminKey = await apiKeyFor(sql, admin.id);
    assert.equal(
      (await app.request("/api/admin/agent-tokens", { headers: { authorization: `Bearer ${adminKey}` } }))
        .status,
      401,
    );
    const bad = await app.request("/api/admin/agent-tokens", {
      method: "POST",
      headers: inBrowser(admin, { "content-type": "application/json" }),
      body: JSON.stringify({ name: "x", region: "Not A Region" }),
    });
    assert.equal(bad.status, 400);
    const badBody = await bad.json();
    assert.equal(badBody.error.code, "invalid_input");
    assert.match(badBody.error.message, /^region: /);
    const past = await app.request("/api/admin/agent-tokens", {
      method: "POST",
      headers: inBrowser(admin, { "content-type": "application/json" }),
      body: JSON.stringify({ name: "x", region: "eu", expiresAt: "2001-01-01T00:00:00Z" }),
    });
    assert.equal(past.status, 400);
    assert.match((await past.json()).error.message, /^expiresAt: must be in the future/);
    const created = await app.request("/api/admin/agent-tokens", {
      method: "POST",
      headers: inBrowser(admin, { "content-type": "application/json" }),
      body: JSON.stringify({
        name: "frankfurt-1",
        region: "eu-central",
        expiresAt: new Date(Date.now() + 86_400_000).toISOString(),
      }),
    });
    assert.equal(created.status, 201);
    const { token, info } = await created.json();
    assert.match(token, /^vox_agent_[A-Za-z0-9]{40}$/);
    assert.equal(info.region, "eu-central");
    assert.ok(token.startsWith(info.displayPrefix));
    const list = await (await app.request("/api/admin/agent-tokens", { headers: inBrowser(admin) })).text();
    assert.ok(list.includes(info.displayPrefix));
    assert.equal(list.includes(token), false, "the raw token is never listed");
    const [{ n }] = await sql`SELECT count(*)::int AS n FROM eval_agent_tokens WHERE token_hash = ${token}`;
    assert.equal(n, 0, "the raw token is not stored");
    assert.equal(
      (await app.request(`/api/admin/agent-tokens/${info.id}`, {
        method: "DELETE",
        headers: inBrowser(basic),
      }))
        .status,
      403,
    );
    const del = await app.request(`/api/admin/agent-tokens/${info.id}`, {
      method: "DELETE",
      headers: inBrowser(admin),
    });
    assert.equal(del.status, 200);
    const missing = await app.request(`/api/admin/agent-tokens/99999999`, {
      method: "DELETE",
      headers: inBrowser(admin),
    });
    assert.equal(missing.status, 404);
    const badId = await app.request(`/api/admin/agent-tokens/abc`, {
      method: "DELETE",
      headers: inBrowser(admin),
    });
    assert.equal(badId.status, 400);
    assert.match((await badId.json()).error.message, /^id: /);
  },
);

Deno.test("an agent that lowers its capacity in a heartbeat is offered only that many jobs, and more once it raises it", async () => {
  const token = await agentToken(sql, "gov");
  const pair = await insertEvalPair(sql);
  const agent = await SimAgent.connect({
    baseUrl: base,
    token,
    name: "governed",
    region: "gov",
    auto: false,
    heartbeat: false,
    capacity: 2,
  });
  // The server handles an agent's frames in order: the error answering the progress of a job it
  // does not hold confirms the heartbeat before it was taken.
  agent.send({ type: "heartbeat", activeJobs: [], capacity: 1 });
  agent.send({ type: "job.progress", jobId: 999_999_999, step: 0, totalSteps: 0 });
  await eventually(
    () => agent.messages.some((m) => m.type === "error" && m.jobId === 999_999_999),
    "confirmed",
  );
  await createJob(sql, { ...pair, region: "gov" });
  await createJob(sql, { ...pair, region: "gov" });
  await eventually(() => agent.offers.length === 1, "one offer");
  agent.send({ type: "job.accepted", jobId: agent.offers[0].jobId });
  await sleep(300);
  assert.equal(agent.offers.length, 1, "the second job waits while the agent holds its one slot");
  agent.send({ type: "heartbeat", activeJobs: [agent.offers[0].jobId], capacity: 2 });
  await eventually(() => agent.offers.length === 2, "the second offer once the capacity is back");
  await agent.kill();
});
