// The billing pages in a real browser against the local fake Stripe: a user upgrades through
// the hosted checkout and comes back Premium, then cancels; an organization admin sees the
// price of 6 seats (3060 cents a month) before paying and has 6 seats after; the admin approves
// a fund return from the queue; with billing off, each page says it is not set up.
import assert from "node:assert/strict";
import type { Page } from "puppeteer-core";
import { axeProblems } from "./_a11y.ts";
import { createTestApp } from "./_app.ts";
import {
  type Browser as Caller,
  browserUser,
  call,
  orgWithAdmin,
  roleOf,
  startBillingServer,
} from "./_billing.ts";
import { memoryMailer } from "./_auth.ts";
import { hydrated, launchBrowser } from "./_browser.ts";
import { createTestDatabase } from "./_db.ts";
import { freePort } from "../lib/embedded_pg.ts";

const db = await createTestDatabase();
const sql = db.sql;
const mailer = memoryMailer();
const srv = await startBillingServer(sql, { mailer });
const chromium = await launchBrowser();
const admin = await browserUser(sql, { isAdmin: true });
Deno.test.afterAll(async () => {
  await chromium.close();
  await srv.stop();
  await db.close();
});

async function pageAs(who: Caller): Promise<{ page: Page; errors: string[] }> {
  const context = await chromium.browser.createBrowserContext();
  const page = await context.newPage();
  const cookie = who.headers.cookie;
  const at = cookie.indexOf("=");
  await context.setCookie({
    name: cookie.slice(0, at),
    value: cookie.slice(at + 1),
    domain: "127.0.0.1",
    path: "/",
    httpOnly: true,
  });
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  return { page, errors };
}

const text = (page: Page) => page.evaluate(() => document.body.innerText);

Deno.test("a user upgrades through Stripe's checkout, comes back Premium, then cancels", async () => {
  const user = await browserUser(sql);
  const { page, errors } = await pageAs(user);
  await page.goto(`${srv.baseUrl}/console/billing`);
  await hydrated(page);
  assert.match(await text(page), /Your plan: Basic/);
  assert.deepEqual(await axeProblems(page), []);
  await Promise.all([page.waitForNavigation(), page.click("[data-label='Upgrade to Premium'] button")]);
  assert.ok(page.url().startsWith(`${srv.fake.url}/checkout/`), page.url());
  assert.match(await text(page), /500 cents per month/);
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
  assert.ok(page.url().startsWith(`${srv.baseUrl}/console/billing?checkout=done`), page.url());
  await hydrated(page);
  assert.match(await text(page), /Your plan: Premium/);
  assert.equal(await roleOf(sql, user.id), "premium");
  assert.match(await text(page), /visa ···· 4242/);
  assert.match(await text(page), /Premium, monthly/);

  await page.click("[data-label='Cancel Premium'] button");
  await page.waitForSelector(".c-confirm");
  assert.match(await text(page), /private items stay private and readable/);
  await Promise.all([page.waitForNavigation(), page.click(".c-confirm button")]);
  await hydrated(page);
  assert.match(await text(page), /Your plan: Premium — ends /);
  assert.deepEqual(errors, []);
  await page.browserContext().close();
});

Deno.test("an organization admin sees 3060 cents a month for 6 seats before paying, and has 6 seats after", async () => {
  const { orgId, admin: orgAdmin } = await orgWithAdmin(sql, "Seat Buyers");
  const { page, errors } = await pageAs(orgAdmin);
  await page.goto(`${srv.baseUrl}/console/organization/billing?seats=6`);
  await hydrated(page);
  const row = await page.$eval("[data-quote-seats='6']", (el) => (el as HTMLElement).innerText);
  assert.match(row, /15 %/);
  assert.match(row, /30\.60 USD \(3060 cents\)/);
  assert.deepEqual(await axeProblems(page), []);
  assert.equal(await page.$eval("#buy-seats input[name=seats]", (el) => (el as HTMLInputElement).value), "6");
  await Promise.all([page.waitForNavigation(), page.click("#buy-seats button[type=submit]")]);
  assert.match(await page.$eval("#total", (el) => (el as HTMLElement).innerText), /^3060$/);
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
  await hydrated(page);
  assert.match(await text(page), /Seat Buyers has 6 paid seats/);
  const account = await call(srv.app, "GET", `/api/v1/organizations/${orgId}/billing`, orgAdmin);
  assert.equal(account.data.paidSeats, 6);
  assert.deepEqual(errors, []);
  await page.browserContext().close();

  // A member who is not an admin is told so, and sees nothing of the organization's billing.
  const member = await browserUser(sql, { organizationId: orgId });
  const m = await pageAs(member);
  await m.page.goto(`${srv.baseUrl}/console/organization/billing`);
  assert.match(await text(m.page), /Organization admins only/);
  assert.doesNotMatch(await text(m.page), /3060/);
  await m.page.browserContext().close();
});

Deno.test("the admin approves a fund return from the queue; the requester sees it approved", async () => {
  const user = await browserUser(sql);
  const started = await call(srv.app, "POST", "/api/v1/billing/checkout", user);
  await srv.fake.completeCheckout(String(started.data.url).split("/").pop()!);
  const { page: up } = await pageAs(user);
  await up.goto(`${srv.baseUrl}/console/billing`);
  await hydrated(up);
  await up.type("#fund-return textarea[name=reason]", "Bought it by mistake");
  await Promise.all([up.waitForNavigation(), up.click("#fund-return button[type=submit]")]);
  await hydrated(up);
  assert.match(await text(up), /waiting for review/);

  const { page, errors } = await pageAs(admin);
  await page.goto(`${srv.baseUrl}/admin/console/fund-returns?status=pending`);
  await hydrated(page);
  assert.match(await text(page), /Bought it by mistake/);
  assert.deepEqual(await axeProblems(page), []);
  const [fr] = await sql`SELECT id FROM fund_return_requests WHERE user_id = ${user.id}`;
  await page.type(`#approve-${fr.id} input[name=note]`, "Refunded in full");
  await Promise.all([page.waitForNavigation(), page.click(`#approve-${fr.id} button[type=submit]`)]);
  assert.equal(await roleOf(sql, user.id), "basic");
  assert.deepEqual(errors, []);
  await page.browserContext().close();

  await up.reload();
  assert.match(await text(up), /Refunded in full/);
  assert.match(await text(up), /Your plan: Basic/);
  assert.match(await text(up), /cannot make new private items/);
  await up.browserContext().close();
});

Deno.test(
  "journey: an org admin buys 6 seats (3060 cents a month, shown before paying), invites a user who accepts " +
    "and gets Premium powers, removes them, and the seat frees",
  async () => {
    const owner = await browserUser(sql, { name: "Olga Owner" });
    const made = await call(srv.app, "POST", "/api/v1/organizations", owner, { name: "Journey Seats" });
    assert.equal(made.status, 201, JSON.stringify(made.data));
    const orgId = (made.data.id ?? (made.data.organization as Record<string, unknown>)?.id) as number;
    const { page, errors } = await pageAs(owner);

    // The price before paying, on Vox's page and again on Stripe's.
    await page.goto(`${srv.baseUrl}/console/organization/billing?seats=6`);
    await hydrated(page);
    assert.match(
      await page.$eval("[data-quote-seats='6']", (el) => (el as HTMLElement).innerText),
      /3060 cents/,
    );
    await Promise.all([page.waitForNavigation(), page.click("#buy-seats button[type=submit]")]);
    assert.equal(await page.$eval("#total", (el) => (el as HTMLElement).innerText), "3060");
    // Paying: the fake Stripe delivers the signed webhooks to Vox, then sends the browser back.
    await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
    await hydrated(page);
    assert.match(await text(page), /Journey Seats has 6 paid seats/);
    const [payment] = await sql`SELECT amount_cents FROM payment_histories WHERE organization_id = ${orgId}`;
    assert.equal(payment.amountCents, 3060);

    // Invite someone into a paid seat.
    await page.goto(`${srv.baseUrl}/console/organization/members`);
    await hydrated(page);
    await page.type("#invite-email", "seat-journey@example.test");
    await page.click("#invite button[type=submit]");
    await page.waitForSelector("[data-testid=invite-secret]");
    const link = await page.$eval("#invite-secret-value", (el) => (el as HTMLInputElement).value);

    // The invitee accepts, creating an account, and has Premium powers from the paid seat.
    const guestContext = await chromium.browser.createBrowserContext();
    const guest = await guestContext.newPage();
    await guest.goto(`${srv.baseUrl}${new URL(link).pathname}`);
    await hydrated(guest);
    await guest.type("#accept-new-name", "Sam Seat");
    await guest.type("#accept-new-password", "correct horse battery staple");
    await Promise.all([guest.waitForNavigation(), guest.click("#accept-new button[type=submit]")]);
    const session = (await guestContext.cookies()).find((k) => k.name === "vox_session")!;
    const sam = {
      id: 0,
      email: "seat-journey@example.test",
      headers: {
        cookie: `vox_session=${session.value}`,
        origin: srv.baseUrl,
        "sec-fetch-site": "same-origin",
      },
    };
    const me = await call(srv.app, "GET", "/api/v1/user", sam);
    sam.id = (me.data.user as Record<string, number>).id;
    const [{ id: projectId }] = await sql`SELECT id FROM projects WHERE owner_user_id = ${sam.id}`;
    const privateSet = (name: string) =>
      call(srv.app, "POST", "/api/v1/eval-sets", sam, {
        projectId,
        name,
        yaml: "steps:\n  - action: wait_for_voice\n",
        visibility: "private",
      });
    assert.equal((await privateSet("secret set")).status, 201, "a paid seat gives Premium powers");

    // The admin removes them: the seat frees and the powers go; their data stays theirs.
    await page.goto(`${srv.baseUrl}/console/organization/members`);
    await hydrated(page);
    const row = `tr[data-member="${sam.id}"]`;
    await page.click(`${row} .c-action[data-label=Remove] button`);
    await page.waitForSelector(`${row} .c-confirm button.danger`);
    await Promise.all([page.waitForNavigation(), page.click(`${row} .c-confirm button.danger`)]);
    await page.goto(`${srv.baseUrl}/console/organization`);
    assert.equal(await page.$eval("[data-seats-free]", (el) => el.getAttribute("data-seats-free")), "5");
    assert.equal((await privateSet("another secret")).status, 403);
    const [kept] =
      await sql`SELECT visibility FROM eval_sets WHERE name = 'secret set' AND created_by = ${sam.id}`;
    assert.equal(kept.visibility, "private");
    assert.deepEqual(errors, []);
    await page.browserContext().close();
    await guestContext.close();
  },
);

Deno.test("billing off: each billing page says billing is not set up", async () => {
  const port = freePort();
  const { app } = await createTestApp(sql);
  const server = Deno.serve({ port, hostname: "127.0.0.1", onListen() {} }, app.fetch);
  try {
    const { orgId, admin: orgAdmin } = await orgWithAdmin(sql, "Unbilled");
    assert.ok(orgId);
    for (
      const [who, path] of [
        [await browserUser(sql), "/console/billing"],
        [orgAdmin, "/console/organization/billing"],
        [admin, "/admin/console/fund-returns"],
      ] as const
    ) {
      const res = await fetch(`http://127.0.0.1:${port}${path}`, { headers: { cookie: who.headers.cookie } });
      assert.equal(res.status, 200, path);
      const html = await res.text();
      assert.match(html, /Billing is not set up/, path);
      assert.match(html, /data-billing="off"/, path);
    }
  } finally {
    await server.shutdown();
  }
});
