import assert from "node:assert/strict";
import { Hono } from "hono";
import type { AppEnv } from "../lib/context.ts";
import {
  requireAdmin,
  requireMainlineEditor,
  requirePremium,
  requireRole,
  requireSession,
  requireUser,
} from "../lib/guards.ts";
import { canMakePrivate, canMarkMainline, type Role, ROLES } from "../lib/roles.ts";
import { createTestApp } from "./_app.ts";
import { apiKeyFor, jsonInit, memoryMailer, sessionCookieOf, signedIn } from "./_auth.ts";
import { createTestDatabase } from "./_db.ts";

const db = await createTestDatabase();
Deno.test.afterAll(() => db.close());
const PASSWORD = "role test passphrase";

// One signed-in user per role, plus the admin.
const users = Object.fromEntries(
  await Promise.all(ROLES.map(async (role) => [role, await signedIn(db.sql, { role })] as const)),
) as Record<Role, Awaited<ReturnType<typeof signedIn>>>;
const admin = await signedIn(db.sql, { isAdmin: true, password: PASSWORD });

async function appWithGuardedRoutes() {
  const { app } = await createTestApp(db.sql, { mailer: memoryMailer() });
  const probe = new Hono<AppEnv>();
  probe.get("/user", requireUser, (c) => c.json({ ok: true }));
  probe.get("/session", requireSession, (c) => c.json({ ok: true }));
  probe.get("/premium", requirePremium, (c) => c.json({ ok: true }));
  probe.get("/mainline", requireMainlineEditor, (c) => c.json({ ok: true }));
  probe.get("/fellow", requireRole("fellow"), (c) => c.json({ ok: true }));
  probe.get("/admin", requireAdmin, (c) => c.json({ ok: true }));
  for (const role of ROLES) probe.get(`/role/${role}`, requireRole(role), (c) => c.json({ ok: true }));
  // Mounted under /api/v1 so API keys are accepted there.
  app.route("/api/v1/probe", probe);
  return app;
}

const expectations: [string, Role[]][] = [
  ["/user", ["basic", "premium", "principal", "fellow"]],
  ["/premium", ["premium", "principal", "fellow"]],
  ["/mainline", ["principal", "fellow"]],
  ["/fellow", ["fellow"]],
  ["/admin", []],
  ...ROLES.map((r) => [`/role/${r}`, [r]] as [string, Role[]]),
];

for (const [path, allowed] of expectations) {
  Deno.test(`guard ${path}: no caller 401, wrong role 403, right role 200, admin 200`, async () => {
    const app = await appWithGuardedRoutes();
    const anonymous = await app.request(`/api/v1/probe${path}`);
    assert.equal(anonymous.status, 401);
    assert.equal((await anonymous.json()).error.code, "unauthorized");
    for (const role of ROLES) {
      const res = await app.request(`/api/v1/probe${path}`, { headers: users[role].headers });
      const expected = allowed.includes(role) ? 200 : 403;
      assert.equal(res.status, expected, `${role} on ${path}`);
      const body = await res.json();
      if (expected === 403) {
        assert.equal(body.error.code, "forbidden");
        assert.ok(body.error.message.length > 10);
      }
    }
    const asAdmin = await app.request(`/api/v1/probe${path}`, { headers: admin.headers });
    assert.equal(asAdmin.status, 200);
  });
}

Deno.test("requireSession: an API key is 403, a session 200, nobody 401", async () => {
  const app = await appWithGuardedRoutes();
  const u = users.basic;
  const key = await apiKeyFor(db.sql, u.id);
  assert.equal((await app.request("/api/v1/probe/session")).status, 401);
  const withKey = await app.request("/api/v1/probe/session", { headers: { authorization: `Bearer ${key}` } });
  assert.equal(withKey.status, 403);
  assert.equal((await withKey.json()).error.code, "session_required");
  assert.equal((await app.request("/api/v1/probe/session", { headers: u.headers })).status, 200);
});

Deno.test("canMakePrivate and canMarkMainline follow SPEC §2", () => {
  for (const role of ROLES) {
    const user = { ...users[role].user };
    assert.equal(canMakePrivate(user), role !== "basic", role);
    assert.equal(canMarkMainline(user), role === "principal" || role === "fellow", role);
  }
  assert.equal(canMarkMainline(admin.user), true);
  assert.equal(canMakePrivate(admin.user), true);
});

Deno.test(
  "/api/admin/users: 401 without a session, 403 for every role, API keys do not count",
  async () => {
    const { app } = await createTestApp(db.sql, { mailer: memoryMailer() });
    assert.equal((await app.request("/api/admin/users")).status, 401);
    for (const role of ROLES) {
      const res = await app.request("/api/admin/users", { headers: users[role].headers });
      assert.equal(res.status, 403, role);
      assert.equal((await res.json()).error.message, "Only the administrator may do this");
    }
    const adminKey = await apiKeyFor(db.sql, admin.id);
    const withKey = await app.request("/api/admin/users", {
      headers: { authorization: `Bearer ${adminKey}` },
    });
    assert.equal(withKey.status, 401);
    assert.equal((await app.request("/api/admin/users", { headers: admin.headers })).status, 200);
  },
);

Deno.test("the admin grants fellow, and the change is audited and takes effect at once", async () => {
  const { app } = await createTestApp(db.sql, { mailer: memoryMailer() });
  const target = await signedIn(db.sql, { role: "basic" });
  const grant = await app.request(
    `/api/admin/users/${target.id}`,
    jsonInit("PATCH", { role: "fellow" }, admin),
  );
  assert.equal(grant.status, 200);
  assert.equal((await grant.json()).user.role, "fellow");
  const me = await app.request("/api/v1/user", { headers: target.headers });
  assert.equal((await me.json()).user.role, "fellow");
  const [entry] = await db.sql`
    SELECT actor_user_id, details FROM audit_log WHERE action = 'user.role_changed' AND target_id = ${
    String(target.id)
  }`;
  assert.equal(entry.actorUserId, admin.id);
  assert.deepEqual(entry.details, { from: "basic", to: "fellow" });

  const bad = await app.request(
    `/api/admin/users/${target.id}`,
    jsonInit("PATCH", { role: "emperor" }, admin),
  );
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error.message, /^role: /);
  const missing = await app.request("/api/admin/users/999999", jsonInit("PATCH", { role: "premium" }, admin));
  assert.equal(missing.status, 404);
  assert.equal((await missing.json()).error.code, "user_not_found");
  const nonAdmin = await app.request(
    `/api/admin/users/${target.id}`,
    jsonInit("PATCH", { role: "basic" }, users.premium),
  );
  assert.equal(nonAdmin.status, 403);
});

Deno.test("the admin deactivates and reactivates a user", async () => {
  const { app } = await createTestApp(db.sql, { mailer: memoryMailer() });
  const target = await signedIn(db.sql, { password: PASSWORD });
  const key = await apiKeyFor(db.sql, target.id);
  const off = await app.request(
    `/api/admin/users/${target.id}/deactivate`,
    jsonInit("POST", undefined, admin),
  );
  assert.equal(off.status, 200);
  assert.equal((await off.json()).user.deactivated, true);
  assert.equal((await app.request("/api/v1/user", { headers: target.headers })).status, 401, "session ended");
  const keyRes = await app.request("/api/v1/user", { headers: { authorization: `Bearer ${key}` } });
  assert.equal(keyRes.status, 401, "API key refused");
  assert.equal((await keyRes.json()).error.code, "account_inactive");
  const login = await app.request(
    "/api/auth/login",
    jsonInit("POST", { email: target.email, password: PASSWORD }),
  );
  assert.equal(login.status, 403);

  const on = await app.request(
    `/api/admin/users/${target.id}/reactivate`,
    jsonInit("POST", undefined, admin),
  );
  assert.equal(on.status, 200);
  assert.equal((await on.json()).user.deactivated, false);
  const again = await app.request(
    "/api/auth/login",
    jsonInit("POST", { email: target.email, password: PASSWORD }),
  );
  assert.equal(again.status, 200);
  assert.equal(
    (await app.request("/api/v1/user", { headers: { authorization: `Bearer ${key}` } })).status,
    200,
  );

  const self = await app.request(
    `/api/admin/users/${admin.id}/deactivate`,
    jsonInit("POST", undefined, admin),
  );
  assert.equal(self.status, 409);
  assert.equal((await self.json()).error.code, "cannot_deactivate_self");
  const actions = await db.sql`
    SELECT action FROM audit_log WHERE target_id = ${String(target.id)} AND action LIKE 'user.%' ORDER BY id`;
  assert.deepEqual(actions.map((a) => a.action), ["user.deactivated", "user.reactivated"]);
});

Deno.test("the admin lists and searches users", async () => {
  const { app } = await createTestApp(db.sql, { mailer: memoryMailer() });
  const res = await app.request(`/api/admin/users?search=${encodeURIComponent(users.fellow.username)}`, {
    headers: admin.headers,
  });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.total, 1);
  assert.equal(body.users[0].role, "fellow");
  assert.equal("passwordHash" in body.users[0], false);
  const one = await app.request(`/api/admin/users/${users.fellow.id}`, { headers: admin.headers });
  assert.equal((await one.json()).user.email, users.fellow.email);
  const badLimit = await app.request("/api/admin/users?limit=0", { headers: admin.headers });
  assert.equal(badLimit.status, 400);
  assert.match((await badLimit.json()).error.message, /^limit: /);
});

Deno.test("/admin/login refuses a non-admin with the right password and admits the admin", async () => {
  const { app } = await createTestApp(db.sql, { mailer: memoryMailer() });
  const basic = await signedIn(db.sql, { password: PASSWORD });
  const form = (login: string, password: string) => ({
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({ login, password }),
  });
  const refused = await app.request("/admin/login", form(basic.email, PASSWORD));
  assert.equal(refused.status, 403);
  assert.match(refused.headers.get("content-type") ?? "", /text\/html/);
  assert.match(await refused.text(), /Only the administrator can sign in here/);
  assert.equal(sessionCookieOf(refused), null);
  const wrong = await app.request("/admin/login", form(admin.email, "wrong password!!"));
  assert.equal(wrong.status, 401);
  assert.match(await wrong.text(), /Email or password is incorrect/);
  const ok = await app.request("/admin/login", form(admin.email, PASSWORD));
  assert.equal(ok.status, 303);
  const cookie = sessionCookieOf(ok)!;
  const page = await app.request("/", { headers: { cookie } });
  assert.match(await page.text(), new RegExp(`>${admin.username}</a>`));
});
