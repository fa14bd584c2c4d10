// The identity pages in a real browser: setup → admin login → Scout activation → login,
// sign-up by form, Google sign-in by button; plus page behaviour checked in-process.
import assert from "node:assert/strict";
import { Events, OAuth2Server } from "oauth2-mock-server";
import type { Page } from "puppeteer-core";
import { freePort } from "../lib/embedded_pg.ts";
import { createTestApp, testConfig } from "./_app.ts";
import { activationTokenIn, createUser, memoryMailer } from "./_auth.ts";
import { launchBrowser } from "./_browser.ts";
import { createTestDatabase } from "./_db.ts";

const db = await createTestDatabase();

const idp = new OAuth2Server();
await idp.issuer.keys.generate("RS256");
await idp.start(0, "127.0.0.1");
const issuer = idp.issuer.url!;
idp.service.on(Events.BeforeTokenSigning, (token) =>
  Object.assign(token.payload, {
    sub: "browser-google-user",
    email: "browser.google@gmail.test",
    email_verified: true,
    name: "Browser Googler",
  }));

const INIT_CODE = "browser-init-code-42";
const port = freePort();
const origin = `http://127.0.0.1:${port}`;
const mailer = memoryMailer();
const { app } = await createTestApp(db.sql, {
  mailer,
  config: testConfig({
    INIT_CODE,
    PUBLIC_URL: origin,
    GOOGLE_CLIENT_ID: "vox-browser-client",
    GOOGLE_CLIENT_SECRET: "vox-browser-secret",
    GOOGLE_AUTH_URL: `${issuer}/authorize`,
    GOOGLE_TOKEN_URL: `${issuer}/token`,
    GOOGLE_ISSUER: issuer,
    GOOGLE_JWKS_URL: `${issuer}/jwks`,
  }),
});
const server = Deno.serve({ port, hostname: "127.0.0.1", onListen: () => {} }, app.fetch);
const chromium = await launchBrowser();
Deno.test.afterAll(async () => {
  await chromium.close();
  await server.shutdown();
  await idp.stop();
  await db.close();
});

async function submit(page: Page, fields: Record<string, string>, button = "button[type=submit]") {
  for (const [name, value] of Object.entries(fields)) {
    await page.$eval(`main [name="${name}"]`, (el) => ((el as HTMLInputElement).value = ""));
    await page.type(`main [name="${name}"]`, value);
  }
  await Promise.all([page.waitForNavigation(), page.click(`main ${button}`)]);
}

const navUser = (page: Page) => page.$eval(".nav-end", (el) => (el as HTMLElement).innerText);

Deno.test("in Chromium: setup, admin login, Scout activation and login, logout", async () => {
  const context = await chromium.browser.createBrowserContext();
  try {
    const page = await context.newPage();
    await page.goto(`${origin}/setup`);
    assert.equal(await page.title(), "Set up Vox · Vox");
    await submit(page, {
      initCode: INIT_CODE,
      adminName: "Root Admin",
      adminEmail: "root@example.test",
      adminPassword: "browser admin passphrase",
      scoutName: "Scout Staff",
      scoutEmail: "scout@example.test",
    });
    assert.match(await page.$eval("h1", (el) => el.textContent ?? ""), /Vox is set up/);
    const scoutLink = await page.$eval("#scout-link", (el) => el.textContent ?? "");
    assert.match(scoutLink, new RegExp(`^${origin}/activate/[a-z2-7]{32}$`));

    // Setup is closed now.
    const again = await page.goto(`${origin}/setup`);
    assert.equal(again?.status(), 409);
    assert.match(await page.content(), /already set up/);

    await page.goto(`${origin}/admin/login`);
    await submit(page, { login: "root@example.test", password: "browser admin passphrase" });
    assert.equal(new URL(page.url()).pathname, "/");
    assert.match(await navUser(page), /Root Admin/);
    await Promise.all([page.waitForNavigation(), page.click(".nav-logout button")]);
    assert.match(await navUser(page), /Log in/);

    // The Scout opens the link, chooses a password, and signs in.
    await page.goto(scoutLink);
    assert.match(await page.content(), /scout@example\.test/);
    await submit(page, { password: "scout browser passphrase", passwordAgain: "scout browser passphrase" });
    assert.equal(new URL(page.url()).pathname, "/login");
    assert.match(await page.content(), /Your account is active/);
    await submit(page, { login: "scout@example.test", password: "scout browser passphrase" });
    assert.match(await navUser(page), /Scout Staff/);
    const me = await page.evaluate(async () => (await fetch("/api/v1/user")).json());
    assert.equal(me.user.role, "principal");

    // The Scout is not the admin.
    await Promise.all([page.waitForNavigation(), page.click(".nav-logout button")]);
    await page.goto(`${origin}/admin/login`);
    await submit(page, { login: "scout@example.test", password: "scout browser passphrase" });
    assert.match(await page.$eval(".error-box", (el) => el.textContent ?? ""), /Only the administrator/);

    // The used link now says so.
    const used = await page.goto(scoutLink);
    assert.equal(used?.status(), 400);
    assert.match(await page.content(), /already used/);
  } finally {
    await context.close();
  }
});

Deno.test(
  "in Chromium: sign-up by form, activation link, login; wrong password shows the message",
  async () => {
    const context = await chromium.browser.createBrowserContext();
    try {
      const page = await context.newPage();
      await page.goto(`${origin}/signup`);
      await submit(page, {
        name: "Form Person",
        email: "form.person@example.test",
        password: "form person passphrase",
      });
      assert.match(await page.content(), /Check your email/);
      const token = activationTokenIn(mailer.sent.at(-1)!.text);
      await page.goto(`${origin}/activate/${token}`);
      // The link alone is not enough: the password chosen at sign-up confirms it.
      await submit(page, { password: "not the password" });
      assert.match(
        await page.$eval(".error-box", (el) => el.textContent ?? ""),
        /not the password chosen at sign-up/,
      );
      await submit(page, { password: "form person passphrase" });
      await submit(page, { login: "form.person@example.test", password: "not the password" });
      assert.match(
        await page.$eval(".error-box", (el) => el.textContent ?? ""),
        /Email or password is incorrect/,
      );
      await submit(page, { login: "form.person@example.test", password: "form person passphrase" });
      assert.match(await navUser(page), /Form Person/);
      const cookies = await context.cookies();
      const session = cookies.find((c) => c.name === "vox_session")!;
      assert.equal(session.httpOnly, true);
      assert.equal(session.sameSite, "Lax");
    } finally {
      await context.close();
    }
  },
);

Deno.test("in Chromium: Sign in with Google creates the account and signs in", async () => {
  const context = await chromium.browser.createBrowserContext();
  try {
    const page = await context.newPage();
    await page.goto(`${origin}/login`);
    await Promise.all([page.waitForNavigation(), page.click("a[href^='/api/auth/google']")]);
    assert.equal(new URL(page.url()).origin, origin);
    assert.match(await navUser(page), /Browser Googler/);
  } finally {
    await context.close();
  }
});

Deno.test("opening an activation link does not activate; only the form does", async () => {
  const u = await createUser(db.sql, { activated: false, password: "pending passphrase" });
  // Signing up again before activating issues a fresh link.
  const res = await app.request("/api/auth/signup", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: u.email, password: "pending passphrase 2" }),
  });
  assert.equal(res.status, 202);
  const token = activationTokenIn(mailer.sent.at(-1)!.text);
  const page = await app.request(`/activate/${token}`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<form class="stack" method="post">/);
  const [row] = await db.sql`SELECT activated_at FROM users WHERE id = ${u.id}`;
  assert.equal(row.activatedAt, null);
  const bad = await app.request("/activate/notatoken");
  assert.equal(bad.status, 400);
  assert.match(await bad.text(), /not valid/);
});
