// docs/deploy.md's first run without containers: a real server process on an external
// database, /api/setup (what the /setup page posts), then deploy/compose/first_run.sh (curl)
// creating the agent token, a real eval agent with Chromium connecting with it, and the
// script measuring the bundled demo page (served here as Caddy serves it in compose.yaml).
import assert from "node:assert/strict";
import { join } from "node:path";
import { DEMO_DIR, DEMO_EVAL_SET } from "../lib/demo.ts";
import { freePort } from "../lib/embedded_pg.ts";
import { serveFile } from "../lib/static_files.ts";
import { createTestDatabase } from "./_db.ts";
import { type ServerProcess, spawnServer } from "./_orch.ts";
import { eventually } from "./_wait.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const INIT_CODE = "first-run-init-code";
const ADMIN = { email: "admin@example.com", password: "a long first-run password 42" };

const db = await createTestDatabase();
const server: ServerProcess = await spawnServer(db.url, { env: { INIT_CODE, TRUST_PROXY: "true" } });
// The demo page as compose's Caddy serves it on :8081: plain files, no policy of Vox's.
const pagePort = freePort();
const page = Deno.serve(
  { port: pagePort, hostname: "127.0.0.1", onListen() {} },
  (req) =>
    serveFile(req, join(DEMO_DIR, "agent"), new URL(req.url).pathname.slice(1), { cacheControl: "no-store" }),
);
let agent: Deno.ChildProcess | null = null;
Deno.test.afterAll(async () => {
  try {
    agent?.kill("SIGTERM");
    await agent?.status;
  } catch { /* already gone */ }
  await page.shutdown();
  await server.stop("SIGTERM");
  await db.close();
});

async function firstRun(step: "token" | "measure"): Promise<string> {
  const out = await new Deno.Command("sh", {
    args: [join(ROOT, "deploy/compose/first_run.sh"), step],
    env: {
      VOX_URL: server.baseUrl,
      VOX_ADMIN_EMAIL: ADMIN.email,
      VOX_ADMIN_PASSWORD: ADMIN.password,
      VOX_REGION: "local",
      VOX_DEMO_PAGE_URL: `http://127.0.0.1:${pagePort}/index.html`,
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.ok(out.success, `first_run.sh ${step} failed:\n${text}\n${new TextDecoder().decode(out.stderr)}`);
  return text.trim();
}

Deno.test("the compose eval set is the demo's own", async () => {
  const committed = JSON.parse(await Deno.readTextFile(join(ROOT, "deploy/compose/demo_eval_set.json")));
  assert.deepEqual(committed, DEMO_EVAL_SET);
});

Deno.test("first run: setup, agent token, agent online, a measured result of the demo page", async () => {
  const setup = await fetch(`${server.baseUrl}/api/setup`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ initCode: INIT_CODE, admin: ADMIN, scout: { email: "scout@example.com" } }),
  });
  assert.equal(setup.status, 201, await setup.text());

  const token = await firstRun("token");
  assert.match(token, /^vox_agent_/);

  agent = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", join(ROOT, "agent/main.ts")],
    env: {
      VOX_SERVER_URL: server.baseUrl,
      VOX_AGENT_TOKEN: token,
      VOX_AGENT_REGION: "local",
      VOX_AGENT_NAME: "compose-agent-1",
      VOX_AGENT_ASSETS_DIR: join(DEMO_DIR, "caller"),
      VOX_AGENT_GRACE_SECONDS: "5",
      // The page is on loopback here, as it is on the private compose network there.
      VOX_AGENT_EGRESS_ALLOW: `127.0.0.1:${pagePort}`,
    },
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  await eventually(
    async () => {
      const res = await fetch(`${server.baseUrl}/api/v1/agents`);
      const { agents } = await res.json() as { agents: { region: string; state: string }[] };
      return agents.some((a) => a.region === "local" && a.state === "IDLE");
    },
    "the agent to be listed IDLE in region local",
    60_000,
  );

  const { results } = JSON.parse(await firstRun("measure")) as {
    results: { region: string; responseLatency: { median: number }; interruptLatency: { median: number } }[];
  };
  assert.equal(results.length, 1);
  assert.equal(results[0].region, "local");
  // The demo page answers 900 ms after the caller stops and stops 250 ms into a barge-in.
  const { responseLatency, interruptLatency } = results[0];
  assert.ok(Math.abs(responseLatency.median - 900) < 150, `response latency ${responseLatency.median} ms`);
  assert.ok(Math.abs(interruptLatency.median - 250) < 150, `interrupt latency ${interruptLatency.median} ms`);
});
