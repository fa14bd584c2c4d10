import assert from "node:assert/strict";
import { createSql } from "../lib/db.ts";
import { createTestApp, testConfig } from "./_app.ts";
import { createUser, jsonInit, memoryMailer } from "./_auth.ts";
import { createTestDatabase, RELAXED_LIMIT, setSetting } from "./_db.ts";

// The seeded limits, not the relaxed ones other test files get: each test sets the two limits
// it needs before its first request, so none depends on what an earlier test left.
const db = await createTestDatabase({ rateLimits: "seeded" });
Deno.test.afterAll(() => db.close());
const PASSWORD = "rate limit passphrase";

// Windows are aligned to multiples of their length since the epoch; a year-long window makes
// a test that straddles a window boundary (and so sees its count reset) practically impossible.
const YEAR = 365 * 24 * 3600;

// Each test uses its own client address (TRUST_PROXY + X-Forwarded-For), so buckets do not mix.
const config = testConfig({ TRUST_PROXY: "true" });
let ipCounter = 0;
const nextIp = () => `203.0.113.${++ipCounter}`;

type Limit = { max: number; windowSeconds: number };

/** Sets both limits; the one a test does not exercise is kept out of its way. */
async function limits(set: { general?: Limit; auth?: Limit }) {
  await setSetting(db.sql, "rate_limit.general", set.general ?? RELAXED_LIMIT);
  await setSetting(db.sql, "rate_limit.auth", set.auth ?? RELAXED_LIMIT);
}

async function app(sql = db.sql) {
  return (await createTestApp(sql, { mailer: memoryMailer(), config })).app;
}

function assertLimited(res: Response, windowSeconds: number) {
  assert.equal(res.status, 429);
  const retry = Number(res.headers.get("retry-after"));
  assert.ok(Number.isInteger(retry) && retry >= 1 && retry <= windowSeconds, `Retry-After ${retry}`);
}

Deno.test("the general limit answers 429 with Retry-After once exceeded", async () => {
  await limits({ general: { max: 3, windowSeconds: YEAR } });
  const a = await app();
  const ip = nextIp();
  for (let i = 0; i < 3; i++) {
    const res = await a.request("/api/v1/agents", { headers: { "x-forwarded-for": ip } });
    assert.equal(res.status, 200, `request ${i + 1}`);
    await res.body?.cancel();
  }
  const limited = await a.request("/api/v1/agents", { headers: { "x-forwarded-for": ip } });
  assertLimited(limited, YEAR);
  const body = await limited.json();
  assert.equal(body.error.code, "rate_limited");
  assert.match(body.error.message, /limit is 3 per window/);
  // Another client is not affected; pages are not API requests.
  const other = await a.request("/api/v1/agents", { headers: { "x-forwarded-for": nextIp() } });
  assert.equal(other.status, 200);
  await other.body?.cancel();
  const page = await a.request("/agents", { headers: { "x-forwarded-for": ip } });
  assert.equal(page.status, 200);
  await page.body?.cancel();
});

Deno.test("two server processes share one counter through the database", async () => {
  await limits({ general: { max: 4, windowSeconds: YEAR } });
  const otherPool = createSql(db.url, { max: 2 });
  try {
    const first = await app();
    const second = await app(otherPool);
    const ip = nextIp();
    const hit = (a: typeof first) => a.request("/api/v1/agents", { headers: { "x-forwarded-for": ip } });
    for (const a of [first, second, first, second]) {
      const res = await hit(a);
      assert.equal(res.status, 200);
      await res.body?.cancel();
    }
    assertLimited(await hit(first), YEAR);
    assertLimited(await hit(second), YEAR);
  } finally {
    await otherPool.end();
  }
});

Deno.test(
  "the auth limit guards login, sign-up and setup and is configurable at run time",
  async () => {
    await limits({ auth: { max: 2, windowSeconds: YEAR } });
    const a = await app();
    const ip = nextIp();
    const login = () =>
      a.request(
        "/api/auth/login",
        jsonInit("POST", { email: "nobody@example.test", password: "whatever pass" }, {
          headers: { "x-forwarded-for": ip },
        }),
      );
    assert.equal((await login()).status, 401);
    assert.equal((await login()).status, 401);
    const limited = await login();
    assertLimited(limited, YEAR);
    assert.match((await limited.json()).error.message, /sign-in attempts from this address/);
    const signup = await a.request(
      "/api/auth/signup",
      jsonInit("POST", { email: "x@example.test", password: PASSWORD }, {
        headers: { "x-forwarded-for": ip },
      }),
    );
    assertLimited(signup, YEAR);
    const setup = await a.request("/api/setup", jsonInit("POST", {}, { headers: { "x-forwarded-for": ip } }));
    assertLimited(setup, YEAR);
    const form = await a.request("/login", {
      method: "POST",
      headers: { "x-forwarded-for": ip, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ login: "a@b.c", password: "x" }),
    });
    assertLimited(form, YEAR);
    assert.match(await form.text(), /Too many sign-in attempts from this address/);

    // Raising the limit applies at once, in every process.
    await setSetting(db.sql, "rate_limit.auth", { max: 100, windowSeconds: YEAR });
    assert.equal((await login()).status, 401);
  },
);

Deno.test(
  "repeated failed logins lock the account for a while, even with the right password",
  async () => {
    await limits({});
    await setSetting(db.sql, "auth.lockout", { failures: 3, lockSeconds: 600 });
    const a = await app();
    const u = await createUser(db.sql, { password: PASSWORD });
    const login = (password: string, email = u.email) =>
      a.request(
        "/api/auth/login",
        jsonInit("POST", { email, password }, { headers: { "x-forwarded-for": nextIp() } }),
      );

    // A success before the threshold clears the count.
    assert.equal((await login("wrong one")).status, 401);
    assert.equal((await login("wrong two")).status, 401);
    assert.equal((await login(PASSWORD)).status, 200);
    for (let i = 0; i < 3; i++) assert.equal((await login(`wrong ${i}`)).status, 401);
    const locked = await login(PASSWORD);
    assertLimited(locked, 600);
    const body = await locked.json();
    assert.equal(body.error.code, "account_locked");
    assert.match(body.error.message, /Too many failed sign-ins for this account/);
    const [audit] = await db
      .sql`SELECT count(*)::int AS n FROM audit_log WHERE action = 'auth.login.locked' AND target_id = ${
      String(u.id)
    }`;
    assert.equal(audit.n, 1);

    // An address with no account locks the same way, so a lock reveals nothing.
    const ghost = `ghost_${Date.now()}@example.test`;
    for (let i = 0; i < 3; i++) assert.equal((await login("guess", ghost)).status, 401);
    const ghostLocked = await login("guess", ghost);
    assert.equal(ghostLocked.status, 429);
    assert.equal((await ghostLocked.json()).error.code, "account_locked");

    // When the lock period is over, the right password works again.
    await db
      .sql`UPDATE rate_limit_hits SET window_start = window_start - interval '601 seconds' WHERE bucket LIKE 'login_fail:%'`;
    assert.equal((await login(PASSWORD)).status, 200);
  },
);

Deno.test("old counters are pruned", async () => {
  const { pruneRateLimits } = await import("../lib/auth/rate_limit.ts");
  await db
    .sql`INSERT INTO rate_limit_hits (bucket, window_start, hits) VALUES ('general:ip:old', now() - interval '2 days', 5)`;
  assert.ok((await pruneRateLimits(db.sql)) >= 1);
  const rows = await db.sql`SELECT 1 FROM rate_limit_hits WHERE bucket = 'general:ip:old'`;
  assert.equal(rows.length, 0);
});
