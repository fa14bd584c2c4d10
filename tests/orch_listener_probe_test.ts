// Server processes whose LISTEN connection goes through a pooler that swallows notifications
// (a proxy dropping every NotificationResponse): the process notices, says so in its log,
// /readyz and /metrics, and polling keeps its jobs flowing; DATABASE_LISTEN_URL fixes it.
import assert from "node:assert/strict";
import { ListenerProbe } from "../lib/listener_probe.ts";
import type { Logger } from "../lib/log.ts";
import { createJob } from "../lib/queue.ts";
import { SimAgent } from "../bench/sim_agent.ts";
import { createTestDatabase } from "./_db.ts";
import { agentToken, insertEvalPair, type ServerProcess, spawnServer } from "./_orch.ts";
import { startNotifySwallowingProxy } from "./_pg_proxy.ts";
import { eventually } from "./_wait.ts";

const db = await createTestDatabase();
const sql = db.sql;
const proxy = startNotifySwallowingProxy(db.url);
const METRICS_TOKEN = "metrics-token-for-the-listener-test";
const probe = { VOX_LISTENER_PROBE_MS: "300", METRICS_TOKEN };
const [swallowed, direct, split]: ServerProcess[] = await Promise.all([
  // Everything through the pooler; polling is its only way to learn of new jobs.
  spawnServer(proxy.urlFor(db.url), { env: { ...probe, VOX_DISPATCH_POLL_MS: "300" }, captureLog: true }),
  // Direct, with polling out of reach of the test's waits.
  spawnServer(db.url, { env: { ...probe, VOX_DISPATCH_POLL_MS: "600000" }, captureLog: true }),
  // Pool through the pooler, LISTEN direct; polling out of reach too.
  spawnServer(proxy.urlFor(db.url), {
    env: { ...probe, VOX_DISPATCH_POLL_MS: "600000", DATABASE_LISTEN_URL: db.url },
    captureLog: true,
  }),
]);
Deno.test.afterAll(async () => {
  await Promise.all([swallowed, direct, split].map((s) => s.stop("SIGTERM")));
  await proxy.close();
  await db.close();
});
const pair = await insertEvalPair(sql);

async function listenerState(
  server: ServerProcess,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${server.baseUrl}/readyz`);
  return { status: res.status, body: await res.json() };
}

async function metricValue(server: ServerProcess, name: string): Promise<number | undefined> {
  const res = await fetch(`${server.baseUrl}/metrics`, {
    headers: { authorization: `Bearer ${METRICS_TOKEN}` },
  });
  assert.equal(res.status, 200);
  const line = (await res.text()).split("\n").find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.split(" ")[1]);
}

async function completedIn(region: string): Promise<number> {
  const [{ n }] =
    await sql`SELECT count(*)::int AS n FROM eval_jobs WHERE region = ${region} AND status = 'completed'`;
  return n;
}

Deno.test("a listener behind a NOTIFY-swallowing pooler is reported degraded in the log, /readyz and /metrics", async () => {
  const degraded = await eventually(async () => {
    const r = await listenerState(swallowed);
    const listener = r.body.listener as { state: string; reason?: string } | undefined;
    return listener?.state === "degraded" ? r : null;
  }, "the swallowing process to report its listener degraded");
  // Still ready: polling dispatches, and failing readiness would empty the load balancer.
  assert.equal(degraded.status, 200);
  assert.equal(degraded.body.status, "ready");
  assert.match(String((degraded.body.listener as { reason: string }).reason), /not delivered/);
  assert.ok(proxy.dropped > 0, "the proxy dropped notifications");

  const warning = swallowed.log.map((l) => {
    try {
      return JSON.parse(l);
    } catch {
      return null;
    }
  }).find((e) => e?.level === "warn" && /LISTEN connection does not deliver/.test(e.msg));
  assert.ok(warning, `a warning in the log; got:\n${swallowed.log.join("\n")}`);
  assert.match(warning.msg, /DATABASE_LISTEN_URL/);
  assert.equal(await metricValue(swallowed, "vox_listener_degraded"), 1);

  // The same probe through direct connections succeeds, so it is the pooler being detected.
  for (const server of [direct, split]) {
    await eventually(async () => {
      const r = await listenerState(server);
      return r.status === 200 && (r.body.listener as { state: string }).state === "ok";
    }, `${server.baseUrl} to report its listener ok`);
    assert.equal(await metricValue(server, "vox_listener_degraded"), 0);
    assert.ok(!server.log.some((l) => /LISTEN connection does not deliver/.test(l)));
  }
});

Deno.test("polling keeps jobs flowing through the process whose listener is deaf", async () => {
  const region = "deaf";
  const token = await agentToken(sql, region);
  const agent = await SimAgent.connect({
    baseUrl: swallowed.baseUrl,
    token,
    name: "deaf-1",
    region,
    capacity: 2,
  });
  try {
    const droppedBefore = proxy.dropped;
    for (let i = 0; i < 12; i++) await createJob(sql, { ...pair, region });
    await eventually(async () => await completedIn(region) === 12, "12 jobs completed by polling", 30_000);
    assert.equal(agent.offers.length, 12);
    assert.ok(proxy.dropped > droppedBefore, "the jobs' NOTIFYs were swallowed on the way");
    const [{ n }] =
      await sql`SELECT count(*)::int AS n FROM eval_results r JOIN eval_jobs j ON j.id = r.job_id
                              WHERE j.region = ${region}`;
    assert.equal(n, 12, "each job measured once");
  } finally {
    await agent.kill();
  }
});

Deno.test("DATABASE_LISTEN_URL: pool through the pooler, LISTEN direct, jobs dispatched by NOTIFY", async () => {
  const region = "split";
  const token = await agentToken(sql, region);
  const agent = await SimAgent.connect({ baseUrl: split.baseUrl, token, name: "split-1", region });
  try {
    // Its poll is ten minutes away: only a delivered NOTIFY can bring these jobs.
    for (let i = 0; i < 5; i++) await createJob(sql, { ...pair, region });
    await eventually(async () => await completedIn(region) === 5, "5 jobs completed through NOTIFY");
    assert.equal(agent.offers.length, 5);
  } finally {
    await agent.kill();
  }
});

Deno.test("the probe judges only overdue probes, and logs the recovery when one is heard again", async () => {
  const lines: [string, string][] = [];
  const log: Logger = {
    debug: () => {},
    info: (m) => lines.push(["info", m]),
    warn: (m) => lines.push(["warn", m]),
    error: (m) => lines.push(["error", m]),
    child: () => log,
  };
  // Probes go out through the real pool; nothing listens, so none comes back by itself.
  let now = 0;
  const probe = new ListenerProbe(sql, "probe-unit", 1000, log, () => now);
  await probe.tick();
  assert.equal(probe.health().state, "checking");
  now = 999;
  await probe.tick(); // the first probe is not overdue yet
  assert.equal(probe.health().state, "checking");
  now = 1000;
  await probe.tick();
  assert.equal(probe.health().state, "degraded");
  assert.deepEqual(lines.map(([level]) => level), ["warn"]);
  now = 5000;
  await probe.tick(); // still deaf: no second warning
  assert.equal(lines.length, 1);

  probe.received(JSON.stringify({ serverId: "another-process", seq: 99 }));
  probe.received("not json");
  assert.equal(probe.health().state, "degraded", "other processes' probes and noise do not count");
  probe.received(JSON.stringify({ serverId: "probe-unit", seq: 4 }));
  const health = probe.health();
  assert.equal(health.state, "ok");
  assert.equal(health.probesSent, 4);
  assert.equal(health.probesReceived, 1);
  assert.equal(health.reason, undefined);
  assert.deepEqual(lines.map(([level]) => level), ["warn", "info"]);
  assert.match(lines[1][1], /delivers notifications again/);
});
