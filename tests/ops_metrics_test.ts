// GET /metrics: the Prometheus endpoint for operators (not /api/v1/metrics, the public one).
import assert from "node:assert/strict";
import { createLogger } from "../lib/log.ts";
import { Orchestrator } from "../lib/orchestrator.ts";
import { createJob } from "../lib/queue.ts";
import { SimAgent } from "../bench/sim_agent.ts";
import { createTestApp, testConfig } from "./_app.ts";
import { createTestDatabase } from "./_db.ts";
import { agentToken, insertEvalPair, serveApp } from "./_orch.ts";
import { eventually } from "./_wait.ts";

const db = await createTestDatabase();
const sql = db.sql;
const TOKEN = "a-long-enough-metrics-token";
const orch = new Orchestrator({
  sql,
  serverId: "metrics-test",
  log: createLogger({ serverId: "metrics-test" }),
  pollMs: 1000,
  reapMs: 200,
  flushMs: 100,
  rollupMs: 200,
  probeMs: 200,
});
await orch.start();
const { app } = await createTestApp(sql, {
  orchestrator: orch,
  serverId: "metrics-test",
  config: testConfig({ METRICS_TOKEN: TOKEN }),
});
const server = await serveApp(app, orch);
const baseUrl = `http://127.0.0.1:${server.addr.port}`;
Deno.test.afterAll(async () => {
  await orch.stop();
  await server.shutdown();
  await db.close();
});
const pair = await insertEvalPair(sql);

/** One sample of the exposition. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/**
 * A strict reading of the text exposition format 0.0.4: HELP and TYPE before a family's
 * samples, names and label syntax as the format defines them, numeric values. Throws on
 * the first line that does not conform.
 */
function parseExposition(text: string): { types: Map<string, string>; samples: Sample[] } {
  assert.ok(text.endsWith("\n"), "the exposition ends with a newline");
  const types = new Map<string, string>();
  const helped = new Set<string>();
  const samples: Sample[] = [];
  const name = "[a-zA-Z_:][a-zA-Z0-9_:]*";
  const label = `[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\\\\n]|\\\\[\\\\"n])*"`;
  const sampleRe = new RegExp(`^(${name})(\\{(?:${label}(?:,${label})*)?\\})? (\\S+)$`);
  for (const line of text.slice(0, -1).split("\n")) {
    let m;
    if ((m = /^# HELP (\S+) (.*)$/.exec(line))) {
      assert.ok(!helped.has(m[1]), `one HELP for ${m[1]}`);
      helped.add(m[1]);
    } else if ((m = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line))) {
      assert.ok(!types.has(m[1]), `one TYPE for ${m[1]}`);
      types.set(m[1], m[2]);
    } else if ((m = sampleRe.exec(line))) {
      const family = m[1].replace(/_(bucket|sum|count)$/, "");
      const type = types.get(m[1]) ?? types.get(family);
      assert.ok(type, `TYPE of ${m[1]} comes before its samples`);
      assert.ok(helped.has(m[1]) || helped.has(family), `HELP of ${m[1]}`);
      const value = m[3] === "+Inf" ? Infinity : m[3] === "-Inf" ? -Infinity : Number(m[3]);
      assert.ok(m[3] === "NaN" || !Number.isNaN(value), `a number: ${line}`);
      const labels: Record<string, string> = {};
      for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
        labels[l[1]] = l[2].replace(/\\n/g, "\n").replace(/\\(.)/g, "$1");
      }
      samples.push({ name: m[1], labels, value });
    } else {
      assert.fail(`not a line of the text format: ${JSON.stringify(line)}`);
    }
  }
  return { types, samples };
}

async function scrape(): Promise<{ types: Map<string, string>; samples: Sample[] }> {
  const res = await fetch(`${baseUrl}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8");
  return parseExposition(await res.text());
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  const s = samples.find((s) =>
    s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)
  );
  return s?.value ?? 0;
}

Deno.test("without METRICS_TOKEN configured, /metrics does not exist", async () => {
  const { app: plain } = await createTestApp(sql, { orchestrator: orch });
  const res = await plain.request("/metrics", { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.equal(res.status, 404);
  await res.body?.cancel();
});

Deno.test("/metrics refuses a missing or wrong token with 401 and does not echo it", async () => {
  for (
    const authorization of [
      undefined,
      "Bearer wrong-token-of-some-length",
      `Basic ${btoa(`x:${TOKEN}`)}`,
      TOKEN,
    ]
  ) {
    const res = await app.request("/metrics", { headers: authorization ? { authorization } : {} });
    assert.equal(res.status, 401, `authorization: ${authorization}`);
    assert.equal(res.headers.get("www-authenticate"), 'Bearer realm="vox-metrics"');
    assert.match(res.headers.get("content-type") ?? "", /^application\/json/);
    const text = await res.text();
    assert.equal(JSON.parse(text).error.code, "unauthorized");
    assert.ok(!text.includes(TOKEN) && !text.includes("wrong-token"));
  }
});

Deno.test("/metrics is the Prometheus text format with the families operators need", async () => {
  const { types, samples } = await scrape();
  for (
    const [name, type] of [
      ["vox_jobs", "gauge"],
      ["vox_job_transitions_total", "counter"],
      ["vox_queue_depth", "gauge"],
      ["vox_agents", "gauge"],
      ["vox_http_requests_total", "counter"],
      ["vox_dispatch_latency_seconds", "histogram"],
      ["vox_listener_degraded", "gauge"],
      ["vox_agent_connections", "gauge"],
    ]
  ) assert.equal(types.get(name), type, name);
  assert.deepEqual(
    samples.filter((s) => s.name === "vox_jobs").map((s) => s.labels.status).sort(),
    ["pending", "running"],
  );
  const buckets = samples.filter((s) => s.name === "vox_dispatch_latency_seconds_bucket");
  assert.equal(buckets.at(-1)?.labels.le, "+Inf");
  for (let i = 1; i < buckets.length; i++) assert.ok(buckets[i].value >= buckets[i - 1].value, "cumulative");
  assert.equal(buckets.at(-1)?.value, value(samples, "vox_dispatch_latency_seconds_count"));
  assert.equal(value(samples, "vox_server_info", { server_id: "metrics-test" }), 1);
});

Deno.test("/metrics values move when jobs are queued, dispatched and completed", async () => {
  const region = "metrics-eu";
  const before = (await scrape()).samples;
  assert.equal(value(before, "vox_queue_depth", { region }), 0);

  for (let i = 0; i < 3; i++) await createJob(sql, { ...pair, region });
  const queued = (await scrape()).samples;
  assert.equal(value(queued, "vox_queue_depth", { region }), 3);
  assert.equal(
    value(queued, "vox_jobs", { status: "pending" }),
    value(before, "vox_jobs", { status: "pending" }) + 3,
  );
  assert.ok(value(queued, "vox_queue_oldest_seconds", { region }) >= 0);

  const agent = await SimAgent.connect({
    baseUrl,
    token: await agentToken(sql, region),
    name: "m-1",
    region,
    // One at a time: the first job comes from a dispatch pass, the others with the result
    // of the one before (lib/job_completer.ts); both paths feed the dispatch histogram.
    capacity: 1,
  });
  try {
    const after = await eventually(async () => {
      const { samples } = await scrape();
      return value(samples, "vox_job_transitions_total", { status: "completed" }) ===
            value(before, "vox_job_transitions_total", { status: "completed" }) + 3 &&
          value(samples, "vox_agents", { region, state: "IDLE" }) === 1
        ? samples
        : null;
    }, "three completed jobs and an idle agent in /metrics");
    assert.equal(value(after, "vox_queue_depth", { region }), 0);
    assert.equal(
      value(after, "vox_jobs", { status: "pending" }),
      value(before, "vox_jobs", { status: "pending" }),
    );
    // Every state of the region is a sample, zeros included, so alerts see "none online".
    assert.equal(
      after.find((s) => s.name === "vox_agents" && s.labels.region === region && s.labels.state === "OFFLINE")
        ?.value,
      0,
    );
    assert.equal(value(after, "vox_agent_connections", { region }), 1);
    assert.equal(
      value(after, "vox_dispatch_latency_seconds_count"),
      value(before, "vox_dispatch_latency_seconds_count") + 3,
    );
    assert.ok(
      value(after, "vox_http_requests_total", { method: "GET", code: "200" }) >
        value(before, "vox_http_requests_total", { method: "GET", code: "200" }),
      "the scrapes themselves are counted",
    );
  } finally {
    await agent.kill();
  }
});
