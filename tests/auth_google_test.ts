import assert from "node:assert/strict";
import { Events, OAuth2Server } from "oauth2-mock-server";
import { createTestApp, testConfig } from "./_app.ts";
import { createUser, jsonInit, memoryMailer, sessionCookieOf } from "./_auth.ts";
import { createTestDatabase } from "./_db.ts";

const db = await createTestDatabase();

// A real OpenID provider on a local port: it signs ID tokens with a generated RSA key and
// publishes it at /jwks; its authorize endpoint redirects straight back with a code.
const idp = new OAuth2Server();
await idp.issuer.keys.generate("RS256");
await idp.start(0, "127.0.0.1");
const issuer = idp.issuer.url!;
Deno.test.afterAll(async () => {
  await idp.stop();
  await db.close();
});

// Claims the next ID token carries (the mock's default subject is "johndoe").
let claims: Record<string, unknown> = {};
idp.service.on(Events.BeforeTokenSigning, (token) => Object.assign(token.payload, claims));

const googleEnv = {
  PUBLIC_URL: "http://vox.test",
  GOOGLE_CLIENT_ID: "vox-test-client",
  GOOGLE_CLIENT_SECRET: "vox-test-secret",
  GOOGLE_AUTH_URL: `${issuer}/authorize`,
  GOOGLE_TOKEN_URL: `${issuer}/token`,
  GOOGLE_ISSUER: issuer,
  GOOGLE_JWKS_URL: `${issuer}/jwks`,
};

async function app(env: Record<string, string> = {}) {
  return (await createTestApp(db.sql, {
    mailer: memoryMailer(),
    config: testConfig({ ...googleEnv, ...env }),
  })).app;
}

let n = 0;
function identity(over: Record<string, unknown> = {}) {
  n++;
  return {
    sub: `google-${n}-${Date.now()}`,
    email: `g${n}_${Date.now()}@gmail.test`,
    email_verified: true,
    name: `G ${n}`,
    ...over,
  };
}

/** Starts a sign-in, lets the provider answer, and returns the callback path and the state cookie. */
async function authorize(a: Awaited<ReturnType<typeof app>>, next?: string) {
  const start = await a.request(`/api/auth/google${next ? `?next=${encodeURIComponent(next)}` : ""}`);
  assert.equal(start.status, 302);
  const location = new URL(start.headers.get("location")!);
  assert.equal(location.origin + location.pathname, `${issuer}/authorize`);
  assert.equal(location.searchParams.get("code_challenge_method"), "S256");
  assert.ok(location.searchParams.get("state"));
  assert.ok(location.searchParams.get("nonce"));
  assert.equal(location.searchParams.get("redirect_uri"), "http://vox.test/api/auth/google/callback");
  const stateCookie = start.headers.getSetCookie().find((c) => c.startsWith("vox_oauth_google="))!;
  assert.match(stateCookie, /HttpOnly/);
  const answer = await fetch(location, { redirect: "manual" });
  await answer.body?.cancel();
  const back = new URL(answer.headers.get("location")!);
  return { callback: back.pathname + back.search, cookie: stateCookie.split(";")[0] };
}

const json = (cookie: string) => ({ headers: { cookie, accept: "application/json" } });

Deno.test("GET /api/auth/google/status tells whether Google sign-in is enabled", async () => {
  const on = await (await app()).request("/api/auth/google/status");
  assert.deepEqual(await on.json(), { provider: "google", enabled: true });
  const plain = (await createTestApp(db.sql, { mailer: memoryMailer() })).app;
  assert.deepEqual(await (await plain.request("/api/auth/google/status")).json(), {
    provider: "google",
    enabled: false,
  });
  const start = await plain.request("/api/auth/google");
  assert.equal(start.status, 404);
  assert.equal((await start.json()).error.code, "provider_disabled");
});

Deno.test("a new Google identity with a verified email creates an active basic user", async () => {
  const a = await app();
  claims = identity({ name: "Grace Hopper" });
  const { callback, cookie } = await authorize(a, "/console/projects");
  const res = await a.request(callback, { headers: { cookie, accept: "text/html" } });
  assert.equal(res.status, 303);
  assert.equal(res.headers.get("location"), "/console/projects");
  const session = sessionCookieOf(res);
  assert.ok(session);
  const me = await (await a.request("/api/v1/user", { headers: { cookie: session } })).json();
  assert.equal(me.user.email, claims.email);
  assert.equal(me.user.name, "Grace Hopper");
  assert.equal(me.user.role, "basic");
  assert.equal(me.user.activated, true);
  const [link] = await db
    .sql`SELECT user_id FROM oauth_accounts WHERE provider = 'google' AND provider_user_id = ${claims
    .sub as string}`;
  assert.equal(link.userId, me.user.id);
  const projects = await db.sql`SELECT name FROM projects WHERE owner_user_id = ${me.user.id}`;
  assert.deepEqual(projects.map((p) => p.name), ["Default"]);
  const [{ pw }] = await db.sql`SELECT password_hash IS NULL AS pw FROM users WHERE id = ${me.user.id}`;
  assert.equal(pw, true);

  // Signing in again with the same Google account reuses the user.
  const again = await authorize(a);
  const res2 = await a.request(again.callback, json(again.cookie));
  assert.equal(res2.status, 200);
  assert.equal((await res2.json()).user.id, me.user.id);
});

Deno.test("a verified email links to the existing account with that address", async () => {
  const a = await app();
  const existing = await createUser(db.sql, { password: "existing password 1" });
  claims = identity({ email: existing.email.toUpperCase() });
  const { callback, cookie } = await authorize(a);
  const res = await a.request(callback, json(cookie));
  assert.equal(res.status, 200);
  assert.equal((await res.json()).user.id, existing.id);
  const [{ count }] = await db
    .sql`SELECT count(*)::int FROM users WHERE lower(email) = lower(${existing.email})`;
  assert.equal(count, 1);
  const [audit] = await db
    .sql`SELECT action FROM audit_log WHERE actor_user_id = ${existing.id} ORDER BY id DESC LIMIT 1`;
  assert.equal(audit.action, "auth.oauth.linked");
});

Deno.test(
  "linking to a never-activated account activates it and drops the unproven password",
  async () => {
    const a = await app();
    const squatted = await createUser(db.sql, { password: "squatter password", activated: false });
    claims = identity({ email: squatted.email });
    const { callback, cookie } = await authorize(a);
    const res = await a.request(callback, json(cookie));
    assert.equal(res.status, 200);
    const [u] = await db.sql`SELECT activated_at, password_hash FROM users WHERE id = ${squatted.id}`;
    assert.ok(u.activatedAt);
    assert.equal(u.passwordHash, null);
  },
);

Deno.test(
  "an unverified Google email is refused and neither creates nor links an account",
  async () => {
    const a = await app();
    const existing = await createUser(db.sql);
    for (const email of [`new_${Date.now()}@gmail.test`, existing.email]) {
      claims = identity({ email, email_verified: false });
      const { callback, cookie } = await authorize(a);
      const res = await a.request(callback, json(cookie));
      assert.equal(res.status, 403);
      const body = await res.json();
      assert.equal(body.error.code, "email_unverified");
      assert.match(body.error.message, /not verified/);
      assert.equal(sessionCookieOf(res), null);
      const links = await db.sql`SELECT 1 FROM oauth_accounts WHERE provider_user_id = ${claims
        .sub as string}`;
      assert.equal(links.length, 0);
    }
    const [{ count }] = await db.sql`SELECT count(*)::int FROM users WHERE email LIKE 'new\\_%@gmail.test'`;
    assert.equal(count, 0);
  },
);

Deno.test("a callback with a state that is not this browser's is refused", async () => {
  const a = await app();
  claims = identity();
  const { callback, cookie } = await authorize(a);
  const forged = callback.replace(/state=[^&]+/, "state=forged-state-value");
  const res = await a.request(forged, json(cookie));
  assert.equal(res.status, 400);
  assert.equal((await res.json()).error.code, "oauth_state_mismatch");
  const noCookie = await a.request(callback, { headers: { accept: "application/json" } });
  assert.equal(noCookie.status, 400);
  assert.equal((await noCookie.json()).error.code, "oauth_state_missing");
  // A browser is sent back to the login page with the reason.
  const html = await a.request(forged, { headers: { cookie, accept: "text/html" } });
  assert.equal(html.status, 303);
  assert.equal(html.headers.get("location"), "/login?error=oauth_state_mismatch");
  const page = await a.request("/login?error=oauth_state_mismatch");
  assert.match(await page.text(), /did not match this browser/);
});

Deno.test("a replayed authorization code is refused", async () => {
  const a = await app();
  claims = identity();
  const { callback, cookie } = await authorize(a);
  const first = await a.request(callback, json(cookie));
  assert.equal(first.status, 200);
  assert.match(first.headers.getSetCookie().join("\n"), /vox_oauth_google=;/, "the state cookie is spent");
  // The browser no longer has the state; an attacker who kept the cookie meets the provider's refusal.
  const replayNoCookie = await a.request(callback, json(""));
  assert.equal(replayNoCookie.status, 400);
  assert.equal((await replayNoCookie.json()).error.code, "oauth_state_missing");
  const replay = await a.request(callback, json(cookie));
  assert.equal(replay.status, 400);
  const body = await replay.json();
  assert.equal(body.error.code, "oauth_code_rejected");
  assert.match(body.error.message, /already used/);
  assert.equal(sessionCookieOf(replay), null);
});

Deno.test("an ID token from another issuer or for another client does not verify", async () => {
  // Our side expects another issuer than the one that signed the token.
  const wrongIssuer = await app({ GOOGLE_ISSUER: "https://accounts.google.com" });
  claims = identity();
  const first = await authorize(wrongIssuer);
  const res = await wrongIssuer.request(first.callback, json(first.cookie));
  assert.equal(res.status, 400);
  assert.equal((await res.json()).error.code, "oauth_token_invalid");
  // The provider issued the token to another client.
  const a = await app();
  claims = { ...identity(), aud: "another-client" };
  const second = await authorize(a);
  const res2 = await a.request(second.callback, json(second.cookie));
  assert.equal(res2.status, 400);
  assert.equal((await res2.json()).error.code, "oauth_token_invalid");
});

Deno.test("an ID token carrying another attempt's nonce is refused", async () => {
  const a = await app();
  claims = { ...identity(), nonce: "some-other-attempt" };
  const { callback, cookie } = await authorize(a);
  const res = await a.request(callback, json(cookie));
  assert.equal(res.status, 400);
  assert.equal((await res.json()).error.code, "oauth_token_invalid");
});

Deno.test("a deactivated account cannot sign in with Google", async () => {
  const a = await app();
  claims = identity();
  const first = await authorize(a);
  const res = await a.request(first.callback, json(first.cookie));
  const id = (await res.json()).user.id;
  await db.sql`UPDATE users SET deactivated_at = now() WHERE id = ${id}`;
  const second = await authorize(a);
  const refused = await a.request(second.callback, json(second.cookie));
  assert.equal(refused.status, 403);
  assert.equal((await refused.json()).error.code, "account_deactivated");
});

Deno.test("the login page offers Google only when it is enabled", async () => {
  assert.match(await (await (await app()).request("/login")).text(), /Sign in with Google/);
  const plain = (await createTestApp(db.sql, { mailer: memoryMailer() })).app;
  assert.doesNotMatch(await (await plain.request("/login")).text(), /Sign in with Google/);
  await (await plain.request("/api/auth/logout", jsonInit("POST"))).body?.cancel();
});
