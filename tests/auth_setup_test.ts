import assert from "node:assert/strict";
import { createTestApp, testConfig } from "./_app.ts";
import { activationTokenIn, jsonInit, memoryMailer, sessionCookieOf } from "./_auth.ts";
import { createTestDatabase } from "./_db.ts";

const INIT_CODE = "first-run-code-1234";
const ADMIN_PASSWORD = "admin passphrase 123";

const body = (initCode = INIT_CODE) => ({
  initCode,
  admin: { email: "root@example.test", password: ADMIN_PASSWORD, name: "Root" },
  scout: { email: "scout@example.test", name: "Scout" },
});

async function fresh(config: Record<string, string> = { INIT_CODE }, opts: { logMailer?: boolean } = {}) {
  const db = await createTestDatabase();
  const mailer = memoryMailer();
  const t = await createTestApp(db.sql, {
    // Without a mailer the app makes the one the config asks for: the log mailer.
    mailer: opts.logMailer ? undefined : mailer,
    config: testConfig({ PUBLIC_URL: "http://vox.test", ...config }),
  });
  return { db, mailer, ...t };
}

Deno.test("setup creates the admin and an inactive principal Scout, once", async () => {
  const { db, app, logs, mailer } = await fresh();
  try {
    const before = await app.request("/api/setup");
    assert.deepEqual(await before.json(), { setupRequired: true, enabled: true });

    const res = await app.request("/api/setup", jsonInit("POST", body()));
    assert.equal(res.status, 201);
    assert.match(res.headers.get("content-type") ?? "", /application\/json/);
    const out = await res.json();
    assert.equal(out.admin.isAdmin, true);
    assert.equal(out.admin.activated, true);
    assert.equal(out.scout.role, "principal");
    assert.equal(out.scout.isAdmin, false);
    assert.equal(out.scout.activated, false);
    assert.match(out.scoutActivationUrl, /^http:\/\/vox\.test\/activate\/[a-z2-7]{32}$/);

    // The link is mailed to the Scout, is in no log line and in no stored form.
    const mail = mailer.sent.find((m) => m.to === "scout@example.test")!;
    assert.ok(mail.text.includes(out.scoutActivationUrl));
    const token = activationTokenIn(out.scoutActivationUrl);
    assert.ok(logs.lines.some((l) => l.includes("setup completed")));
    assert.ok(!logs.text.includes(token), "the activation token is not logged");
    const [stored] = await db
      .sql`SELECT count(*)::int AS n FROM activation_tokens WHERE token_hash = ${token}`;
    assert.equal(stored.n, 0);

    const projects = await db.sql`
      SELECT u.email, p.name FROM projects p JOIN users u ON u.id = p.owner_user_id ORDER BY u.email`;
    assert.deepEqual(projects.map((p) => [p.email, p.name]), [
      ["root@example.test", "Default"],
      ["scout@example.test", "Default"],
    ]);
    const [audit] = await db
      .sql`SELECT action, actor_user_id FROM audit_log WHERE action = 'setup.completed'`;
    assert.equal(audit.actorUserId, out.admin.id);

    const again = await app.request("/api/setup", jsonInit("POST", body()));
    assert.equal(again.status, 409);
    assert.deepEqual(await again.json(), {
      error: { code: "setup_done", message: "Setup has already been completed" },
    });
    assert.deepEqual(await (await app.request("/api/setup")).json(), { setupRequired: false, enabled: true });
    const [{ admins }] = await db.sql`SELECT count(*)::int AS admins FROM users WHERE is_admin`;
    assert.equal(admins, 1);

    // The admin signs in; the Scout activates by choosing a password, then signs in.
    const adminLogin = await app.request(
      "/api/auth/login",
      jsonInit("POST", { email: "root@example.test", password: ADMIN_PASSWORD }),
    );
    assert.equal(adminLogin.status, 200);
    assert.equal((await adminLogin.json()).user.isAdmin, true);
    const noPassword = await app.request("/api/auth/activate", jsonInit("POST", { token }));
    assert.equal(noPassword.status, 400);
    assert.equal((await noPassword.json()).error.code, "password_required");
    const activated = await app.request(
      "/api/auth/activate",
      jsonInit("POST", { token, password: "scout passphrase 42" }),
    );
    assert.equal(activated.status, 200);
    const scoutLogin = await app.request(
      "/api/auth/login",
      jsonInit("POST", { email: "scout@example.test", password: "scout passphrase 42" }),
    );
    assert.equal(scoutLogin.status, 200);
    const me = await app.request("/api/v1/user", { headers: { cookie: sessionCookieOf(scoutLogin)! } });
    assert.equal((await me.json()).user.role, "principal");
  } finally {
    await db.close();
  }
});

Deno.test("the admin can issue a new Scout link; the old one stops working", async () => {
  const { db, app } = await fresh();
  try {
    const out = await (await app.request("/api/setup", jsonInit("POST", body()))).json();
    const oldToken = activationTokenIn(out.scoutActivationUrl);
    const login = await app.request(
      "/api/auth/login",
      jsonInit("POST", { email: "root@example.test", password: ADMIN_PASSWORD }),
    );
    const cookie = sessionCookieOf(login)!;
    const res = await app.request(
      `/api/admin/users/${out.scout.id}/activation-link`,
      jsonInit("POST", undefined, { cookie }),
    );
    assert.equal(res.status, 201);
    const { activationUrl } = await res.json();
    const newToken = activationTokenIn(activationUrl);
    assert.notEqual(newToken, oldToken);
    const old = await app.request(
      "/api/auth/activate",
      jsonInit("POST", { token: oldToken, password: "scout passphrase 42" }),
    );
    assert.equal(old.status, 400);
    const ok = await app.request(
      "/api/auth/activate",
      jsonInit("POST", { token: newToken, password: "scout passphrase 42" }),
    );
    assert.equal(ok.status, 200);
    const again = await app.request(
      `/api/admin/users/${out.scout.id}/activation-link`,
      jsonInit("POST", undefined, { cookie }),
    );
    assert.equal(again.status, 409);
    assert.equal((await again.json()).error.code, "already_active");
  } finally {
    await db.close();
  }
});

Deno.test("setup refuses a wrong INIT_CODE and creates nothing", async () => {
  const { db, app, logs } = await fresh();
  try {
    const res = await app.request("/api/setup", jsonInit("POST", body("wrong-code-9999")));
    assert.equal(res.status, 403);
    assert.deepEqual(await res.json(), {
      error: { code: "wrong_init_code", message: "The setup code is wrong" },
    });
    const [{ n }] = await db.sql`SELECT count(*)::int AS n FROM users`;
    assert.equal(n, 0);
    assert.ok(!logs.text.includes("wrong-code-9999"));
    assert.ok(!logs.text.includes(INIT_CODE));
  } finally {
    await db.close();
  }
});

Deno.test("setup is disabled when INIT_CODE is not configured", async () => {
  const { db, app } = await fresh({});
  try {
    const res = await app.request("/api/setup", jsonInit("POST", body()));
    assert.equal(res.status, 403);
    assert.equal((await res.json()).error.code, "setup_disabled");
  } finally {
    await db.close();
  }
});

Deno.test("concurrent setups create exactly one admin", async () => {
  const { db, app } = await fresh();
  try {
    const results = await Promise.all(
      [0, 1, 2].map(() => app.request("/api/setup", jsonInit("POST", body()))),
    );
    const statuses = results.map((r) => r.status).sort();
    assert.deepEqual(statuses, [201, 409, 409]);
    const [{ admins }] = await db.sql`SELECT count(*)::int AS admins FROM users WHERE is_admin`;
    assert.equal(admins, 1);
  } finally {
    await db.close();
  }
});

Deno.test("setup validates input and names the field", async () => {
  const { db, app } = await fresh();
  try {
    const weak = await app.request(
      "/api/setup",
      jsonInit("POST", { ...body(), admin: { email: "root@example.test", password: "short" } }),
    );
    assert.equal(weak.status, 400);
    const w = await weak.json();
    assert.equal(w.error.code, "weak_password");
    assert.equal(w.error.details.field, "admin.password");
    const missing = await app.request("/api/setup", jsonInit("POST", { initCode: INIT_CODE, admin: {} }));
    assert.equal(missing.status, 400);
    assert.match((await missing.json()).error.message, /^admin\.email: /);
  } finally {
    await db.close();
  }
});

Deno.test("without a mail server the Scout's link reaches the log only in the marked mail line", async () => {
  const { db, app, logs } = await fresh({ INIT_CODE }, { logMailer: true });
  try {
    const res = await app.request("/api/setup", jsonInit("POST", body()));
    assert.equal(res.status, 201);
    const token = activationTokenIn((await res.json()).scoutActivationUrl);
    const holding = logs.lines.filter((l) => l.includes(token));
    assert.equal(holding.length, 1, holding.join("\n"));
    const entry = JSON.parse(holding[0]);
    assert.equal(entry.level, "warn");
    assert.match(entry.msg, /^SECRET: mail not sent \(SMTP_URL is not set\)/);
    assert.equal(entry.mailTo, "scout@example.test");
  } finally {
    await db.close();
  }
});
