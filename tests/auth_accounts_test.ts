import assert from "node:assert/strict";
import { hashToken } from "../lib/auth/tokens.ts";
import { createTestApp, testConfig } from "./_app.ts";
import {
  activationTokenIn,
  createUser,
  jsonInit,
  memoryMailer,
  sessionCookieOf,
  sessionFor,
} from "./_auth.ts";
import { createTestDatabase } from "./_db.ts";

const db = await createTestDatabase();
Deno.test.afterAll(() => db.close());
const PASSWORD = "correct horse battery staple";

async function setup() {
  const mailer = memoryMailer();
  const t = await createTestApp(db.sql, { mailer, config: testConfig({ PUBLIC_URL: "http://vox.test" }) });
  return { ...t, mailer };
}

let n = 0;
const freshEmail = () => `person${++n}_${Date.now().toString(36)}@example.test`;

Deno.test("sign-up → activation → login → status → logout", async () => {
  const { app, mailer } = await setup();
  const email = freshEmail();
  const signup = await app.request(
    "/api/auth/signup",
    jsonInit("POST", { email, password: PASSWORD, name: "Ada" }),
  );
  assert.equal(signup.status, 202);
  assert.match(signup.headers.get("content-type") ?? "", /application\/json/);
  assert.equal((await signup.json()).status, "pending_activation");

  const [user] = await db.sql`SELECT id, role, activated_at, password_hash FROM users WHERE email = ${email}`;
  assert.equal(user.role, "basic");
  assert.equal(user.activatedAt, null);
  assert.match(user.passwordHash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  const projects = await db.sql`SELECT name FROM projects WHERE owner_user_id = ${user.id}`;
  assert.deepEqual(projects.map((p) => p.name), ["Default"]);

  // Not activated: the right password is refused with a message that says why.
  const early = await app.request("/api/auth/login", jsonInit("POST", { email, password: PASSWORD }));
  assert.equal(early.status, 403);
  assert.equal((await early.json()).error.code, "account_inactive");

  assert.equal(mailer.sent.length, 1);
  assert.equal(mailer.sent[0].to, email);
  assert.match(mailer.sent[0].text, /http:\/\/vox\.test\/activate\/[a-z2-7]{32}/);
  const token = activationTokenIn(mailer.sent[0].text);
  // The link alone, or with another password, activates nothing: whoever clicks it must know the
  // password given at sign-up.
  const bare = await app.request("/api/auth/activate", jsonInit("POST", { token }));
  assert.equal(bare.status, 400);
  assert.equal((await bare.json()).error.code, "password_required");
  const wrong = await app.request(
    "/api/auth/activate",
    jsonInit("POST", { token, password: "not the one at all" }),
  );
  assert.equal(wrong.status, 400);
  assert.equal((await wrong.json()).error.code, "wrong_password");
  const activated = await app.request("/api/auth/activate", jsonInit("POST", { token, password: PASSWORD }));
  assert.equal(activated.status, 200);
  assert.equal((await activated.json()).user.activated, true);

  const login = await app.request("/api/auth/login", jsonInit("POST", { email, password: PASSWORD }));
  assert.equal(login.status, 200);
  assert.equal((await login.json()).user.email, email);
  const cookie = sessionCookieOf(login);
  assert.ok(cookie);
  const setCookie = login.headers.getSetCookie().join("\n");
  assert.match(setCookie, /HttpOnly/);
  assert.match(setCookie, /SameSite=Lax/);
  assert.doesNotMatch(setCookie, /Secure/);

  const status = await app.request("/api/auth/status", { headers: { cookie } });
  const body = await status.json();
  assert.equal(body.authenticated, true);
  assert.equal(body.user.email, email);
  assert.equal(body.user.via, "session");

  const me = await app.request("/api/v1/user", { headers: { cookie } });
  assert.equal(me.status, 200);
  assert.equal((await me.json()).user.email, email);

  const logout = await app.request("/api/auth/logout", jsonInit("POST", undefined, { cookie }));
  assert.equal(logout.status, 200);
  assert.match(logout.headers.getSetCookie().join("\n"), /vox_session=;/);
  const after = await app.request("/api/v1/user", { headers: { cookie } });
  assert.equal(after.status, 401);
  assert.equal((await after.json()).error.code, "unauthorized");
  const [{ count }] = await db.sql`SELECT count(*)::int FROM sessions WHERE user_id = ${user.id}`;
  assert.equal(count, 0);
});

Deno.test("an activation token works once; a reused one is refused", async () => {
  const { app, mailer } = await setup();
  const email = freshEmail();
  await app.request("/api/auth/signup", jsonInit("POST", { email, password: PASSWORD }));
  const token = activationTokenIn(mailer.sent.at(-1)!.text);
  assert.equal(
    (await app.request("/api/auth/activate", jsonInit("POST", { token, password: PASSWORD }))).status,
    200,
  );
  const again = await app.request("/api/auth/activate", jsonInit("POST", { token, password: PASSWORD }));
  assert.equal(again.status, 400);
  const body = await again.json();
  assert.equal(body.error.code, "token_used");
  assert.match(body.error.message, /already used/);
});

Deno.test("an expired activation token is refused and leaves the account inactive", async () => {
  const { app, mailer } = await setup();
  const email = freshEmail();
  await app.request("/api/auth/signup", jsonInit("POST", { email, password: PASSWORD }));
  const token = activationTokenIn(mailer.sent.at(-1)!.text);
  await db.sql`
    UPDATE activation_tokens SET expires_at = now() - interval '1 second'
    WHERE user_id = (SELECT id FROM users WHERE email = ${email})`;
  const res = await app.request("/api/auth/activate", jsonInit("POST", { token }));
  assert.equal(res.status, 400);
  assert.equal((await res.json()).error.code, "token_expired");
  const [u] = await db.sql`SELECT activated_at FROM users WHERE email = ${email}`;
  assert.equal(u.activatedAt, null);
});

Deno.test("unknown and malformed activation tokens are refused", async () => {
  const { app } = await setup();
  for (const token of ["a".repeat(32), "not-a-token", ""]) {
    const res = await app.request("/api/auth/activate", jsonInit("POST", { token }));
    assert.equal(res.status, 400, token);
    assert.equal((await res.json()).error.code, "token_invalid");
  }
});

Deno.test("signing up twice with one address answers alike and mails the owner a notice", async () => {
  const { app, mailer } = await setup();
  const existing = await createUser(db.sql, { email: freshEmail() });
  const fresh = freshEmail();
  const a = await app.request(
    "/api/auth/signup",
    jsonInit("POST", { email: existing.email, password: PASSWORD }),
  );
  const b = await app.request("/api/auth/signup", jsonInit("POST", { email: fresh, password: PASSWORD }));
  assert.equal(a.status, b.status);
  assert.deepEqual(await a.json(), await b.json());
  const notice = mailer.sent.find((m) => m.to === existing.email)!;
  assert.match(notice.subject, /already have an account/);
  assert.doesNotMatch(notice.text, /\/activate\//);
});

Deno.test("sign-up refuses short passwords and bad emails naming the field", async () => {
  const { app } = await setup();
  const short = await app.request(
    "/api/auth/signup",
    jsonInit("POST", { email: freshEmail(), password: "short" }),
  );
  assert.equal(short.status, 400);
  const s = await short.json();
  assert.equal(s.error.code, "weak_password");
  assert.match(s.error.message, /at least 12 characters/);
  const bad = await app.request("/api/auth/signup", jsonInit("POST", { email: "nope", password: PASSWORD }));
  assert.equal(bad.status, 400);
  assert.match((await bad.json()).error.message, /^email: /);
});

Deno.test("unknown login, wrong password and password-less account get the same 401", async () => {
  const { app } = await setup();
  const withPassword = await createUser(db.sql, { password: PASSWORD });
  const oauthOnly = await createUser(db.sql);
  const bodies = [];
  for (
    const body of [
      { email: "nobody-here@example.test", password: PASSWORD },
      { email: withPassword.email, password: PASSWORD + "x" },
      { email: oauthOnly.email, password: PASSWORD },
    ]
  ) {
    const res = await app.request("/api/auth/login", jsonInit("POST", body));
    assert.equal(res.status, 401);
    bodies.push(await res.json());
  }
  assert.deepEqual(bodies[0], bodies[1]);
  assert.deepEqual(bodies[1], bodies[2]);
  assert.deepEqual(bodies[0], {
    error: { code: "invalid_credentials", message: "Email or password is incorrect" },
  });
  const ok = await app.request(
    "/api/auth/login",
    jsonInit("POST", { login: withPassword.username, password: PASSWORD }),
  );
  assert.equal(ok.status, 200, "a username works as the login too");
});

Deno.test("every login issues a new session token and ends the browser's previous one", async () => {
  const { app } = await setup();
  const u = await createUser(db.sql, { password: PASSWORD });
  const first = sessionCookieOf(
    await app.request("/api/auth/login", jsonInit("POST", { email: u.email, password: PASSWORD })),
  )!;
  const second = sessionCookieOf(
    await app.request(
      "/api/auth/login",
      jsonInit("POST", { email: u.email, password: PASSWORD }, { cookie: first }),
    ),
  )!;
  assert.notEqual(first, second);
  assert.equal((await app.request("/api/v1/user", { headers: { cookie: first } })).status, 401);
  assert.equal((await app.request("/api/v1/user", { headers: { cookie: second } })).status, 200);
  const token = second.split("=")[1];
  assert.ok(token.length >= 26, "at least 128 bits of base32");
  const stored = await db.sql`SELECT id FROM sessions WHERE user_id = ${u.id}`;
  assert.equal(stored.length, 1);
  assert.match(stored[0].id, /^[0-9a-f]{64}$/);
  assert.notEqual(stored[0].id, token);
});

Deno.test(
  "sessions expire when idle and at their absolute limit; activity slides the idle expiry",
  async () => {
    const { app } = await setup();
    const u = await createUser(db.sql, { password: PASSWORD });
    const login = async () =>
      sessionCookieOf(
        await app.request("/api/auth/login", jsonInit("POST", { email: u.email, password: PASSWORD })),
      )!;

    const sliding = await login();
    await db.sql`
    UPDATE sessions SET last_seen_at = now() - interval '2 hours', idle_expires_at = now() + interval '1 hour'
    WHERE user_id = ${u.id}`;
    assert.equal((await app.request("/api/v1/user", { headers: { cookie: sliding } })).status, 200);
    const [slid] = await db.sql`
    SELECT idle_expires_at > now() + interval '6 days' AS slid FROM sessions WHERE user_id = ${u.id}`;
    assert.equal(slid.slid, true, "idle expiry moved forward by the idle timeout");

    await db.sql`UPDATE sessions SET idle_expires_at = now() - interval '1 second' WHERE user_id = ${u.id}`;
    const idle = await app.request("/api/v1/user", { headers: { cookie: sliding } });
    assert.equal(idle.status, 401);
    assert.match(idle.headers.getSetCookie().join(";"), /vox_session=;/, "the dead cookie is cleared");

    const absolute = await login();
    await db.sql`
    UPDATE sessions SET absolute_expires_at = now() - interval '1 second', idle_expires_at = now() + interval '1 day'
    WHERE user_id = ${u.id}`;
    assert.equal((await app.request("/api/v1/user", { headers: { cookie: absolute } })).status, 401);
    const [{ count }] = await db.sql`SELECT count(*)::int FROM sessions WHERE user_id = ${u.id}`;
    assert.equal(count, 0);

    const capped = await login();
    await db.sql`
    UPDATE sessions SET last_seen_at = now() - interval '2 hours', absolute_expires_at = now() + interval '1 hour'
    WHERE user_id = ${u.id}`;
    assert.equal((await app.request("/api/v1/user", { headers: { cookie: capped } })).status, 200);
    const [c] = await db
      .sql`SELECT idle_expires_at <= absolute_expires_at AS ok FROM sessions WHERE user_id = ${u.id}`;
    assert.equal(c.ok, true, "sliding never passes the absolute expiry");
  },
);

Deno.test("behind https the cookie is Secure with the __Host- prefix", async () => {
  const { app } = await createTestApp(db.sql, {
    mailer: memoryMailer(),
    config: testConfig({ PUBLIC_URL: "https://vox.example" }),
  });
  const u = await createUser(db.sql, { password: PASSWORD });
  const res = await app.request(
    "https://vox.example/api/auth/login",
    jsonInit("POST", { email: u.email, password: PASSWORD }),
  );
  assert.equal(res.status, 200);
  const line = res.headers.getSetCookie().find((l) => l.startsWith("__Host-vox_session="))!;
  assert.match(line, /; Secure/);
  assert.match(line, /; HttpOnly/);
  assert.match(line, /; Path=\//);
  assert.doesNotMatch(line, /Domain=/);
  const cookie = sessionCookieOf(res)!;
  assert.equal((await app.request("https://vox.example/api/v1/user", { headers: { cookie } })).status, 200);
});

Deno.test("behind a trusted proxy that terminates TLS the cookie is Secure too", async () => {
  const { app } = await createTestApp(db.sql, {
    mailer: memoryMailer(),
    config: testConfig({ TRUST_PROXY: "true" }),
  });
  const u = await createUser(db.sql, { password: PASSWORD });
  const res = await app.request(
    "/api/auth/login",
    jsonInit("POST", { email: u.email, password: PASSWORD }, { headers: { "x-forwarded-proto": "https" } }),
  );
  assert.equal(res.status, 200);
  assert.match(res.headers.getSetCookie().join("\n"), /^__Host-vox_session=[a-z2-7]{32}; .*Secure/m);
  // Without TRUST_PROXY the header is ignored.
  const { app: direct } = await createTestApp(db.sql, { mailer: memoryMailer() });
  const plain = await direct.request(
    "/api/auth/login",
    jsonInit("POST", { email: u.email, password: PASSWORD }, { headers: { "x-forwarded-proto": "https" } }),
  );
  assert.match(plain.headers.getSetCookie().join("\n"), /^vox_session=/m);
});

Deno.test("changing the password ends every session and the old password stops working", async () => {
  const { app } = await setup();
  const u = await createUser(db.sql, { password: PASSWORD });
  const login = async (password: string) =>
    await app.request("/api/auth/login", jsonInit("POST", { email: u.email, password }));
  const a = sessionCookieOf(await login(PASSWORD))!;
  const b = sessionCookieOf(await login(PASSWORD))!;
  const wrong = await app.request(
    "/api/v1/user/password",
    jsonInit("POST", { currentPassword: "not it at all!", newPassword: "another long passphrase" }, {
      cookie: a,
    }),
  );
  assert.equal(wrong.status, 403);
  assert.equal((await wrong.json()).error.code, "wrong_password");
  const changed = await app.request(
    "/api/v1/user/password",
    jsonInit("POST", { currentPassword: PASSWORD, newPassword: "another long passphrase" }, { cookie: a }),
  );
  assert.equal(changed.status, 200);
  const fresh = sessionCookieOf(changed)!;
  assert.equal((await app.request("/api/v1/user", { headers: { cookie: a } })).status, 401);
  assert.equal((await app.request("/api/v1/user", { headers: { cookie: b } })).status, 401);
  assert.equal((await app.request("/api/v1/user", { headers: { cookie: fresh } })).status, 200);
  assert.equal((await login(PASSWORD)).status, 401);
  assert.equal((await login("another long passphrase")).status, 200);
});

Deno.test(
  "cross-site state-changing requests are refused; same-origin and non-browser ones pass",
  async () => {
    const { app } = await setup();
    const u = await createUser(db.sql, { password: PASSWORD });
    const cookie = sessionCookieOf(
      await app.request("/api/auth/login", jsonInit("POST", { email: u.email, password: PASSWORD })),
    )!;
    const cases: [Record<string, string>, number][] = [
      [{ "sec-fetch-site": "cross-site", origin: "https://evil.example" }, 403],
      [{ "sec-fetch-site": "same-site", origin: "https://sub.vox.test" }, 403],
      [{ origin: "https://evil.example" }, 403],
      [{ origin: "null" }, 403],
      [{ "sec-fetch-site": "same-origin", origin: "http://vox.test" }, 200],
      [{ origin: "http://vox.test" }, 200],
      [{ origin: "http://localhost" }, 200],
      [{}, 200],
    ];
    for (const [headers, status] of cases) {
      const res = await app.request(
        "/api/auth/logout",
        jsonInit("POST", undefined, { cookie, headers }),
      );
      assert.equal(res.status, status, JSON.stringify(headers));
      if (status === 403) {
        const body = await res.json();
        assert.equal(body.error.code, "csrf_rejected");
        assert.match(body.error.message, /Cross-site request refused/);
        assert.equal(
          (await app.request("/api/v1/user", { headers: { cookie } })).status,
          200,
          "still signed in",
        );
      } else {
        await res.body?.cancel();
      }
    }
    // A cross-site login form (login CSRF) is refused too.
    const forged = await app.request("/login", {
      method: "POST",
      headers: { origin: "https://evil.example", "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ login: u.email, password: PASSWORD }),
    });
    assert.equal(forged.status, 403);
  },
);

Deno.test("a deactivated user's sessions end and they cannot sign in", async () => {
  const { app } = await setup();
  const u = await createUser(db.sql, { password: PASSWORD });
  const cookie = sessionCookieOf(
    await app.request("/api/auth/login", jsonInit("POST", { email: u.email, password: PASSWORD })),
  )!;
  await db.sql`UPDATE users SET deactivated_at = now() WHERE id = ${u.id}`;
  assert.equal((await app.request("/api/v1/user", { headers: { cookie } })).status, 401);
  const res = await app.request("/api/auth/login", jsonInit("POST", { email: u.email, password: PASSWORD }));
  assert.equal(res.status, 403);
  assert.equal((await res.json()).error.code, "account_deactivated");
});

Deno.test("pruneIdentity() drops expired sessions and old tokens, keeps live ones", async () => {
  const { pruneIdentity } = await import("../lib/auth/maintenance.ts");
  const u = await createUser(db.sql);
  const live = await sessionFor(db.sql, u.id);
  const dead = await sessionFor(db.sql, u.id);
  await db.sql`UPDATE sessions SET idle_expires_at = now() - interval '1 minute' WHERE id = ${
    hashToken(dead.token)
  }`;
  await db.sql`
    INSERT INTO activation_tokens (token_hash, user_id, expires_at, used_at)
    VALUES (${hashToken("old")}, ${u.id}, now() - interval '30 days', now() - interval '20 days'),
           (${hashToken("fresh")}, ${u.id}, now() + interval '1 day', NULL)`;
  const pruned = await pruneIdentity(db.sql);
  assert.ok(pruned.sessions >= 1);
  assert.ok(pruned.tokens >= 1);
  const sessions = await db.sql`SELECT id FROM sessions WHERE user_id = ${u.id}`;
  assert.deepEqual(sessions.map((s) => s.id), [hashToken(live.token)]);
  const tokens = await db.sql`SELECT token_hash FROM activation_tokens WHERE user_id = ${u.id}`;
  assert.deepEqual(tokens.map((t) => t.tokenHash), [hashToken("fresh")]);
});

Deno.test("signing up again before activation never sets a password: the newest link asks for one", async () => {
  const { app, mailer } = await setup();
  const email = freshEmail();
  const [pw1, pw2, pw3] = ["first passphrase one", "second passphrase two", "chosen passphrase three"];
  assert.equal(
    (await app.request("/api/auth/signup", jsonInit("POST", { email, password: pw1 }))).status,
    202,
  );
  assert.equal(
    (await app.request("/api/auth/signup", jsonInit("POST", { email, password: pw2 }))).status,
    202,
  );
  const mails = mailer.sent.filter((m) => m.to === email);
  assert.equal(mails.length, 2);
  const firstToken = activationTokenIn(mails[0].text);
  const newest = activationTokenIn(mails[1].text);
  assert.match(mails[1].text, /choose a password/);

  // The newest link does not activate with whatever password a sign-up gave…
  const bare = await app.request("/api/auth/activate", jsonInit("POST", { token: newest }));
  assert.equal(bare.status, 400);
  assert.equal((await bare.json()).error.code, "password_required");
  const page = await app.request(`/activate/${newest}`);
  assert.match(await page.text(), /Choose a password/);
  // …and the first link no longer works at all.
  const old = await app.request("/api/auth/activate", jsonInit("POST", { token: firstToken }));
  assert.equal(old.status, 400);

  const activated = await app.request(
    "/api/auth/activate",
    jsonInit("POST", { token: newest, password: pw3 }),
  );
  assert.equal(activated.status, 200);
  const login = (password: string) => app.request("/api/auth/login", jsonInit("POST", { email, password }));
  assert.equal((await login(pw2)).status, 401);
  assert.equal((await login(pw1)).status, 401);
  assert.equal((await login(pw3)).status, 200);
});

Deno.test("a password change with revokeApiKeys revokes the keys; without it they keep working", async () => {
  const { app } = await setup();
  const u = await createUser(db.sql, { password: PASSWORD });
  const { apiKeyFor } = await import("./_auth.ts");
  const signIn = async (password: string) =>
    sessionCookieOf(await app.request("/api/auth/login", jsonInit("POST", { email: u.email, password })))!;
  const asKey = (key: string) => app.request("/api/v1/user", { headers: { authorization: `Bearer ${key}` } });

  const kept = await apiKeyFor(db.sql, u.id, "kept");
  const plain = await app.request(
    "/api/v1/user/password",
    jsonInit("POST", { currentPassword: PASSWORD, newPassword: "middle passphrase 2" }, {
      cookie: await signIn(PASSWORD),
    }),
  );
  assert.equal(plain.status, 200);
  assert.equal((await plain.json()).apiKeysRevoked, 0);
  assert.equal((await asKey(kept)).status, 200);

  const second = await apiKeyFor(db.sql, u.id, "second");
  const revoking = await app.request(
    "/api/v1/user/password",
    jsonInit("POST", {
      currentPassword: "middle passphrase 2",
      newPassword: "final passphrase 3",
      revokeApiKeys: true,
    }, { cookie: await signIn("middle passphrase 2") }),
  );
  assert.equal(revoking.status, 200);
  assert.equal((await revoking.json()).apiKeysRevoked, 2);
  for (const key of [kept, second]) {
    const res = await asKey(key);
    assert.equal(res.status, 401);
    assert.equal((await res.json()).error.code, "api_key_revoked");
  }
  const [audit] = await db.sql`
    SELECT details FROM audit_log WHERE action = 'user.password_changed' AND target_id = ${String(u.id)}
    ORDER BY id DESC LIMIT 1`;
  assert.equal(audit.details.apiKeysRevoked, 2);
  const wrongType = await app.request(
    "/api/v1/user/password",
    jsonInit("POST", {
      currentPassword: "final passphrase 3",
      newPassword: "x passphrase 4",
      revokeApiKeys: "yes",
    }, {
      cookie: await signIn("final passphrase 3"),
    }),
  );
  assert.equal(wrongType.status, 400);
  assert.match((await wrongType.json()).error.message, /^revokeApiKeys: /);
});

Deno.test("over https only the __Host- cookie authenticates; a plain one is ignored", async () => {
  const { app } = await createTestApp(db.sql, {
    mailer: memoryMailer(),
    config: testConfig({ PUBLIC_URL: "https://vox.example" }),
  });
  const u = await createUser(db.sql);
  const { token } = await sessionFor(db.sql, u.id);
  const me = (cookie: string) => app.request("https://vox.example/api/v1/user", { headers: { cookie } });
  assert.equal((await me(`vox_session=${token}`)).status, 401);
  assert.equal((await me(`__Host-vox_session=${token}`)).status, 200);
  // A tossed plain cookie beside the real one changes nothing.
  const both = await me(`vox_session=${"a".repeat(32)}; __Host-vox_session=${token}`);
  assert.equal(both.status, 200);
  // Plain http (a local install) still uses the plain cookie.
  const { app: local } = await createTestApp(db.sql, { mailer: memoryMailer() });
  assert.equal(
    (await local.request("/api/v1/user", { headers: { cookie: `vox_session=${token}` } })).status,
    200,
  );
});

Deno.test("the login form's `next` stays on this origin however it is written", async () => {
  const { app } = await setup();
  const u = await createUser(db.sql, { password: PASSWORD });
  const cases: [string, string][] = [
    [decodeURIComponent("%09/evil.com"), "/"],
    ["/\t/evil.com", "/"],
    ["/\\evil.com", "/"],
    ["//evil.com", "/"],
    ["/\n/evil.com", "/"],
    ["/.//evil.com", "/"],
    ["/%09/evil.com", "/%09/evil.com"],
    ["/jobs?tab=1", "/jobs?tab=1"],
  ];
  for (const [next, expected] of cases) {
    const res = await app.request("http://vox.test/login", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ login: u.email, password: PASSWORD, next }),
    });
    assert.equal(res.status, 303, JSON.stringify(next));
    const location = res.headers.get("location")!;
    assert.equal(location, expected, JSON.stringify(next));
    assert.equal(new URL(location, "http://vox.test/login").origin, "http://vox.test");
  }
  // The page renders a cleaned `next` into its form, never the raw one.
  const page = await app.request(`/login?next=${encodeURIComponent("/\t/evil.com")}`);
  assert.match(await page.text(), /name="next" value="\/"/);
});
