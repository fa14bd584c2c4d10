// The console's everyday actions in a real browser, each checked against the API afterwards:
// rename and delete a project (the delete says what goes and asks again), duplicate a
// workflow, search the list, and cancel a pending job from its page; and the admin's: set a
// user's role, deactivate them, revoke an agent token.
import assert from "node:assert/strict";
import type { Browser, Page } from "puppeteer-core";
import { createAgentToken } from "../lib/agent_tokens.ts";
import { freePort } from "../lib/embedded_pg.ts";
import { createTestApp, sessionApi } from "./_app.ts";
import { signedIn } from "./_auth.ts";
import { hydrated, launchBrowser, pageWithSession } from "./_browser.ts";
import { createTestDatabase } from "./_db.ts";

const db = await createTestDatabase();
const port = freePort();
const origin = `http://127.0.0.1:${port}`;
const { app } = await createTestApp(db.sql);
const server = Deno.serve({ port, hostname: "127.0.0.1", onListen: () => {} }, app.fetch);
const chromium = await launchBrowser();
Deno.test.afterAll(async () => {
  await chromium.close();
  await server.shutdown();
  await db.close();
});

const api = sessionApi(app);

/** Opens `path` and waits until its islands are live. */
async function open(page: Page, path: string) {
  await page.goto(`${origin}${path}`, { waitUntil: "networkidle0" });
  await hydrated(page);
}

/** Clicks an action that asks nothing, and waits for the page it reloads. */
async function act(page: Page, row: string, label: string) {
  await Promise.all([page.waitForNavigation(), page.click(`${row} .c-action[data-label="${label}"] button`)]);
  await hydrated(page);
}

Deno.test("rename and delete a project, duplicate and search workflows, cancel a job: each lands in the API", async () => {
  const u = await signedIn(db.sql, { name: "Riley Rename" });
  const { page, errors } = await pageWithSession(chromium.browser as Browser, u.cookie);
  const made = await api(u.cookie, "POST", "/api/v1/projects", { name: "Scratch" });
  assert.equal(made.status, 201);
  const projectId = made.body.id;

  // Rename, from the inline form.
  await open(page, "/console/projects");
  const row = `tr[data-project="${projectId}"]`;
  await page.click(`${row} details summary`);
  const nameField = `#rename-${projectId}-name`;
  await page.$eval(nameField, (el) => ((el as HTMLInputElement).value = ""));
  await page.type(nameField, "Scratch pad");
  await Promise.all([page.waitForNavigation(), page.click(`#rename-${projectId} button[type=submit]`)]);
  await hydrated(page);
  assert.equal((await api(u.cookie, "GET", `/api/v1/projects/${projectId}`)).body.name, "Scratch pad");
  assert.match(await page.$eval(row, (el) => el.textContent ?? ""), /Scratch pad/);

  // Delete: the confirmation says what goes; the project is gone afterwards.
  await page.click(`${row} .c-action[data-label=Delete] button`);
  const said = await page.$eval(`${row} .c-confirm-text`, (el) => el.textContent ?? "");
  assert.match(said, /Deletes “Scratch pad” with its 0 workflows and 0 eval sets/);
  await Promise.all([page.waitForNavigation(), page.click(`${row} .c-confirm button.danger`)]);
  await hydrated(page);
  assert.equal((await api(u.cookie, "GET", `/api/v1/projects/${projectId}`)).status, 404);
  assert.equal(await page.$(row), null);

  // Duplicate a workflow, then search for the copy.
  const wf = await api(u.cookie, "POST", "/api/v1/workflows", {
    projectId: u.defaultProjectId,
    name: "Support bot",
    provider: { name: "Riley's agent" },
    config: { url: "https://example.com/agent", steps: [] },
  });
  assert.equal(wf.status, 201, JSON.stringify(wf.body));
  await open(page, "/console/workflows");
  await act(page, `tr[data-item="${wf.body.id}"]`, "Duplicate");
  const items = (await api(u.cookie, "GET", "/api/v1/workflows")).body.items as {
    id: number;
    name: string;
    config: unknown;
    provider: { id: string };
  }[];
  const copy = items.find((i) => i.name === "Support bot (copy)");
  assert.ok(copy, items.map((i) => i.name).join(", "));
  assert.deepEqual(copy.config, wf.body.config);
  assert.equal(copy.provider.id, wf.body.provider.id);
  await open(page, "/console/workflows?q=copy");
  const listed = await page.$$eval("tr[data-item] td:first-child a", (as) => as.map((a) => a.textContent));
  assert.deepEqual(listed, ["Support bot (copy)"]);

  // Cancel a job nobody has picked up, from its page.
  const es = await api(u.cookie, "POST", "/api/v1/eval-sets", {
    projectId: u.defaultProjectId,
    name: "Greeting",
    config: { steps: [{ action: "wait_for_voice" }] },
  });
  assert.equal(es.status, 201, JSON.stringify(es.body));
  const job = await api(u.cookie, "POST", `/api/v1/workflows/${wf.body.id}/run`, {
    evalSetId: es.body.id,
    region: "nobody-here",
  });
  assert.equal(job.status, 201, JSON.stringify(job.body));
  await open(page, `/console/jobs/${job.body.id}`);
  await page.click('.c-action[data-label="Cancel"] button');
  await page.waitForFunction(
    () => !document.querySelector('.c-action[data-label="Cancel"]'),
    { timeout: 10_000 },
  );
  assert.equal((await api(u.cookie, "GET", `/api/v1/jobs/${job.body.id}`)).body.status, "cancelled");
  assert.deepEqual(errors, []);
  await page.close();
});

Deno.test("the admin sets a role, deactivates a user and revokes an agent token on the pages; the user changes are audited", async () => {
  const admin = await signedIn(db.sql, { isAdmin: true, name: "Ada Admin" });
  const target = await signedIn(db.sql, { name: "Toby Target", role: "basic" });
  await createAgentToken(db.sql, { name: "box-7", region: "eu-west-1", expiresAt: null });
  const [{ id: tokenId }] = await db.sql`SELECT id FROM eval_agent_tokens WHERE name = 'box-7'`;
  const { page, errors } = await pageWithSession(chromium.browser as Browser, admin.cookie);

  // Role, from the row's select.
  await open(page, `/admin/console/users?search=${target.username}`);
  const row = `tr[data-user="${target.id}"]`;
  await page.select(`#role-${target.id}-role`, "fellow");
  await Promise.all([page.waitForNavigation(), page.click(`#role-${target.id} button[type=submit]`)]);
  await hydrated(page);
  const [after] = await db.sql`SELECT role FROM users WHERE id = ${target.id}`;
  assert.equal(after.role, "fellow");

  // Deactivate: asked again, then the user's session no longer signs in.
  await page.click(`${row} .c-action[data-label=Deactivate] button`);
  assert.match(await page.$eval(`${row} .c-confirm-text`, (el) => el.textContent ?? ""), /sessions end/);
  await Promise.all([page.waitForNavigation(), page.click(`${row} .c-confirm button.danger`)]);
  await hydrated(page);
  assert.match(await page.$eval(row, (el) => el.textContent ?? ""), /deactivated/);
  assert.equal((await app.request("/api/v1/user", { headers: { cookie: target.cookie } })).status, 401);
  const audit = await page.$eval("main", (el) => el.textContent ?? "");
  assert.match(audit, /user\.role_changed/);
  assert.match(audit, /user\.deactivated/);

  // Revoke the agent token from the workers page (orch_agents_test shows a revoked token's
  // upgrade refused and its live agents disconnected).
  await open(page, "/admin/console/workers");
  const tokenRow = `tr[data-token="${tokenId}"]`;
  await page.click(`${tokenRow} .c-action[data-label=Revoke] button`);
  await Promise.all([page.waitForNavigation(), page.click(`${tokenRow} .c-confirm button.danger`)]);
  await hydrated(page);
  assert.match(await page.$eval(tokenRow, (el) => el.textContent ?? ""), /revoked/);
  const [revoked] = await db.sql`SELECT revoked_at FROM eval_agent_tokens WHERE id = ${tokenId}`;
  assert.ok(revoked.revokedAt instanceof Date, "revoked in the database");
  assert.deepEqual(errors, []);
  await page.close();
});
