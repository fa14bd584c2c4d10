// The organization and pricing pages in a real browser: each renders without JavaScript, passes
// axe-core without serious or critical violations and logs no console errors; /pricing quotes
// live; an org admin invites someone who creates an account from the link, gets Premium powers
// from a paid seat, and is removed (the seat frees); the system admin verifies an organization
// and the badge appears beside its provider on the public pages.
import assert from "node:assert/strict";
import type { Browser } from "puppeteer-core";
import { freePort } from "../lib/embedded_pg.ts";
import { recordSeatPurchase } from "../lib/orgs.ts";
import { SEEDED_PROVIDERS } from "../lib/seed.ts";
import { axeProblems } from "./_a11y.ts";
import { createTestApp, sessionApi } from "./_app.ts";
import { memoryMailer, signedIn } from "./_auth.ts";
import { hydrated, launchBrowser, pageWithSession } from "./_browser.ts";
import { createTestDatabase } from "./_db.ts";

const db = await createTestDatabase();
const port = freePort();
const origin = `http://127.0.0.1:${port}`;
const mailer = memoryMailer();
const { app } = await createTestApp(db.sql, { mailer });
const server = Deno.serve({ port, hostname: "127.0.0.1", onListen: () => {} }, app.fetch);
const chromium = await launchBrowser();
const admin = await signedIn(db.sql, { isAdmin: true, name: "Ada Admin" });
Deno.test.afterAll(async () => {
  await chromium.close();
  await server.shutdown();
  await db.close();
});

const api = sessionApi(app);

function inviteLink(email: string): string {
  const mail = mailer.sent.findLast((m) => m.to === email);
  assert.ok(mail, `no mail to ${email}`);
  const m = /https?:\/\/[^\s]+\/invite\/([a-z2-7]{32})/.exec(mail.text);
  assert.ok(m, mail.text);
  return `/invite/${m[1]}`;
}

Deno.test("every organization and pricing page answers without JavaScript, passes axe and logs no errors", async () => {
  const solo = await signedIn(db.sql, { name: "Sam Solo" });
  const owner = await signedIn(db.sql, { name: "Olga Owner" });
  const org = await api(owner.cookie, "POST", "/api/v1/organizations", {
    name: "Pages Org",
    address: "Quay 3",
  });
  assert.equal(org.status, 201);
  await recordSeatPurchase(db.sql, {
    organizationId: org.body.id,
    seats: 3,
    unitCents: 600,
    discountBps: 1000,
    totalCents: 1620,
    status: "active",
  });
  const inv = await api(owner.cookie, "POST", `/api/v1/organizations/${org.body.id}/invites`, {
    email: "pages-newcomer@example.test",
  });
  assert.equal(inv.status, 201, JSON.stringify(inv.body));
  const invitePath = inviteLink("pages-newcomer@example.test");

  const pages: [string | null, string, string][] = [
    [null, "/pricing", "Pricing"],
    [null, invitePath, "Join Pages Org"],
    [solo.cookie, "/console/organization", "Organization"],
    [owner.cookie, "/console/organization", "Pages Org"],
    [owner.cookie, "/console/organization/members", "Members"],
    [owner.cookie, "/console/organization/settings", "Organization settings"],
    [admin.cookie, "/admin/console/organizations", "Organizations"],
    [admin.cookie, "/admin/console/pricing", "Pricing"],
  ];
  for (const [cookie, path, h1] of pages) {
    const res = await app.request(path, { headers: cookie ? { cookie } : {} });
    assert.equal(res.status, 200, path);
    const html = await res.text();
    assert.match(html, new RegExp(`<h1>${h1}</h1>`), path);
    if (path.startsWith("/console") || path.startsWith("/admin")) {
      assert.match(html, /aria-current="page"/, `${path} marks where you are`);
    }
  }
  // Without JavaScript the data is already in the HTML.
  const pricing = await (await app.request("/pricing?kind=org&seats=6")).text();
  assert.match(pricing, /data-testid="quote-cents">3060</);
  assert.match(pricing, /11 or more/);
  const members =
    await (await app.request("/console/organization/members", { headers: { cookie: owner.cookie } }))
      .text();
  assert.match(members, /pages-newcomer@example\.test/);
  const dash = await (await app.request("/console/organization", { headers: { cookie: owner.cookie } }))
    .text();
  assert.match(dash, /data-seats-paid="3"/);
  assert.match(dash, /data-seats-free="1"/);

  for (const [cookie, path] of pages) {
    const { page, errors } = await pageWithSession(chromium.browser as Browser, cookie);
    await page.goto(`${origin}${path}`, { waitUntil: "networkidle0" });
    await hydrated(page);
    assert.deepEqual(await axeProblems(page), [], `axe on ${path}`);
    assert.deepEqual(errors, [], `console errors on ${path}`);
    await page.close();
  }

  // A bad invite link says so; the console sends a signed-out visitor to log in.
  const bad = await app.request(`/invite/${"a".repeat(32)}`);
  assert.equal(bad.status, 404);
  assert.match(await bad.text(), /This invite link is not valid/);
  const out = await app.request("/console/organization/members");
  assert.equal(out.status, 303);
  assert.equal(out.headers.get("location"), "/login?next=%2Fconsole%2Forganization%2Fmembers");
});

Deno.test("/pricing quotes live as the seats change: 6 organization seats are 3060 cents", async () => {
  const { page, errors } = await pageWithSession(chromium.browser as Browser, null);
  await page.goto(`${origin}/pricing?seats=1`, { waitUntil: "networkidle0" });
  await hydrated(page);
  const cents = () => page.$eval("[data-testid=quote-cents]", (el) => el.textContent);
  assert.equal(await cents(), "600");
  await page.click("#quote-seats", { count: 3 });
  await page.type("#quote-seats", "6");
  await page.waitForFunction(() =>
    document.querySelector("[data-testid=quote-cents]")?.textContent === "3060"
  );
  assert.equal(await page.$eval("[data-testid=quote-total]", (el) => el.textContent), "$30.60");
  await page.select("select[name=kind]", "solo");
  await page.waitForFunction(() =>
    document.querySelector("[data-testid=quote-cents]")?.textContent === "2550"
  );
  // Zero seats: the API's 400 is shown, naming the field.
  await page.click("#quote-seats", { count: 3 });
  await page.type("#quote-seats", "0");
  await page.waitForFunction(() =>
    /^seats: /.test(document.querySelector(".quote-result")?.textContent ?? "")
  );
  // The failed quote is an answered 400, not a script error; the browser logs the failed request.
  assert.deepEqual(errors.filter((e) => !/status of 400/.test(e)), []);
  await page.close();
});

Deno.test("journey: an org admin invites, the invitee creates an account from the link and gets Premium powers, is removed, the seat frees", async () => {
  const owner = await signedIn(db.sql, { name: "Iris Inviter" });
  const { page, errors } = await pageWithSession(chromium.browser as Browser, owner.cookie);
  // Create the organization from the console.
  await page.goto(`${origin}/console/organization`, { waitUntil: "networkidle0" });
  await hydrated(page);
  await page.type("#new-org-name", "Journey Org");
  await Promise.all([page.waitForNavigation(), page.click("#new-org button[type=submit]")]);
  const [org] = await db.sql`SELECT id FROM organizations WHERE name = 'Journey Org'`;
  assert.ok(org);
  // No seat yet: the invite is refused with the reason.
  await page.goto(`${origin}/console/organization/members`, { waitUntil: "networkidle0" });
  await hydrated(page);
  await page.type("#invite-email", "journey@example.test");
  await page.click("#invite button[type=submit]");
  await page.waitForFunction(() => /No free seat/.test(document.querySelector("#invite")?.textContent ?? ""));

  // Billing records a purchase of 6 seats (its own tests drive Stripe).
  await recordSeatPurchase(db.sql, {
    organizationId: org.id,
    seats: 6,
    unitCents: 600,
    discountBps: 1500,
    totalCents: 3060,
    status: "active",
  });
  await page.reload({ waitUntil: "networkidle0" });
  await hydrated(page);
  await page.type("#invite-email", "journey@example.test");
  await page.click("#invite button[type=submit]");
  await page.waitForSelector("[data-testid=invite-secret]");
  const link = await page.$eval("#invite-secret-value", (el) => (el as HTMLInputElement).value);
  assert.equal(new URL(link).pathname, inviteLink("journey@example.test"));

  // The invitee opens the link signed out and creates the account.
  const guest = await pageWithSession(chromium.browser as Browser, null);
  await guest.page.goto(`${origin}${new URL(link).pathname}`, { waitUntil: "networkidle0" });
  await hydrated(guest.page);
  await guest.page.type("#accept-new-name", "Jo Journey");
  await guest.page.type("#accept-new-password", "correct horse battery staple");
  await Promise.all([guest.page.waitForNavigation(), guest.page.click("#accept-new button[type=submit]")]);
  assert.equal(new URL(guest.page.url()).pathname, "/console/organization");
  assert.match(await guest.page.$eval("h1", (el) => el.textContent ?? ""), /Journey Org/);
  // Premium powers: the new member makes a private eval set.
  const cookies = await guest.page.browserContext().cookies();
  const session = cookies.find((k) => k.name === "vox_session")!;
  const jo = await api(`vox_session=${session.value}`, "GET", "/api/v1/user");
  const made = await api(`vox_session=${session.value}`, "POST", "/api/v1/eval-sets", {
    projectId: (await db.sql`SELECT id FROM projects WHERE owner_user_id = ${jo.body.user.id}`)[0].id,
    name: "secret set",
    yaml: "steps:\n  - action: wait_for_voice\n",
    visibility: "private",
  });
  assert.equal(made.status, 201, JSON.stringify(made.body));

  // The admin sees the member with a paid seat, removes them, and the seat frees.
  await page.goto(`${origin}/console/organization/members`, { waitUntil: "networkidle0" });
  await hydrated(page);
  const row = `tr[data-member="${jo.body.user.id}"]`;
  assert.match(await page.$eval(row, (el) => el.textContent ?? ""), /Paid seat · Premium powers/);
  await page.click(`${row} .c-action[data-label=Remove] button`);
  await page.waitForSelector(`${row} .c-confirm button.danger`);
  await Promise.all([page.waitForNavigation(), page.click(`${row} .c-confirm button.danger`)]);
  assert.equal(await page.$(row), null);
  await page.goto(`${origin}/console/organization`, { waitUntil: "networkidle0" });
  assert.equal(await page.$eval("[data-seats-free]", (el) => el.getAttribute("data-seats-free")), "5");
  const denied = await api(`vox_session=${session.value}`, "POST", "/api/v1/eval-sets", {
    projectId: (await db.sql`SELECT id FROM projects WHERE owner_user_id = ${jo.body.user.id}`)[0].id,
    name: "another secret",
    yaml: "steps:\n  - action: wait_for_voice\n",
    visibility: "private",
  });
  assert.equal(denied.status, 403);
  assert.deepEqual(errors.filter((e) => !/status of 403/.test(e)), []);
  assert.deepEqual(guest.errors, []);
  await page.close();
  await guest.page.close();
});

Deno.test("the system admin verifies an organization; its provider shows the badge on public pages", async () => {
  const owner = await signedIn(db.sql, { name: "Vera Verified" });
  const org = await api(owner.cookie, "POST", "/api/v1/organizations", { name: "Agora Labs" });
  const providerId = SEEDED_PROVIDERS[0].id;
  // The admin names the organization's provider, then verifies it, from the console.
  const { page, errors } = await pageWithSession(chromium.browser as Browser, admin.cookie);
  await page.goto(`${origin}/admin/console/organizations`, { waitUntil: "networkidle0" });
  await hydrated(page);
  const row = `tr[data-org="${org.body.id}"]`;
  const field = `#org-providers-${org.body.id}-providerIds`;
  await page.click(field, { count: 3 });
  await page.type(field, JSON.stringify([providerId]));
  await Promise.all([
    page.waitForNavigation(),
    page.click(`#org-providers-${org.body.id} button[type=submit]`),
  ]);
  assert.match(await page.$eval(row, (el) => el.textContent ?? ""), /no/);
  assert.equal((await (await app.request("/dive")).text()).includes('data-testid="verified-badge"'), false);
  await Promise.all([page.waitForNavigation(), page.click(`${row} .c-action[data-label=Verify] button`)]);
  assert.match(await page.$eval(row, (el) => el.textContent ?? ""), /yes/);
  assert.deepEqual(errors, []);
  await page.close();

  const dive = await (await app.request("/dive")).text();
  assert.match(dive, /data-testid="verified-badge" title="Verified: Agora Labs"/);
  const providers = await (await app.request("/api/v1/providers")).json();
  assert.equal(
    providers.providers.find((p: { id: string }) => p.id === providerId).verifiedOrganization,
    "Agora Labs",
  );
  // The organization's own console shows it too.
  const dash = await (await app.request("/console/organization", { headers: { cookie: owner.cookie } }))
    .text();
  assert.match(dash, /verified-badge/);
  await db.sql`UPDATE providers SET organization_id = NULL`;
});

Deno.test("the admin edits prices and tiers on /admin/console/pricing; a gap is refused at the field", async () => {
  const { page, errors } = await pageWithSession(chromium.browser as Browser, admin.cookie);
  await page.goto(`${origin}/admin/console/pricing`, { waitUntil: "networkidle0" });
  await hydrated(page);
  const tiers = '[id="pricing-discounts"]';
  // A table with a gap: the API's 400 is shown next to the tiers, nothing changes.
  await page.click(tiers, { count: 3 });
  await page.$eval(tiers, (el) => ((el as HTMLTextAreaElement).value = ""));
  await page.type(
    tiers,
    '[{"minSeats":1,"maxSeats":2,"discountBps":0},{"minSeats":4,"maxSeats":null,"discountBps":500}]',
  );
  await page.click("#pricing button[type=submit]");
  await page.waitForSelector('[id="pricing-discounts-error"]');
  assert.match(await page.$eval('[id="pricing-discounts-error"]', (el) => el.textContent ?? ""), /must be 3/);
  assert.equal((await (await app.request("/api/pricing/quote?kind=org&seats=6")).json()).totalCents, 3060);

  // A new organization seat price, with the seeded tiers back in the field.
  await page.reload({ waitUntil: "networkidle0" });
  await hydrated(page);
  const org = '[id="pricing-unitCents.org"]';
  await page.click(org, { count: 3 });
  await page.type(org, "650");
  await page.type('[id="pricing-reason"]', "price review");
  await Promise.all([page.waitForNavigation(), page.click("#pricing button[type=submit]")]);
  assert.match(await page.$eval('tr[data-plan="org"]', (el) => el.textContent ?? ""), /\$6\.50/);
  const quote = await (await app.request("/api/pricing/quote?kind=org&seats=6")).json();
  assert.equal(quote.totalCents, 3315);
  const [audit] = await db.sql`SELECT details FROM audit_log WHERE action = 'pricing.changed'`;
  assert.equal(audit.details.reason, "price review");
  // The field error is an answered 400; the browser logs the failed request, nothing else.
  assert.deepEqual(errors.filter((e) => !/status of 400/.test(e)), []);
  await page.close();
  await db.sql`UPDATE pricing_config SET unit_price_cents = 600 WHERE plan = 'organization'`;
});
