import assert from "node:assert/strict";
import { formatApiKey, generateApiKey, parseApiKey } from "../lib/auth/api_keys.ts";
import { createSql } from "../lib/db.ts";
import { freePort } from "../lib/embedded_pg.ts";
import { createTestApp } from "./_app.ts";
import { apiKeyFor, jsonInit, memoryMailer, signedIn, withApiKey } from "./_auth.ts";
import { createTestDatabase } from "./_db.ts";

const db = await createTestDatabase();
Deno.test.afterAll(() => db.close());

const app = async () => (await createTestApp(db.sql, { mailer: memoryMailer() })).app;
const bearer = (key: string) => ({ headers: { authorization: `Bearer ${key}` } });

Deno.test("a malformed key is refused without touching the database", async () => {
  // The app's database is unreachable: a lookup would fail with 500, not 401.
  const dead = createSql(`postgres://nobody@127.0.0.1:${freePort()}/none`, { max: 1 });
  const { app: offline } = await createTestApp(dead, { mailer: memoryMailer() });
  const { raw } = generateApiKey();
  const typo = raw.slice(0, -1) + (raw.endsWith("a") ? "b" : "a");
  const res = await offline.request("/api/v1/user", bearer(typo));
  assert.equal(res.status, 401);
  const body = await res.json();
  assert.equal(body.error.code, "invalid_api_key");
  assert.match(body.error.message, /checksum/);
  await dead.end();
});

Deno.test("uses of two keys at once are each counted once, written before the answers", async () => {
  const a = await app();
  const u = await signedIn(db.sql);
  const keys = await Promise.all(["one", "two"].map(async (name) => {
    const res = await a.request("/api/v1/api-keys", jsonInit("POST", { name }, u));
    return (await res.json()) as { key: string; apiKey: { id: string } };
  }));
  // 12 + 5 requests at once: most arrive while an update is in flight and share the next one.
  const uses = [...Array(12).fill(keys[0]), ...Array(5).fill(keys[1])];
  const statuses = await Promise.all(uses.map(async (k) => {
    const res = await a.request("/api/v1/user", bearer(k.key));
    await res.body?.cancel();
    return res.status;
  }));
  assert.deepEqual(new Set(statuses), new Set([200]));
  const rows = await db.sql`
    SELECT id, usage_count FROM api_keys WHERE id IN ${db.sql(keys.map((k) => k.apiKey.id))} ORDER BY name`;
  const counts = Object.fromEntries(rows.map((r) => [r.id, r.usageCount]));
  assert.equal(counts[keys[0].apiKey.id], 12);
  assert.equal(counts[keys[1].apiKey.id], 5);
});

Deno.test("create → use → list shows usage → revoke → 401 → delete", async () => {
  const a = await app();
  const u = await signedIn(db.sql);
  const created = await a.request("/api/v1/api-keys", jsonInit("POST", { name: "ci" }, u));
  assert.equal(created.status, 201);
  assert.equal(created.headers.get("cache-control"), "no-store");
  const { key, apiKey } = await created.json();
  assert.match(key, /^vox_live_[0-9a-z]{12}_/);
  assert.equal(apiKey.prefix, `vox_live_${apiKey.id}`);

  const [row] = await db.sql`SELECT secret_hash, display_prefix FROM api_keys WHERE id = ${apiKey.id}`;
  assert.match(row.secretHash, /^[0-9a-f]{64}$/);
  assert.ok(!key.includes(row.secretHash));

  for (let i = 0; i < 3; i++) {
    const me = await a.request("/api/v1/user", bearer(key));
    assert.equal(me.status, 200);
    const body = await me.json();
    assert.equal(body.user.id, u.id);
    assert.equal(body.user.via, "api_key");
  }
  const list = await (await a.request("/api/v1/api-keys", { headers: u.headers })).json();
  assert.equal(list.apiKeys.length, 1);
  const listed = list.apiKeys[0];
  assert.equal(listed.name, "ci");
  assert.equal(listed.usageCount, 3);
  assert.ok(listed.lastUsedAt);
  assert.ok(listed.createdAt);
  assert.equal(listed.expiresAt, null);
  assert.equal(listed.status, "active");
  assert.equal(JSON.stringify(list).includes(key), false, "the raw key is never listed");
  // Listing works with the key too.
  assert.equal((await a.request("/api/v1/api-keys", bearer(key))).status, 200);

  const revoked = await a.request(`/api/v1/api-keys/${apiKey.id}/revoke`, jsonInit("POST", undefined, u));
  assert.equal(revoked.status, 200);
  assert.equal((await revoked.json()).apiKey.status, "revoked");
  const after = await a.request("/api/v1/user", bearer(key));
  assert.equal(after.status, 401);
  assert.deepEqual(await after.json(), {
    error: { code: "api_key_revoked", message: "API key has been revoked" },
  });

  const del = await a.request(`/api/v1/api-keys/${apiKey.id}`, jsonInit("DELETE", undefined, u));
  assert.equal(del.status, 204);
  const gone = await a.request("/api/v1/user", bearer(key));
  assert.equal(gone.status, 401);
  assert.equal((await gone.json()).error.code, "invalid_api_key");
  const again = await a.request(`/api/v1/api-keys/${apiKey.id}`, jsonInit("DELETE", undefined, u));
  assert.equal(again.status, 404);

  const audit = await db.sql`
    SELECT action FROM audit_log WHERE target_type = 'api_key' AND target_id = ${apiKey.id} ORDER BY id`;
  assert.deepEqual(audit.map((r) => r.action), ["api_key.created", "api_key.revoked", "api_key.deleted"]);
});

Deno.test("an expired key is 401; an expiry in the past is refused at creation", async () => {
  const a = await app();
  const u = await signedIn(db.sql);
  const soon = new Date(Date.now() + 3600_000).toISOString();
  const created = await a.request(
    "/api/v1/api-keys",
    jsonInit("POST", { name: "short", expiresAt: soon }, u),
  );
  assert.equal(created.status, 201);
  const { key, apiKey } = await created.json();
  assert.equal(apiKey.expiresAt, soon);
  assert.equal((await a.request("/api/v1/user", bearer(key))).status, 200);
  await db.sql`UPDATE api_keys SET expires_at = now() - interval '1 second' WHERE id = ${apiKey.id}`;
  const res = await a.request("/api/v1/user", bearer(key));
  assert.equal(res.status, 401);
  assert.equal((await res.json()).error.code, "api_key_expired");
  const list = await (await a.request("/api/v1/api-keys", { headers: u.headers })).json();
  assert.equal(list.apiKeys[0].status, "expired");

  const past = await a.request(
    "/api/v1/api-keys",
    jsonInit("POST", { name: "past", expiresAt: "2001-01-01T00:00:00Z" }, u),
  );
  assert.equal(past.status, 400);
  assert.match((await past.json()).error.message, /^expiresAt: must be in the future/);
});

Deno.test("a well-formed key with a wrong secret or an unknown id gets one answer", async () => {
  const a = await app();
  const u = await signedIn(db.sql);
  const real = await apiKeyFor(db.sql, u.id);
  const { id } = parseApiKey(real) as { id: string };
  const stranger = generateApiKey();
  // Checksums are valid, so both reach the database: the real id with another secret, and an unknown id.
  for (const key of [formatApiKey(id, stranger.secret), stranger.raw]) {
    const res = await a.request("/api/v1/user", bearer(key));
    assert.equal(res.status, 401);
    assert.deepEqual(await res.json(), {
      error: { code: "invalid_api_key", message: "API key is not valid" },
    });
  }
  assert.equal((await a.request("/api/v1/user", bearer(real))).status, 200);
});

Deno.test("Bearer is only read on /api/v1/*; other schemes are refused there", async () => {
  const a = await app();
  const u = await signedIn(db.sql);
  const key = await apiKeyFor(db.sql, u.id);
  const basic = await a.request("/api/v1/user", { headers: { authorization: "Basic dXNlcjpwYXNz" } });
  assert.equal(basic.status, 401);
  assert.equal((await basic.json()).error.code, "invalid_authorization");
  const status = await a.request("/api/auth/status", bearer(key));
  assert.equal((await status.json()).authenticated, false, "the key is ignored outside /api/v1");
});

Deno.test("creating a key needs a browser session; a key cannot mint keys", async () => {
  const a = await app();
  const u = await signedIn(db.sql);
  const key = await apiKeyFor(db.sql, u.id);
  const res = await a.request("/api/v1/api-keys", jsonInit("POST", { name: "more" }, { apiKey: key }));
  assert.equal(res.status, 403);
  assert.equal((await res.json()).error.code, "session_required");
  assert.equal((await a.request("/api/v1/api-keys", jsonInit("POST", { name: "x" }))).status, 401);
  const noName = await a.request("/api/v1/api-keys", jsonInit("POST", { name: "" }, u));
  assert.equal(noName.status, 400);
  assert.match((await noName.json()).error.message, /^name: /);
});

Deno.test("a user cannot revoke or delete someone else's key", async () => {
  const a = await app();
  const owner = await signedIn(db.sql);
  const other = await signedIn(db.sql);
  const key = await apiKeyFor(db.sql, owner.id);
  const id = (parseApiKey(key) as { id: string }).id;
  assert.equal(
    (await a.request(`/api/v1/api-keys/${id}/revoke`, jsonInit("POST", undefined, other))).status,
    404,
  );
  assert.equal((await a.request(`/api/v1/api-keys/${id}`, jsonInit("DELETE", undefined, other))).status, 404);
  assert.equal((await a.request("/api/v1/user", bearer(key))).status, 200);
  const bad = await a.request("/api/v1/api-keys/NOT-AN-ID/revoke", jsonInit("POST", undefined, owner));
  assert.equal(bad.status, 400);
});

Deno.test("tests/_auth.ts withApiKey() gives a caller other test files can use", async () => {
  const a = await app();
  const caller = await withApiKey(db.sql, { role: "premium" });
  const res = await a.request("/api/v1/user", { headers: caller.headers });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.user.id, caller.id);
  assert.equal(body.user.role, "premium");
});

Deno.test(
  "an API key request is not refused as cross-site; a cookie request with the same headers is",
  async () => {
    const a = await app();
    const keyCaller = await withApiKey(db.sql, { role: "basic" });
    const crossSite = { origin: "https://evil.example", "sec-fetch-site": "cross-site" };
    const byKey = await a.request(
      "/api/v1/projects",
      jsonInit("POST", { name: "Made by key" }, { headers: { ...keyCaller.headers, ...crossSite } }),
    );
    assert.equal(byKey.status, 201, await byKey.clone().text());
    await byKey.body?.cancel();

    const cookieCaller = await signedIn(db.sql, { role: "basic" });
    const byCookie = await a.request(
      "/api/v1/projects",
      jsonInit("POST", { name: "Made by cookie" }, { headers: { ...cookieCaller.headers, ...crossSite } }),
    );
    assert.equal(byCookie.status, 403);
    assert.equal((await byCookie.json()).error.code, "csrf_rejected");
    const [{ n }] = await db.sql`SELECT count(*)::int AS n FROM projects WHERE name = 'Made by cookie'`;
    assert.equal(n, 0);
  },
);
