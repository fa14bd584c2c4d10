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
import { freePort } from "../lib/embedded_pg.ts";
import { createTestApp, testConfig } from "./_app.ts";
import { activationTokenIn, memoryMailer, signedIn } from "./_auth.ts";
import { hydrated, launchBrowser } from "./_browser.ts";
import { createTestDatabase, setSetting } from "./_db.ts";
import { serveApp } from "./_orch.ts";
import { eventually } from "./_wait.ts";

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
const port = freePort();
const origin = `http://127.0.0.1:${port}`;
const mailer = memoryMailer();
const { app } = await createTestApp(sql, {
  orchestrator: orch,
  serverId: "console-journey",
  mailer,
  config: testConfig({ PUBLIC_URL: origin }),
});
// The production listener: agent sockets are upgraded by it, not by the app (lib/http_server.ts).
const server = await serveApp(app, orch, port);
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

async function fill(page: Page, selector: string, value: string) {
  await page.$eval(selector, (el) => ((el as HTMLInputElement).value = ""));
  await page.type(selector, value);
}

/** Fills a page's form fields by name and submits it, waiting for the next page. */
async function submit(page: Page, fields: Record<string, string>) {
  for (const [name, value] of Object.entries(fields)) await fill(page, `main [name="${name}"]`, value);
  await Promise.all([page.waitForNavigation(), page.click("main button[type=submit]")]);
}

Deno.test("sign up, activate, create, run, watch live, open the result, see the marked interval, play it", async () => {
  const context = await chromium.browser.createBrowserContext();
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(String(e)));

  // A new user: sign up, the mailed activation link, the password chosen at sign-up, log in.
  await page.goto(`${origin}/signup`);
  await submit(page, {
    name: "Journey June",
    email: "june@example.test",
    password: "june's long passphrase",
  });
  assert.match(await page.content(), /Check your email/);
  const mail = mailer.sent.at(-1)!;
  assert.equal(mail.to, "june@example.test");
  const link = `${origin}/activate/${activationTokenIn(mail.text)}`;
  assert.ok(mail.text.includes(link), mail.text);
  await page.goto(link);
  await submit(page, { password: "june's long passphrase" });
  await page.goto(`${origin}/console/projects`);
  assert.match(page.url(), /\/login\?next=/);
  await submit(page, { login: "june@example.test", password: "june's long passphrase" });
  assert.equal(new URL(page.url()).pathname, "/console/projects");
  const session = (await context.cookies()).find((c) => c.name === "vox_session")!;
  const u = { cookie: `${session.name}=${session.value}` };

  // A project.
  await hydrated(page);
  assert.match(await page.$eval("main", (el) => el.textContent ?? ""), /Default/);
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

  // On a phone (390 px) the turns are all there and readable, and nothing scrolls sideways.
  await page.setViewport({ width: 390, height: 844 });
  const phone = await page.$$eval("tr[data-turn]", (rows) =>
    rows.map((r) => {
      const box = r.getBoundingClientRect();
      const cell = r.querySelector<HTMLElement>("td[data-label=Latency]")!;
      return {
        latency: cell.textContent,
        // Each cell is labelled on a phone (the header row is hidden there).
        label: getComputedStyle(cell, "::before").content,
        height: box.height,
        right: box.right,
      };
    }));
  assert.equal(phone.length, result.turns.length);
  phone.forEach((row, i) => {
    const latency = (result.turns as { latency_ms: number }[])[i].latency_ms;
    assert.ok(row.height > 20 && row.right <= 390, JSON.stringify(row));
    assert.deepEqual([row.latency, row.label], [`${Math.round(latency)} ms`, '"Latency"']);
  });
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= innerWidth));
  await page.setViewport({ width: 1280, height: 800 });

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

Deno.test("a principal marks a pair mainline in the console, runs it, and it appears on the leaderboard", async () => {
  const p = await signedIn(sql, { role: "principal", name: "Pia Principal" });
  const post = async (path: string, body: unknown) => {
    const res = await app.request(path, {
      method: "POST",
      headers: { cookie: p.cookie, "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    assert.equal(res.status, 201, path);
    return await res.json();
  };
  const wf = await post("/api/v1/workflows", {
    projectId: p.defaultProjectId,
    name: "Mainline bot",
    provider: { name: "Mainline Labs" },
    yaml: `url: ${fixtures.url}agent/index.html?out=webaudio&delay=600\nsteps: []\n`,
  });
  const es = await post("/api/v1/eval-sets", {
    projectId: p.defaultProjectId,
    name: "Mainline questions",
    yaml:
      "steps:\n  - action: wait_for_element\n    selector: \"body[data-ready='1']\"\n  - action: speak\n    file: hello.wav\n  - action: wait_for_voice\n    metrics: elapsed_time\n",
  });
  const providerId = wf.provider.id as string;
  const onBoard = async () =>
    (await (await app.request("/leaderboard")).text()).includes(`data-provider="${providerId}"`);
  assert.equal(await onBoard(), false);

  const context = await chromium.browser.createBrowserContext();
  const page = await context.newPage();
  const [name, value] = p.cookie.split("=");
  await context.setCookie({ name, value, domain: "127.0.0.1", path: "/", httpOnly: true });
  const errors: string[] = [];
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  page.on("pageerror", (e) => errors.push(String(e)));
  try {
    // Mark both mainline on their console pages.
    for (const path of [`/console/eval-sets/${es.id}`, `/console/workflows/${wf.id}`]) {
      await page.goto(`${origin}${path}`);
      await hydrated(page);
      assert.equal(await page.$eval("#edit-isMainline", (el) => (el as HTMLInputElement).checked), false);
      await page.click("#edit-isMainline");
      await Promise.all([page.waitForNavigation(), page.click("#edit button[type=submit]")]);
      await hydrated(page);
      assert.match(await page.$eval(".c-lead", (el) => el.textContent ?? ""), /mainline/);
    }
    // Run it where the agent is; the result comes back measured.
    await page.select("#run-evalSetId", String(es.id));
    await page.select("#run-region", region);
    await Promise.all([page.waitForNavigation(), page.click("#run button[type=submit]")]);
    assert.match(page.url(), /\/console\/jobs\/\d+$/);
    await page.waitForSelector("[data-testid=metrics]", { timeout: 120_000 });
    const jobId = Number(page.url().split("/").pop());
    const [result] = await sql`SELECT is_mainline FROM eval_results WHERE job_id = ${jobId}`;
    assert.equal(result.isMainline, true);

    // The public leaderboard shows the provider once the rollup has folded the result.
    await eventually(onBoard, "the provider on the leaderboard", 30_000);
    await page.goto(`${origin}/leaderboard`);
    await page.waitForSelector(`tr[data-provider="${providerId}"]`);
    assert.match(
      await page.$eval(`tr[data-provider="${providerId}"]`, (el) => el.textContent ?? ""),
      /Mainline Labs/,
    );
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});
