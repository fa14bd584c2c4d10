// Curated provider entries (issue 13, item 3): principals and the admin create and edit public
// entries (name, website, product type, description, verified flag), audited; everyone else is
// refused; curated names are unique while a user's private product of the same name stays
// theirs and private; the verified flag puts the badge beside the provider on public pages;
// the console page lets a principal do it in the browser and tells others who curates.
import assert from "node:assert/strict";
import type { Browser } from "puppeteer-core";
import { freePort } from "../lib/embedded_pg.ts";
import { axeProblems } from "./_a11y.ts";
import { createTestApp } from "./_app.ts";
import { jsonInit, signedIn, withApiKey } from "./_auth.ts";
import { hydrated, launchBrowser, pageWithSession } from "./_browser.ts";
import { createTestDatabase } from "./_db.ts";

const db = await createTestDatabase();
const sql = db.sql;
const { app } = await createTestApp(sql);
const principal = await withApiKey(sql, { role: "principal" });
const basic = await withApiKey(sql, { role: "basic" });
const fellow = await withApiKey(sql, { role: "fellow" });
Deno.test.afterAll(() => db.close());

const call = (method: string, path: string, body: unknown, auth: { apiKey: string }) =>
  app.request(path, jsonInit(method, body, auth));

async function publicProviders(apiKey?: string) {
  const res = await app.request("/api/v1/providers", apiKey ? jsonInit("GET", undefined, { apiKey }) : {});
  assert.equal(res.status, 200);
  return (await res.json()).providers as {
    id: string;
    name: string;
    productType: string;
    website: string | null;
    curated: boolean;
    verified: boolean;
    verifiedOrganization: string | null;
  }[];
}

Deno.test("a principal creates and edits a curated entry; it is public at once and every change is audited", async () => {
  const made = await call("POST", "/api/v1/providers", {
    name: "Acme Voice",
    productType: "rtc",
    website: "https://acme.example",
    description: "Acme's realtime voice stack",
  }, principal);
  assert.equal(made.status, 201);
  const p = await made.json();
  assert.equal(p.productType, "rtc");
  assert.equal(p.sku, 1);
  assert.equal(p.curated, true);
  assert.equal(p.verified, false);
  assert.equal(p.verifiedOrganization, null);
  // Public without any result, for someone signed out.
  const listed = (await publicProviders()).find((x) => x.id === p.id);
  assert.equal(listed?.name, "Acme Voice");

  const edited = await call("PATCH", `/api/v1/providers/${p.id}`, {
    name: "Acme Voice Cloud",
    productType: "convoai",
    website: "",
    verified: true,
  }, principal);
  assert.equal(edited.status, 200);
  const e = await edited.json();
  assert.deepEqual([e.name, e.productType, e.website, e.verified, e.verifiedOrganization], [
    "Acme Voice Cloud",
    "convoai",
    null,
    true,
    "Acme Voice Cloud",
  ]);
  // The verified badge on a public page.
  const dive = await (await app.request("/dive")).text();
  assert.match(dive, /Acme Voice Cloud<span class="verified-badge"[^>]*title="Verified: Acme Voice Cloud"/);

  const audit = await sql`
    SELECT actor_user_id, details FROM audit_log
    WHERE action = 'provider.curated' AND target_id = ${p.id} ORDER BY id`;
  assert.equal(audit.length, 2);
  assert.equal(Number(audit[0].actorUserId), principal.id);
  assert.equal(audit[1].details.changed, "name,sku,website,verified");
  // Nothing changed: nothing audited.
  assert.equal((await call("PATCH", `/api/v1/providers/${p.id}`, { verified: true }, principal)).status, 200);
  const [{ n }] = await sql`SELECT count(*)::int AS n FROM audit_log WHERE target_id = ${p.id}`;
  assert.equal(n, 2);
});

Deno.test("only principals and the admin curate: others are refused with the roles named, signed-out callers with 401", async () => {
  for (const who of [basic, fellow]) {
    const res = await call("POST", "/api/v1/providers", { name: "Mine", productType: "convoai" }, who);
    assert.equal(res.status, 403);
    assert.match((await res.json()).error.message, /principal/);
  }
  const anon = await app.request("/api/v1/providers", jsonInit("POST", { name: "Anon", productType: "rtc" }));
  assert.equal(anon.status, 401);
  const admin = await withApiKey(sql, { isAdmin: true });
  const made = await call("POST", "/api/v1/providers", { name: "Admin Entry", productType: "rtc" }, admin);
  assert.equal(made.status, 201);
  const id = (await made.json()).id;
  const refused = await call("PATCH", `/api/v1/providers/${id}`, { verified: true }, basic);
  assert.equal(refused.status, 403);
  assert.equal((await publicProviders()).find((x) => x.id === id)?.verified, false);
});

Deno.test("bad input is a 400 naming the field; a taken curated name is 409 naming the holder", async () => {
  const bad: [unknown, RegExp][] = [
    [{ name: "", productType: "rtc" }, /name/],
    [{ name: "X", productType: "telepathy" }, /productType/],
    [{ name: "X", productType: "rtc", website: "javascript:alert(1)" }, /website/],
    [{ name: "X", productType: "rtc", website: "ftp://x.example" }, /website/],
    [{ name: "X", productType: "rtc", verified: "yes" }, /verified/],
    [{ name: "X", productType: "rtc", curated: false }, /curated/],
  ];
  for (const [body, field] of bad) {
    const res = await call("POST", "/api/v1/providers", body, principal);
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.match(JSON.stringify(await res.json()), field, JSON.stringify(body));
  }
  const first =
    await (await call("POST", "/api/v1/providers", { name: "Taken Co", productType: "rtc" }, principal))
      .json();
  const again = await call(
    "POST",
    "/api/v1/providers",
    { name: "taken co", productType: "convoai" },
    principal,
  );
  assert.equal(again.status, 409);
  const body = await again.json();
  assert.match(body.error.message, /^name: the provider Taken Co/);
  assert.equal(body.error.details.providerId, first.id);
  const other =
    await (await call("POST", "/api/v1/providers", { name: "Other Co", productType: "rtc" }, principal))
      .json();
  const rename = await call("PATCH", `/api/v1/providers/${other.id}`, { name: "TAKEN CO" }, principal);
  assert.equal(rename.status, 409);
  assert.equal((await publicProviders()).find((x) => x.id === other.id)?.name, "Other Co");
  const empty = await call("PATCH", `/api/v1/providers/${other.id}`, {}, principal);
  assert.equal(empty.status, 400);
  assert.equal((await call("PATCH", "/api/v1/providers/zzzzzzzzzzzz", { name: "Y" }, principal)).status, 404);
});

Deno.test("a user's private product keeps its name and stays private; curators cannot edit it", async () => {
  // The user names a product in a workflow; it is theirs and private.
  const wf = await app.request(
    "/api/v1/workflows",
    jsonInit("POST", {
      projectId: basic.defaultProjectId,
      name: "my bot",
      provider: { name: "Zed Voice" },
      config: { url: "https://zed.example/agent", steps: [] },
    }, basic),
  );
  assert.equal(wf.status, 201, await wf.clone().text());
  const privateId = (await wf.json()).provider.id;
  // A curator makes the public entry of the same name: a different row, public.
  const curated = await call(
    "POST",
    "/api/v1/providers",
    { name: "Zed Voice", productType: "convoai" },
    principal,
  );
  assert.equal(curated.status, 201);
  const curatedId = (await curated.json()).id;
  assert.notEqual(curatedId, privateId);
  const publicIds = (await publicProviders()).map((x) => x.id);
  assert.ok(publicIds.includes(curatedId));
  assert.ok(!publicIds.includes(privateId), "the user's product stayed private");
  // The owner still sees their own; the curator cannot edit it (it is not a curated entry).
  assert.ok((await publicProviders(basic.apiKey)).some((x) => x.id === privateId && !x.curated));
  const edit = await call("PATCH", `/api/v1/providers/${privateId}`, { name: "Hijacked" }, principal);
  assert.equal(edit.status, 404);
  const [row] = await sql`SELECT name, curated FROM providers WHERE id = ${privateId}`;
  assert.deepEqual([row.name, row.curated], ["Zed Voice", false]);
});

Deno.test("console: a principal creates and verifies an entry in the browser; a basic user sees who curates", async () => {
  const port = freePort();
  const origin = `http://127.0.0.1:${port}`;
  const server = Deno.serve({ port, hostname: "127.0.0.1", onListen: () => {} }, app.fetch);
  const chromium = await launchBrowser();
  try {
    const curator = await signedIn(sql, { role: "principal" });
    const { page, errors } = await pageWithSession(chromium.browser as Browser, curator.cookie);
    await page.goto(`${origin}/console/providers`, { waitUntil: "networkidle0" });
    await hydrated(page);
    await page.type("#new-provider-name", "Browser Made Voice");
    await page.select("#new-provider-productType", "rtc");
    await page.type("#new-provider-website", "https://browser-made.example");
    await Promise.all([page.waitForNavigation(), page.click("#new-provider button[type=submit]")]);
    await hydrated(page);
    const made = (await publicProviders()).find((x) => x.name === "Browser Made Voice");
    assert.ok(made, "the entry was created");
    assert.equal(made.productType, "rtc");
    assert.equal(made.website, "https://browser-made.example");
    // Edit: verify it.
    const row = `tr[data-provider="${made.id}"]`;
    await page.click(`${row} details summary`);
    await page.click(`#provider-${made.id}-verified`);
    await Promise.all([page.waitForNavigation(), page.click(`#provider-${made.id} button[type=submit]`)]);
    await hydrated(page);
    assert.equal((await publicProviders()).find((x) => x.id === made.id)?.verified, true);
    assert.match(await page.$eval(row, (el) => el.textContent ?? ""), /verified/);
    assert.deepEqual(await axeProblems(page), []);
    assert.deepEqual(errors, []);

    // A basic user: the list, no forms, and who to ask.
    const reader = await signedIn(sql, { role: "basic" });
    const html = await (await app.request("/console/providers", { headers: { cookie: reader.cookie } }))
      .text();
    assert.match(html, /Browser Made Voice/);
    assert.match(html, /Principals and the admin curate them/);
    assert.doesNotMatch(html, /new-provider|data-island/);
  } finally {
    await chromium.close();
    await server.shutdown();
  }
});
