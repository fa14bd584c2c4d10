// The console's main journey in Chromium against a real server and a real eval agent (an
// in-process vox_eval_agentd measuring the reference voice agent): a user creates a project,
// a workflow and an eval set in the console, runs it, watches it live, opens the result,
// sees the measured interval marked on the two-lane waveform and plays the recording.
import assert from "node:assert/strict";
import type { Page } from "puppeteer-core";
import { daemonSettings } from "../agent/daemon_settings.ts";
import { EvalDaemon } from "../agent/daemon.ts";
import { serveReferenceAgent } from "../bench/reference_agent.ts";
import { createAgentToken } from "../lib/agent_tokens.ts";
import { createLogger } from "../lib/log.ts";
import { Orchestrator } from "../lib/orchestrator.ts";
import { createTestApp } from "./_app.ts";
import { signedIn } from "./_auth.ts";
import { launchBrowser } from "./_browser.ts";
import { createTestDatabase, setSetting } from "./_db.ts";

const db = await createTestDatabase();
const sql = db.sql;
const fixtures = serveReferenceAgent();
await setSetting(sql, "agents.heartbeat_interval_seconds", 1);
const orch = new Orchestrator({
  sql,
  serverId: "console-journey",
  log: createLogger({ serverId: "console-journey" }),
  pollMs: 1000,
  reapMs: 200,
  flushMs: 100,
  rollupMs: 200,
});
await orch.start();
const { app } = await createTestApp(sql, { orchestrator: orch, serverId: "console-journey" });
const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, app.fetch);
const origin = `http://127.0.0.1:${server.addr.port}`;
const region = "journey-1";
const token = (await createAgentToken(sql, { name: "journey", region })).token;
const daemon = new EvalDaemon(
  daemonSettings({}, {
    VOX_SERVER_URL: origin,
    VOX_AGENT_TOKEN: token,
    VOX_AGENT_REGION: region,
    VOX_AGENT_NAME: "journey-agent",
    VOX_AGENT_ASSETS_DIR: new URL("./fixtures/vat/assets/", import.meta.url).pathname,
    VOX_AGENT_GRACE_SECONDS: "5",
    // The reference agent is on loopback: the strict egress policy lets exactly it through.
    VOX_AGENT_EGRESS_ALLOW: fixtures.url,
  }),
  () => {},
);
daemon.start();
const chromium = await launchBrowser();
Deno.test.afterAll(async () => {
  await chromium.close();
  await daemon.stop("test over");
  await orch.stop();
  await server.shutdown();
  await fixtures.close();
  await db.close();
});

async function hydrated(page: Page) {
  await page.waitForFunction(() =>
    [...document.querySelectorAll<HTMLElement>("[data-island]")].every((el) => el.dataset.hydrated)
  );
}

async function fill(page: Page, selector: string, value: string) {
  await page.$eval(selector, (el) => ((el as HTMLInputElement).value = ""));
  await page.type(selector, value);
}

Deno.test("create, run, watch live, open the result, see the marked interval and play the recording", async () => {
  const u = await signedIn(sql, { name: "Journey June" });
  const context = await chromium.browser.createBrowserContext();
  const page = await context.newPage();
  const [name, value] = u.cookie.split("=");
  await context.setCookie({ name, value, domain: "127.0.0.1", path: "/", httpOnly: true });
  const errors: string[] = [];
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(String(e)));

  // A project.
  await page.goto(`${origin}/console/projects`);
  await hydrated(page);
  await page.type("#new-project-name", "Launch");
  await Promise.all([page.waitForNavigation(), page.click("#new-project button[type=submit]")]);
  await hydrated(page);
  const projectId = await page.$eval(
    "tr[data-project]:last-of-type",
    (el) => (el as HTMLElement).dataset.project,
  );
  assert.match(
    await page.$eval("tr[data-project]:last-of-type", (el) => el.textContent ?? ""),
    /Launch.*0 of \d+ workflows/,
  );

  // An eval set and a workflow in it, from YAML.
  await page.goto(`${origin}/console/eval-sets?projectId=${projectId}`);
  await hydrated(page);
  await page.type("#new-eval-sets-name", "One question");
  await fill(
    page,
    "#new-eval-sets-yaml",
    "steps:\n  - action: wait_for_element\n    selector: \"body[data-ready='1']\"\n  - action: speak\n    file: hello.wav\n  - action: wait_for_voice\n    metrics: elapsed_time\n",
  );
  await Promise.all([page.waitForNavigation(), page.click("#new-eval-sets button[type=submit]")]);
  assert.equal(await page.$eval("h1", (el) => el.textContent), "One question");

  await page.goto(`${origin}/console/workflows?projectId=${projectId}`);
  await hydrated(page);
  await page.type("#new-workflows-name", "Reference agent");
  await page.type("#new-workflows-provider\\.name", "Reference");
  await fill(
    page,
    "#new-workflows-yaml",
    `url: ${fixtures.url}agent/index.html?out=webaudio&delay=700\nsteps: []\n`,
  );
  await Promise.all([page.waitForNavigation(), page.click("#new-workflows button[type=submit]")]);
  assert.equal(await page.$eval("h1", (el) => el.textContent), "Reference agent");
  await hydrated(page);

  // Run now, in the region where the agent is online.
  assert.equal(await page.$eval("#run-region", (el) => (el as HTMLSelectElement).value), region);
  await Promise.all([page.waitForNavigation(), page.click("#run button[type=submit]")]);
  assert.match(page.url(), /\/console\/jobs\/\d+$/);
  // Live: the status follows the job's event stream; when the job ends the page reloads once
  // and the server renders the result.
  const reloaded = page.waitForNavigation({ timeout: 120_000 });
  await page.waitForFunction(
    () => /live/.test(document.querySelector("[data-testid=job-status]")?.textContent ?? ""),
    { timeout: 60_000 },
  );
  await reloaded;
  await page.waitForSelector("[data-testid=metrics]", { timeout: 30_000 });
  assert.equal(
    await page.$eval("[data-testid=job-status]", (el) => (el as HTMLElement).dataset.status),
    "completed",
  );
  await hydrated(page);
  const metrics = await page.$eval("[data-testid=metrics]", (el) => el.textContent ?? "");
  assert.match(metrics, /n = 1/);
  const jobId = Number(page.url().split("/").pop());
  const [result] = await sql`SELECT turns FROM eval_results WHERE job_id = ${jobId}`;
  const turn = (result.turns as { latency_ms: number }[])[0];

  // The recording: two lanes, one marked response interval labelled with its latency.
  await page.waitForSelector("[data-testid=recording][data-state=ready]", { timeout: 30_000 });
  assert.equal(await page.$$eval(".c-wave", (c) => c.length), 2);
  const marks = await page.$$eval(".c-mark", (els) =>
    els.map((e) => ({
      label: e.textContent,
      start: Number((e as HTMLElement).dataset.start),
      end: Number((e as HTMLElement).dataset.end),
    })));
  assert.equal(marks.length, 1);
  assert.equal(marks[0].label, `${Math.round(turn.latency_ms)} ms`);
  assert.ok(Math.abs((marks[0].end - marks[0].start) * 1000 - turn.latency_ms) <= 1);
  // Its lane was drawn: the agent lane has ink.
  const ink = await page.$eval(".c-wave[data-lane=agent]", (c) => {
    const cv = c as HTMLCanvasElement;
    const d = cv.getContext("2d")!.getImageData(0, 0, cv.width, cv.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
    return n;
  });
  assert.ok(ink > 0);

  // Clicking the interval seeks a second before it and plays; the caller lane alone plays too.
  await page.click(".c-mark");
  await page.waitForFunction(() => {
    const a = document.querySelector("audio")!;
    return !a.paused && a.currentTime > 0;
  });
  const at = await page.$eval("audio", (a) => (a as HTMLAudioElement).currentTime);
  assert.ok(at >= Math.max(0, marks[0].start - 1) - 0.05, `seeked to ${at}`);
  await page.click(".c-lane-pick button:nth-child(2)");
  assert.equal(
    await page.$eval(".c-lane-pick button:nth-child(2)", (b) => b.getAttribute("aria-pressed")),
    "true",
  );

  // The downloads answer.
  const wav = await page.$eval(".c-downloads a[href*='/artifacts/']", (a) => (a as HTMLAnchorElement).href);
  const res = await fetch(wav, { headers: { cookie: u.cookie } });
  assert.equal(res.status, 200);
  assert.equal(new TextDecoder().decode((await res.arrayBuffer()).slice(0, 4)), "RIFF");

  // A second run of the same pair, then both side by side with a chart.
  await page.goto(
    `${origin}/console/workflows/${
      (await sql`SELECT workflow_id FROM eval_jobs WHERE id = ${jobId}`)[0].workflowId
    }`,
  );
  await hydrated(page);
  await Promise.all([page.waitForNavigation(), page.click("#run button[type=submit]")]);
  await page.waitForNavigation({ timeout: 120_000 });
  await page.waitForSelector("[data-testid=metrics]");
  await Promise.all([page.waitForNavigation(), page.click("a[href^='/console/compare?workflowId=']")]);
  await page.waitForSelector(".c-chart canvas[data-drawn='2']");
  assert.equal(await page.$$eval("tr[data-result]", (r) => r.length), 2);
  // Picking results by hand (a plain GET form) gives the same table.
  await page.goto(`${origin}/console/compare`);
  await page.click("input[name=ids]:nth-of-type(1)");
  const boxes = await page.$$("input[name=ids]");
  await boxes[1].click();
  await Promise.all([
    page.waitForNavigation(),
    page.click("form[action='/console/compare'] button[type=submit]"),
  ]);
  assert.equal(await page.$$eval("tr[data-result]", (r) => r.length), 2);
  assert.deepEqual(errors, []);
  await context.close();
});

Deno.test("the admin creates an agent token, starts an agent with the shown command and sees it online", async () => {
  const admin = await signedIn(sql, { isAdmin: true });
  const context = await chromium.browser.createBrowserContext();
  const page = await context.newPage();
  const [name, value] = admin.cookie.split("=");
  await context.setCookie({ name, value, domain: "127.0.0.1", path: "/", httpOnly: true });
  await page.goto(`${origin}/admin/console/workers`);
  await hydrated(page);
  await page.type("#new-token-name", "rack-7");
  await page.type("#new-token-region", "journey-admin");
  await page.click("#new-token button[type=submit]");
  await page.waitForSelector("[data-testid=new-token-command]");
  const command = await page.$eval("[data-testid=new-token-command]", (el) => el.textContent ?? "");
  const prefix = "deno task agent ";
  assert.ok(command.startsWith(prefix), command);

  // `deno task agent` is `deno run -A agent/main.ts` (deno.json); run exactly the shown arguments.
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "agent/main.ts",
      ...command.slice(prefix.length).split(" "),
      "--name",
      "rack-7-agent",
    ],
    cwd: new URL("..", import.meta.url).pathname,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    await Promise.all([
      page.waitForNavigation(),
      page.click("[data-testid=new-token-secret] p:last-child button"),
    ]);
    // The live table polls the agents API: the new agent appears, idle, without a reload.
    await page.waitForFunction(
      () => /rack-7-agent\s*journey-admin\s*IDLE/i.test(document.querySelector("main")?.textContent ?? ""),
      { timeout: 60_000 },
    );
    const [agent] = await sql`SELECT state, region FROM eval_agents WHERE name = 'rack-7-agent'`;
    assert.equal(agent.region, "journey-admin");
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await context.close();
  }
});
