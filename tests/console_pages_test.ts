// /console and /admin/console in a real browser: every page renders for its user without
// JavaScript, passes axe-core without serious or critical violations and logs no console
// errors; and the journeys that need the pages: a basic user at the workflow limit sees why
// and deletes one, a user creates an API key and uses it, the admin creates an agent token
// and is shown the command to start an agent with it.
import assert from "node:assert/strict";
import type { Browser, Page } from "puppeteer-core";
import { freePort } from "../lib/embedded_pg.ts";
import { axeProblems, sidewaysProblems } from "./_a11y.ts";
import { createTestApp, sessionApi } from "./_app.ts";
import { sessionFor, signedIn } from "./_auth.ts";
import { hydrated, launchBrowser, pageWithSession } from "./_browser.ts";
import { createTestDatabase } from "./_db.ts";

const db = await createTestDatabase();
const port = freePort();
const origin = `http://127.0.0.1:${port}`;
const { app } = await createTestApp(db.sql);
const server = Deno.serve({ port, hostname: "127.0.0.1", onListen: () => {} }, app.fetch);
const chromium = await launchBrowser();
// One system admin per database (users_single_admin).
const admin = await signedIn(db.sql, { isAdmin: true, name: "Ada Admin" });
Deno.test.afterAll(async () => {
  await chromium.close();
  await server.shutdown();
  await db.close();
});

const WORKFLOW_YAML =
  'url: https://example.com/agent\nsteps:\n  - action: click\n    selector: "text=Start"\n';
const EVAL_YAML = "steps:\n  - action: wait_for_voice\n";

/** Gzip size of a body, as a server compressing it would send it. */
async function gzipped(bytes: Uint8Array): Promise<number> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return (await new Response(stream).arrayBuffer()).byteLength;
}

/** Collects the JavaScript a page loads; `total()` is its compressed size in bytes. */
function scriptBudget(page: Page) {
  const sizes: Promise<number>[] = [];
  page.on("response", (res) => {
    if (res.request().resourceType() === "script") {
      sizes.push(res.buffer().then((b) => gzipped(new Uint8Array(b))));
    }
  });
  return {
    reset: () => (sizes.length = 0),
    total: async () => (await Promise.all(sizes)).reduce((a, b) => a + b, 0),
  };
}

const api = sessionApi(app);

Deno.test("every console page answers without JavaScript, passes axe and logs no errors", async () => {
  const u = await signedIn(db.sql, { name: "Casey Console" });
  const wf = await api(u.cookie, "POST", "/api/v1/workflows", {
    projectId: u.defaultProjectId,
    name: "Support bot",
    provider: { name: "LiveKit Agents" },
    yaml: WORKFLOW_YAML,
  });
  assert.equal(wf.status, 201, JSON.stringify(wf.body));
  const es = await api(u.cookie, "POST", "/api/v1/eval-sets", {
    projectId: u.defaultProjectId,
    name: "Greeting",
    yaml: EVAL_YAML,
  });
  assert.equal(es.status, 201);
  const job = await api(u.cookie, "POST", `/api/v1/workflows/${wf.body.id}/run`, {
    evalSetId: es.body.id,
    region: "eu-west-1",
  });
  assert.equal(job.status, 201);

  // Two stored results, so the comparison page draws its chart (chart.js counts in its budget).
  const resultIds: number[] = [];
  for (const median of [610, 640]) {
    const [j] = await db.sql`
      INSERT INTO eval_jobs (workflow_id, eval_set_id, region, status, attempts, created_by, finished_at)
      VALUES (${wf.body.id}, ${es.body.id}, 'eu-west-1', 'completed', 1, ${u.id}, now()) RETURNING id`;
    const [r] = await db.sql`
      INSERT INTO eval_results (job_id, workflow_id, eval_set_id, provider_id, region, response_latency_median,
                                response_latency_n)
      VALUES (${j.id}, ${wf.body.id}, ${es.body.id}, ${wf.body.provider.id}, 'eu-west-1', ${median}, 1)
      RETURNING id`;
    resultIds.push(r.id);
  }

  const userPages = [
    ["/console/projects", "Projects"],
    ["/console/workflows", "Workflows"],
    [`/console/workflows/${wf.body.id}`, "Support bot"],
    ["/console/eval-sets", "Eval sets"],
    [`/console/eval-sets/${es.body.id}`, "Greeting"],
    ["/console/jobs", "Jobs"],
    [`/console/jobs/${job.body.id}`, `Job ${job.body.id}`],
    ["/console/schedules", "Schedules"],
    [`/console/compare?ids=${resultIds.join(",")}`, "Compare results"],
    ["/console/api-keys", "API keys"],
    ["/console/account", "Account"],
  ];
  const adminPages = [
    ["/admin/console/users", "Users"],
    ["/admin/console/workers", "Workers"],
    ["/admin/console/jobs", "All jobs"],
    ["/admin/console/settings", "Settings"],
    ["/console/providers", "Providers"],
  ];
  for (const [who, pages] of [[u, userPages], [admin, adminPages]] as const) {
    // Without JavaScript: the server's HTML already holds the page's data.
    for (const [path, h1] of pages) {
      const res = await app.request(path, { headers: { cookie: who.cookie } });
      assert.equal(res.status, 200, path);
      const html = await res.text();
      assert.match(html, new RegExp(`<h1>${h1}</h1>`), path);
      assert.match(html, /aria-current="page"/, `${path} marks where you are`);
    }
    const { page, errors } = await pageWithSession(chromium.browser as Browser, who.cookie);
    const budget = scriptBudget(page);
    for (const [path] of pages) {
      budget.reset();
      await page.goto(`${origin}${path}`, { waitUntil: "networkidle0" });
      await hydrated(page);
      // The JavaScript budget: at most 100 KB compressed per page.
      const js = await budget.total();
      assert.ok(js > 0 && js <= 100_000, `${path} loads ${js} bytes of compressed JavaScript`);
      assert.deepEqual(await axeProblems(page), [], `axe on ${path}`);
    }
    // On a phone: nothing scrolls sideways, every navigation link is in sight.
    await page.setViewport({ width: 390, height: 844 });
    for (const [path] of pages) {
      await page.goto(`${origin}${path}`, { waitUntil: "networkidle0" });
      await hydrated(page);
      assert.deepEqual(await sidewaysProblems(page), [], `${path} at 390 px`);
    }
    assert.deepEqual(errors, [], "console errors");
    await page.close();
  }

  // The job list shows the job with its names; the no-JS filter narrows it.
  const html = await (await app.request("/console/jobs?status=failed", { headers: { cookie: u.cookie } }))
    .text();
  assert.match(html, /No jobs match these filters/);
  const all = await (await app.request("/console/jobs", { headers: { cookie: u.cookie } })).text();
  assert.match(all, /Support bot/);
  assert.match(all, /Greeting/);

  // Signed out: the console sends you to log in and back.
  const out = await app.request("/console/jobs");
  assert.equal(out.status, 303);
  assert.equal(out.headers.get("location"), "/login?next=%2Fconsole%2Fjobs");
  // A user is not the admin.
  const notAdmin = await (await app.request("/admin/console/users", { headers: { cookie: u.cookie } }))
    .text();
  assert.match(notAdmin, /Admins only/);
});

Deno.test("a basic user at the workflow limit sees why, deletes one and creates another", async () => {
  const u = await signedIn(db.sql, { name: "Limit Lee" });
  const [{ max }] = await db.sql`
    SELECT max_workflows_per_project AS max FROM plan_limits WHERE owner_kind = 'basic'`;
  for (let i = 0; i < max; i++) {
    const r = await api(u.cookie, "POST", "/api/v1/workflows", {
      projectId: u.defaultProjectId,
      name: `wf ${i}`,
      provider: { name: "Vapi" },
      yaml: WORKFLOW_YAML,
    });
    assert.equal(r.status, 201);
  }
  const { page, errors } = await pageWithSession(chromium.browser as Browser, u.cookie);
  await page.goto(`${origin}/console/workflows`, { waitUntil: "networkidle0" });
  await hydrated(page);
  const limit = await page.$eval(".c-limit", (el) => el.textContent ?? "");
  assert.match(limit, new RegExp(`${max} of ${max} workflows`));

  // Creating one more is refused with the plan's message above the button.
  await page.type("#new-workflows-name", "one too many");
  await page.type("#new-workflows-provider\\.name", "Vapi");
  await page.click("#new-workflows button[type=submit]");
  await page.waitForSelector("#new-workflows .c-form-error");
  assert.match(
    await page.$eval("#new-workflows .c-form-error", (el) => el.textContent ?? ""),
    /Workflow limit/,
  );

  // Delete asks first and says what goes with it.
  const row = `tr[data-item]:first-of-type`;
  await page.click(`${row} .c-action[data-label=Delete] button`);
  await page.waitForSelector(`${row} .c-confirm-text`);
  const question = await page.$eval(`${row} .c-confirm-text`, (el) => el.textContent ?? "");
  assert.match(question, /Deletes the workflow .* with its schedules, jobs and results/);
  await Promise.all([page.waitForNavigation(), page.click(`${row} .c-confirm button.danger`)]);
  await hydrated(page);
  assert.equal(await page.$$eval("tr[data-item]", (rows) => rows.length), max - 1);
  assert.equal(await page.$(".c-limit"), null);

  // Now the form creates it and opens its page.
  await page.type("#new-workflows-name", "room again");
  await page.type("#new-workflows-provider\\.name", "Vapi");
  await Promise.all([page.waitForNavigation(), page.click("#new-workflows button[type=submit]")]);
  assert.match(page.url(), /\/console\/workflows\/\d+$/);
  assert.equal(await page.$eval("h1", (el) => el.textContent), "room again");
  // Chromium logs the refused request (the 403 above) as an error; nothing else.
  assert.deepEqual(errors.filter((e) => !/status of 403/.test(e)), []);
  await page.close();
});

Deno.test("YAML errors show next to the field with their line", async () => {
  const u = await signedIn(db.sql);
  const { page } = await pageWithSession(chromium.browser as Browser, u.cookie);
  await page.goto(`${origin}/console/eval-sets`, { waitUntil: "networkidle0" });
  await hydrated(page);
  await page.type("#new-eval-sets-name", "broken");
  await page.$eval("#new-eval-sets-yaml", (el) => ((el as HTMLTextAreaElement).value = ""));
  await page.type("#new-eval-sets-yaml", "steps:\n  - action: wait_for_voice\n  - action: fly_to_moon\n");
  await page.click("#new-eval-sets button[type=submit]");
  await page.waitForSelector("#new-eval-sets-yaml-error");
  const message = await page.$eval("#new-eval-sets-yaml-error", (el) => el.textContent ?? "");
  assert.match(message, /^line 3, steps\.1/);
  assert.equal(await page.$eval("#new-eval-sets-yaml", (el) => el.getAttribute("aria-invalid")), "true");
  await page.close();
});

Deno.test("a user creates an API key in the console, sees it once and uses it", async () => {
  const u = await signedIn(db.sql);
  const { page, errors } = await pageWithSession(chromium.browser as Browser, u.cookie);
  await page.goto(`${origin}/console/api-keys`, { waitUntil: "networkidle0" });
  await hydrated(page);
  assert.match(await page.$eval(".c-empty", (el) => el.textContent ?? ""), /No API keys yet/);
  await page.type("#new-key-name", "CI");
  await page.click("#new-key button[type=submit]");
  await page.waitForSelector("[data-testid=new-key-secret]");
  const key = await page.$eval("#new-key-secret-value", (el) => (el as HTMLInputElement).value);
  const command = await page.$eval("[data-testid=new-key-command]", (el) => el.textContent ?? "");
  assert.ok(command.includes(key) && command.includes(`${origin}/api/v1/user`));

  // The curl-style request the page suggests works with that key.
  const res = await fetch(`${origin}/api/v1/user`, { headers: { authorization: `Bearer ${key}` } });
  assert.equal(res.status, 200);
  assert.equal((await res.json()).user.id, u.id);

  // After "Done" the list shows it with its use, and never the key itself.
  await Promise.all([
    page.waitForNavigation(),
    page.click("[data-testid=new-key-secret] p:last-child button"),
  ]);
  const table = await page.$eval("table", (el) => el.textContent ?? "");
  assert.match(table, /CI/);
  assert.ok(!table.includes(key));
  assert.match(await page.$eval("tr[data-key] td:nth-child(6)", (el) => el.textContent ?? ""), /^1$/);

  // Revoke asks first; afterwards the key no longer works.
  await page.click("tr[data-key] .c-action[data-label=Revoke] button");
  await page.waitForSelector("tr[data-key] .c-confirm button.danger");
  await Promise.all([page.waitForNavigation(), page.click("tr[data-key] .c-confirm button.danger")]);
  const after = await fetch(`${origin}/api/v1/user`, { headers: { authorization: `Bearer ${key}` } });
  assert.equal(after.status, 401);
  await after.body?.cancel();
  assert.deepEqual(errors, []);
  await page.close();
});

Deno.test("the admin creates an agent token and is shown the command to start an agent", async () => {
  const { page, errors } = await pageWithSession(chromium.browser as Browser, admin.cookie);
  await page.goto(`${origin}/admin/console/workers`, { waitUntil: "networkidle0" });
  await hydrated(page);
  await page.type("#new-token-name", "box-1");
  await page.type("#new-token-region", "eu-west-1");
  await page.click("#new-token button[type=submit]");
  await page.waitForSelector("[data-testid=new-token-command]");
  const token = await page.$eval("#new-token-secret-value", (el) => (el as HTMLInputElement).value);
  const command = await page.$eval("[data-testid=new-token-command]", (el) => el.textContent ?? "");
  assert.equal(command, `deno task agent --server ${origin} --token ${token} --region eu-west-1`);
  // The same agent as a container, from the image agent/Dockerfile builds.
  const docker = await page.$eval("[data-testid=new-token-command-2]", (el) => el.textContent ?? "");
  assert.match(docker, /^docker run -d --shm-size=1g /);
  for (const part of [`VOX_SERVER_URL=${origin}`, `VOX_AGENT_TOKEN=${token}`, "VOX_AGENT_REGION=eu-west-1"]) {
    assert.ok(docker.includes(` -e ${part} `), `${part} in ${docker}`);
  }
  assert.match(docker, / vox-eval-agent$/);
  const [row] = await db.sql`SELECT region FROM eval_agent_tokens WHERE name = 'box-1'`;
  assert.equal(row.region, "eu-west-1");
  assert.deepEqual(errors, []);
  await page.close();
});

Deno.test("schedules: the cron preview, an error at the field, create, disable, run now", async () => {
  const u = await signedIn(db.sql);
  const wf = await api(u.cookie, "POST", "/api/v1/workflows", {
    projectId: u.defaultProjectId,
    name: "Nightly bot",
    provider: { name: "Vapi" },
    yaml: WORKFLOW_YAML,
  });
  await api(u.cookie, "POST", "/api/v1/eval-sets", {
    projectId: u.defaultProjectId,
    name: "Hi",
    yaml: EVAL_YAML,
  });
  const { page, errors } = await pageWithSession(chromium.browser as Browser, u.cookie);
  await page.emulateTimezone("Europe/Berlin");
  await page.goto(`${origin}/console/schedules`, { waitUntil: "networkidle0" });
  await hydrated(page);
  assert.equal(await page.$eval("#sch-timezone", (el) => (el as HTMLInputElement).value), "Europe/Berlin");
  await page.$eval("#sch-cronExpression", (el) => ((el as HTMLInputElement).value = ""));
  await page.type("#sch-cronExpression", "30 9 * * 1-5");
  const preview = await page.$eval("[data-testid=cron-preview]", (el) => el.textContent ?? "");
  assert.match(preview, /Weekdays at 09:30/);
  assert.equal(await page.$$eval("[data-testid=cron-preview] li", (li) => li.length), 5);
  const first = await page.$eval("[data-testid=cron-preview] li", (el) => el.textContent ?? "");
  assert.match(first, /^(Mon|Tue|Wed|Thu|Fri), .* 09:30$/);

  // A region the API refuses shows at the region field.
  await page.$eval("#sch-region", (el) => ((el as HTMLInputElement).value = ""));
  await page.type("#sch-region", "Not A Region");
  await page.click("#new-schedule button[type=submit]");
  await page.waitForSelector("#sch-region-error");
  await page.$eval("#sch-region", (el) => ((el as HTMLInputElement).value = ""));
  await page.type("#sch-region", "eu-west-1");
  await Promise.all([page.waitForNavigation(), page.click("#new-schedule button[type=submit]")]);
  await hydrated(page);
  const row = await page.$eval("tr[data-schedule]", (el) => el.textContent ?? "");
  assert.match(row, /Nightly bot · Hi.*eu-west-1.*30 9 \* \* 1-5.*Europe\/Berlin.*enabled/);

  await Promise.all([
    page.waitForNavigation(),
    page.click("tr[data-schedule] .c-action[data-label=Disable] button"),
  ]);
  await hydrated(page);
  assert.match(await page.$eval("tr[data-schedule]", (el) => el.textContent ?? ""), /disabled/);
  await Promise.all([
    page.waitForNavigation(),
    page.click("tr[data-schedule] .c-action[data-label='Run now'] button"),
  ]);
  assert.match(page.url(), /\/console\/jobs\/\d+$/);
  const [job] = await db.sql`SELECT workflow_id, schedule_id FROM eval_jobs ORDER BY id DESC LIMIT 1`;
  assert.equal(job.workflowId, wf.body.id);
  assert.ok(job.scheduleId);
  assert.deepEqual(errors.filter((e) => !/status of 400/.test(e)), []);
  await page.close();
});

Deno.test("the admin changes a setting; a value of the wrong shape is refused at the field", async () => {
  const { page, errors } = await pageWithSession(chromium.browser as Browser, admin.cookie);
  await page.goto(`${origin}/admin/console/settings`, { waitUntil: "networkidle0" });
  await hydrated(page);
  const input = "#setting-jobs-max-attempts-value";
  await page.$eval(input, (el) => ((el as HTMLInputElement).value = ""));
  await page.type(input, "0");
  await page.click("#setting-jobs-max-attempts button[type=submit]");
  await page.waitForSelector(`${input}-error`);
  assert.match(await page.$eval(`${input}-error`, (el) => el.textContent ?? ""), /1/);
  await page.$eval(input, (el) => ((el as HTMLInputElement).value = ""));
  await page.type(input, "5");
  await Promise.all([page.waitForNavigation(), page.click("#setting-jobs-max-attempts button[type=submit]")]);
  const [row] = await db.sql`SELECT value FROM system_config WHERE key = 'jobs.max_attempts'`;
  assert.equal(row.value, 5);
  assert.deepEqual(errors.filter((e) => !/status of 400/.test(e)), []);
  await page.close();
});

Deno.test("the guided view edits the same YAML: step rows, the workflow's link, other keys kept", async () => {
  const u = await signedIn(db.sql);
  const es = await api(u.cookie, "POST", "/api/v1/eval-sets", {
    projectId: u.defaultProjectId,
    name: "Guided",
    yaml: "tags: [smoke]\nsteps:\n  - action: speak\n    text: Hi there\n  - action: wait_for_voice\n",
  });
  assert.equal(es.status, 201);
  const { page, errors } = await pageWithSession(chromium.browser as Browser, u.cookie);
  await page.goto(`${origin}/console/eval-sets/${es.body.id}`, { waitUntil: "networkidle0" });
  await hydrated(page);
  await page.click("[data-testid=edit-yaml-guided-view]");
  await page.waitForSelector("[data-testid=edit-yaml-guided]");
  assert.deepEqual(
    await page.$$eval(
      "[data-testid=edit-yaml-guided] .ryo-step-name",
      (els) => els.map((e) => e.textContent),
    ),
    ["Speak", "Wait for voice"],
  );
  assert.match(
    await page.$eval("[data-testid=edit-yaml-guided]", (el) => el.textContent ?? ""),
    /kept as they are: tags/,
  );
  // Move the wait up, add a pause of 1500 ms at the end.
  await page.click("[data-testid=edit-yaml-guided] .ryo-step:nth-child(2) [aria-label='Move up']");
  await page.select("[data-testid=edit-yaml-guided] .ryo-add select", "sleep");
  await page.type("[data-testid=edit-yaml-guided] .ryo-step:nth-child(3) input", "1500");
  // The YAML view shows what the rows made.
  await page.click("[data-testid=edit-yaml-yaml-view]");
  const yaml = await page.$eval("#edit-yaml", (el) => (el as HTMLTextAreaElement).value);
  assert.match(yaml, /tags:\n\s+- smoke/);
  await Promise.all([page.waitForNavigation(), page.click("#edit button[type=submit]")]);
  const [row] = await db.sql`SELECT config FROM eval_sets WHERE id = ${es.body.id}`;
  assert.deepEqual(row.config.steps, [
    { action: "wait_for_voice" },
    { action: "speak", text: "Hi there" },
    { action: "sleep", time: 1500 },
  ]);
  assert.deepEqual(row.config.tags, ["smoke"]);

  // A workflow's guided view has its link; a step the rows cannot show keeps the YAML view.
  const wf = await api(u.cookie, "POST", "/api/v1/workflows", {
    projectId: u.defaultProjectId,
    name: "Guided bot",
    provider: { name: "Vapi" },
    yaml: WORKFLOW_YAML,
  });
  await page.goto(`${origin}/console/workflows/${wf.body.id}`, { waitUntil: "networkidle0" });
  await hydrated(page);
  await page.click("[data-testid=edit-yaml-guided-view]");
  await page.waitForSelector("#edit-yaml-url");
  assert.equal(
    await page.$eval("#edit-yaml-url", (el) => (el as HTMLInputElement).value),
    "https://example.com/agent",
  );
  await page.$eval("#edit-yaml-url", (el) => ((el as HTMLInputElement).value = ""));
  await page.type("#edit-yaml-url", "https://example.org/bot");
  await Promise.all([page.waitForNavigation(), page.click("#edit button[type=submit]")]);
  const [w] = await db.sql`SELECT config FROM workflows WHERE id = ${wf.body.id}`;
  assert.equal(w.config.url, "https://example.org/bot");
  assert.deepEqual(w.config.steps, [{ action: "click", selector: "text=Start" }]);

  await hydrated(page);
  await page.$eval("#edit-yaml", (el) => ((el as HTMLTextAreaElement).value = ""));
  await page.type(
    "#edit-yaml",
    "url: https://example.org/bot\nsteps:\n  - action: execute_javascript\n    code: '1'\n",
  );
  await page.click("[data-testid=edit-yaml-guided-view]");
  await page.waitForSelector("#edit .ryo-note");
  assert.match(await page.$eval("#edit .ryo-note", (el) => el.textContent ?? ""), /execute_javascript/);
  assert.equal(await page.$("[data-testid=edit-yaml-guided]"), null);
  assert.deepEqual(errors, []);
  await page.close();
});

Deno.test("the admin changes a plan limit on the settings page; a user signs out another browser", async () => {
  const { page, errors } = await pageWithSession(chromium.browser as Browser, admin.cookie);
  await page.goto(`${origin}/admin/console/settings`, { waitUntil: "networkidle0" });
  await hydrated(page);
  const field = "#limits-basic-maxSchedules";
  assert.equal(await page.$eval(field, (el) => (el as HTMLInputElement).value), "5");
  await page.$eval(field, (el) => ((el as HTMLInputElement).value = ""));
  await page.type(field, "-1");
  await page.click("#limits-basic button[type=submit]");
  await page.waitForSelector(`${field}-error`);
  await page.$eval(field, (el) => ((el as HTMLInputElement).value = ""));
  await page.type(field, "3");
  await page.type("#limits-basic-reason", "beta");
  await Promise.all([page.waitForNavigation(), page.click("#limits-basic button[type=submit]")]);
  const [row] = await db.sql`SELECT max_schedules FROM plan_limits WHERE owner_kind = 'basic'`;
  assert.equal(row.maxSchedules, 3);
  await db.sql`UPDATE plan_limits SET max_schedules = 5 WHERE owner_kind = 'basic'`;
  assert.deepEqual(errors.filter((e) => !/status of 400/.test(e)), []);
  await page.close();

  // Two browsers of one user: the account page lists both and signs the other one out.
  const u = await signedIn(db.sql);
  const { cookie: elsewhere } = await sessionFor(db.sql, u.id);
  const mine = await pageWithSession(chromium.browser as Browser, u.cookie);
  await mine.page.goto(`${origin}/console/account`, { waitUntil: "networkidle0" });
  await hydrated(mine.page);
  assert.equal(await mine.page.$$eval("tr[data-session]", (r) => r.length), 2);
  const other = "tr[data-session]:not(:has(.c-badge-thisbrowser))";
  await mine.page.click(`${other} .c-action button`);
  await mine.page.waitForSelector(`${other} .c-confirm button.danger`);
  await Promise.all([mine.page.waitForNavigation(), mine.page.click(`${other} .c-confirm button.danger`)]);
  assert.equal(await mine.page.$$eval("tr[data-session]", (r) => r.length), 1);
  const res = await app.request("/api/v1/user", { headers: { cookie: elsewhere } });
  assert.equal(res.status, 401);
  await res.body?.cancel();
  assert.deepEqual(mine.errors, []);
  await mine.page.close();
});
