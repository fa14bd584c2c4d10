// A daemon against a real server (createApp + Orchestrator on a test database, real Chromium)
// given configs an attacker could write: a job asking for more time than its deadline fails at
// the deadline and the agent takes the next job; a config naming a file outside the agent's
// assets fails as an invalid config before any page opens; and a daemon killed with SIGKILL
// mid-job leaves none of the processes it started.
import assert from "node:assert/strict";
import { join } from "node:path";
import { createAgentToken } from "../lib/agent_tokens.ts";
import { Orchestrator } from "../lib/orchestrator.ts";
import { createJob } from "../lib/queue.ts";
import { createLogger } from "../lib/log.ts";
import { EvalDaemon } from "../agent/daemon.ts";
import { daemonSettings } from "../agent/daemon_settings.ts";
import { createTestApp } from "./_app.ts";
import { serveApp } from "./_orch.ts";
import { createUser } from "./_auth.ts";
import { createTestDatabase, setSetting } from "./_db.ts";
import { alive, descendants } from "./_procs.ts";
import { eventually } from "./_wait.ts";
import { serveReferenceAgent } from "../bench/reference_agent.ts";

const db = await createTestDatabase();
const sql = db.sql;
const fixtures = serveReferenceAgent();
const HELLO = new URL("./fixtures/vat/assets/hello.wav", import.meta.url).pathname;
const REPO = new URL("..", import.meta.url).pathname;

// The agent's assets: hello.wav, and a link that points out of the folder.
const assets = await Deno.makeTempDir({ prefix: "vox-limits-assets-" });
await Deno.copyFile(HELLO, join(assets, "hello.wav"));
await Deno.symlink("/etc/hostname", join(assets, "out.wav"));

// A page that counts its visitors: a refused config must never reach it.
let pageHits = 0;
const counted = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
  pageHits++;
  return new Response("<!doctype html><body data-ready='1'>", { headers: { "content-type": "text/html" } });
});

await setSetting(sql, "agents.heartbeat_interval_seconds", 1);
const orch = new Orchestrator({
  sql,
  serverId: "limits-test",
  log: createLogger({ serverId: "limits-test" }),
  pollMs: 1000,
  reapMs: 200,
  flushMs: 100,
  rollupMs: 200,
});
await orch.start();
const { app } = await createTestApp(sql, { orchestrator: orch, serverId: "limits-test" });
const server = await serveApp(app, orch);
const serverUrl = `http://127.0.0.1:${server.addr.port}`;

function settingsFor(region: string, token: string) {
  return {
    VOX_SERVER_URL: serverUrl,
    VOX_AGENT_TOKEN: token,
    VOX_AGENT_REGION: region,
    VOX_AGENT_NAME: `limits-${region}`,
    VOX_AGENT_ASSETS_DIR: assets,
    VOX_AGENT_GRACE_SECONDS: "2",
    // The pages are on loopback: the strict egress policy lets exactly them through.
    VOX_AGENT_EGRESS_ALLOW: `${fixtures.url},127.0.0.1:${counted.addr.port}`,
  };
}

const region = "limits-a";
const token = (await createAgentToken(sql, { name: "limits test", region })).token;
const daemon = new EvalDaemon(daemonSettings({}, settingsFor(region, token)), () => {});
daemon.start();
Deno.test.afterAll(async () => {
  await daemon.stop("test over");
  await orch.stop();
  await server.shutdown();
  await counted.shutdown();
  await fixtures.close();
  await Deno.remove(assets, { recursive: true });
  await db.close();
});

const user = await createUser(sql, { role: "principal" });
const [provider] = await sql`INSERT INTO providers (name, sku) VALUES ('Limits test', 0) RETURNING id`;

/** A workflow on `url` and an eval set of `steps`, inserted as stored configs (the API is bypassed on purpose). */
async function pair(url: string, steps: unknown[], background?: string) {
  const [w] = await sql`
    INSERT INTO workflows (project_id, provider_id, name, config, created_by)
    VALUES (${user.defaultProjectId}, ${provider.id}, 'limits', ${sql.json({ url, steps: [] })}, ${user.id})
    RETURNING id`;
  const [e] = await sql`
    INSERT INTO eval_sets (project_id, name, config, created_by)
    VALUES (${user.defaultProjectId}, 'limits', ${
    sql.json({ steps, ...(background ? { background } : {}) } as never)
  }, ${user.id})
    RETURNING id`;
  return { workflowId: w.id as number, evalSetId: e.id as number };
}

async function finished(jobId: number) {
  return await eventually(
    async () => {
      const [job] = await sql`SELECT status, error FROM eval_jobs WHERE id = ${jobId}`;
      return ["completed", "failed"].includes(job.status) ? job : null;
    },
    `job ${jobId} finished`,
    120_000,
  );
}

const REFERENCE = `${fixtures.url}agent/index.html?out=webaudio&delay=700`;
const ONE_TURN = [
  { action: "wait_for_element", selector: "body[data-ready='1']" },
  { action: "speak", file: "hello.wav" },
  { action: "wait_for_voice" },
];

Deno.test("a job asking for ten minutes of sleep fails at its deadline and the agent takes the next job", async () => {
  await setSetting(sql, "jobs.max_runtime_seconds", 3);
  const sleepy = await createJob(sql, {
    ...await pair(REFERENCE, [{ action: "sleep", time: 600_000 }, { action: "wait_for_voice" }]),
    region,
  });
  const failed = await finished(sleepy.id);
  assert.equal(failed.status, "failed");
  assert.match(failed.error, /ran past its deadline of 3 s/);
  await setSetting(sql, "jobs.max_runtime_seconds", 3600);
  const next = await createJob(sql, { ...await pair(REFERENCE, ONE_TURN), region });
  const done = await finished(next.id);
  assert.equal(done.status, "completed", done.error);
});

Deno.test("a daemon job naming a file outside the agent's assets fails as an invalid config and opens no page", async () => {
  const page = `http://127.0.0.1:${counted.addr.port}/`;
  const cases: [unknown[], string | undefined, RegExp][] = [
    // A stored config from before the schema refused paths: the agent refuses it too.
    [[{ action: "speak", file: "/etc/hostname" }], undefined, /invalid config: .*file: .*plain file name/],
    [[{ action: "speak", file: "../hello.wav" }], undefined, /invalid config: .*plain file name/],
    // A link in the agent's assets/ pointing out of it.
    [[{ action: "speak", file: "out.wav" }], undefined, /invalid config: .*out\.wav leads outside assets\//],
    [[{ action: "wait_for_voice" }], "out.wav", /invalid config: .*background noise: out\.wav leads outside/],
    // The job folder holds the configs themselves: not audio a config may name.
    [
      [{ action: "speak", file: "scenario.yaml" }],
      undefined,
      /invalid config: .*audio file not found: scenario\.yaml/,
    ],
  ];
  for (const [steps, background, message] of cases) {
    const job = await createJob(sql, { ...await pair(page, steps, background), region });
    const out = await finished(job.id);
    assert.equal(out.status, "failed", JSON.stringify(steps));
    assert.match(out.error, message);
    const [{ attempts }] = await sql`SELECT attempts FROM eval_jobs WHERE id = ${job.id}`;
    assert.equal(attempts, 1, "an invalid config is not retried");
  }
  assert.equal(pageHits, 0, "no request reached the page");
});

Deno.test("SIGKILL to a daemon mid-job leaves no Chromium or other process it started", async () => {
  const regionB = "limits-b";
  const tokenB = (await createAgentToken(sql, { name: "limits kill", region: regionB })).token;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "agent/main.ts", "daemon"],
    cwd: REPO,
    env: settingsFor(regionB, tokenB),
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const job = await createJob(sql, {
      ...await pair(REFERENCE, [...ONE_TURN, { action: "sleep", time: 300_000 }]),
      region: regionB,
    });
    // Mid-job: the sleep step is running in Chromium.
    await eventually(
      async () => {
        const [j] = await sql`SELECT progress FROM eval_jobs WHERE id = ${job.id}`;
        return JSON.stringify(j.progress ?? "").includes("sleep");
      },
      "the job reached its sleep step",
      120_000,
    );
    const started = descendants(child.pid);
    assert.ok(started.length >= 2, `the daemon runs Chromium: ${started}`);
    child.kill("SIGKILL");
    await child.status;
    const left = await eventually(
      () => started.every((p) => !alive(p)) ? "none" : null,
      () => `no process left; still running: ${started.filter(alive).join(", ")}`,
      10_000,
    );
    assert.equal(left, "none");
  } finally {
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await child.status;
  }
});
