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

Deno.test("concurrent requests counted together still get exactly the limit", async () => {
  await limits({ general: { max: 7, windowSeconds: YEAR } });
  const a = await app();
  const ip = nextIp();
  const other = nextIp();
  // 20 at once from one client and 3 from another arrive while earlier upserts are in flight,
  // so they are counted in shared statements (lib/batch.ts); each still has its own place.
  const answers = await Promise.all(
    [...Array(20).fill(ip), ...Array(3).fill(other)].map(async (from) => {
      const res = await a.request("/api/v1/agents", { headers: { "x-forwarded-for": from } });
      await res.body?.cancel();
      return { from, status: res.status };
    }),
  );
  const mine = answers.filter((x) => x.from === ip);
  assert.equal(mine.filter((x) => x.status === 200).length, 7);
  assert.equal(mine.filter((x) => x.status === 429).length, 13);
  assert.deepEqual(answers.filter((x) => x.from === other).map((x) => x.status), [200, 200, 200]);
  const [row] = await db.sql`SELECT hits FROM rate_limit_hits WHERE bucket = ${`general:ip:${ip}`}`;
  assert.equal(row.hits, 20);
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

const loginAs = (a: Awaited<ReturnType<typeof app>>) =>
(
  login: string,
  password: string,
  from: { ip: string; cookie?: string },
) =>
  a.request(
    "/api/auth/login",
    jsonInit("POST", { login, password }, {
      headers: { "x-forwarded-for": from.ip, ...(from.cookie ? { cookie: from.cookie } : {}) },
    }),
  );

/** The known-device cookie a response set, as `name=value`. */
function deviceCookieOf(res: Response): string | null {
  for (const line of res.headers.getSetCookie()) {
    const m = /^((?:__Host-)?vox_device)=([^;]+)/.exec(line);
    if (m) return `${m[1]}=${m[2]}`;
  }
  return null;
}

Deno.test(
  "repeated failed logins lock the login for that client, even with the right password",
  async () => {
    await limits({});
    await setSetting(db.sql, "auth.lockout", { failures: 3, lockSeconds: 600 });
    const login = loginAs(await app());
    const u = await createUser(db.sql, { password: PASSWORD });
    const here = { ip: nextIp() };

    // A success before the threshold clears the count.
    assert.equal((await login(u.email, "wrong one", here)).status, 401);
    assert.equal((await login(u.email, "wrong two", here)).status, 401);
    assert.equal((await login(u.email, PASSWORD, here)).status, 200);
    for (let i = 0; i < 3; i++) assert.equal((await login(u.email, `wrong ${i}`, here)).status, 401);
    const locked = await login(u.email, PASSWORD, here);
    assertLimited(locked, 600);
    const body = await locked.json();
    assert.equal(body.error.code, "account_locked");
    assert.equal(body.error.details.scope, "client");
    assert.match(body.error.message, /Too many failed sign-ins for this account from here/);
    const [audit] = await db
      .sql`SELECT count(*)::int AS n FROM audit_log WHERE action = 'auth.login.locked' AND target_id = ${
      String(u.id)
    }`;
    assert.equal(audit.n, 1);

    // An address with no account locks the same way, so a lock reveals nothing.
    const ghost = `ghost_${Date.now()}@example.test`;
    for (let i = 0; i < 3; i++) assert.equal((await login(ghost, "guess", here)).status, 401);
    const ghostLocked = await login(ghost, "guess", here);
    assert.equal(ghostLocked.status, 429);
    assert.equal((await ghostLocked.json()).error.code, "account_locked");

    // When the lock period is over, the right password works again.
    await db.sql`
      UPDATE rate_limit_hits SET window_start = window_start - interval '601 seconds'
      WHERE bucket LIKE 'login_fail:%'`;
    assert.equal((await login(u.email, PASSWORD, here)).status, 200);
  },
);

Deno.test("five failures for `admin` from one client; the right password from another client succeeds", async () => {
  await limits({});
  // The seeded lockout: 5 failures, 900 s.
  await db.sql`DELETE FROM system_config WHERE key = 'auth.lockout'`;
  const login = loginAs(await app());
  await createUser(db.sql, { username: "admin", isAdmin: true, password: PASSWORD });
  const attacker = { ip: nextIp() };
  for (let i = 0; i < 5; i++) assert.equal((await login("admin", `guess number ${i}`, attacker)).status, 401);
  const refused = await login("admin", PASSWORD, attacker);
  assertLimited(refused, 900);
  const owner = await login("admin", PASSWORD, { ip: nextIp() });
  assert.equal(owner.status, 200);
  assert.equal((await owner.json()).user.username, "admin");
  // The owner's success does not lift the attacker's lock.
  assert.equal((await login("admin", PASSWORD, attacker)).status, 429);
});

Deno.test("each further lock from the same client lasts twice as long, up to the maximum", async () => {
  await limits({});
  await setSetting(db.sql, "auth.lockout", {
    failures: 2,
    lockSeconds: 100,
    maxLockSeconds: 300,
    accountFailures: 1000,
  });
  const login = loginAs(await app());
  const u = await createUser(db.sql, { password: PASSWORD });
  const here = { ip: nextIp() };
  const bucketLike = "login_fail:%";
  const retryAfterOfNextLock = async () => {
    for (let i = 0; i < 2; i++) assert.equal((await login(u.email, "wrong guess", here)).status, 401);
    const res = await login(u.email, PASSWORD, here);
    assert.equal(res.status, 429);
    await res.body?.cancel();
    // Let the lock run out (the test moves the clock of the counter, not the wall clock).
    await db.sql`
      UPDATE rate_limit_hits SET window_start = window_start - interval '301 seconds'
      WHERE bucket LIKE ${bucketLike}`;
    return Number(res.headers.get("retry-after"));
  };
  const first = await retryAfterOfNextLock();
  const second = await retryAfterOfNextLock();
  const third = await retryAfterOfNextLock();
  const fourth = await retryAfterOfNextLock();
  assert.ok(first <= 100 && first > 50, `first ${first}`);
  assert.ok(second <= 200 && second > 150, `second ${second}`);
  assert.ok(third <= 300 && third > 250, `third ${third} (capped)`);
  assert.ok(fourth <= 300 && fourth > 250, `fourth ${fourth} (capped)`);
  // A success ends the streak: the next lock is the short one again.
  assert.equal((await login(u.email, PASSWORD, here)).status, 200);
  assert.ok((await retryAfterOfNextLock()) <= 100);
});

Deno.test("failures from many clients lock out unknown devices, not a browser that signed in before", async () => {
  await limits({});
  await setSetting(db.sql, "auth.lockout", {
    failures: 3,
    lockSeconds: 600,
    maxLockSeconds: 3600,
    accountFailures: 4,
  });
  const login = loginAs(await app());
  const u = await createUser(db.sql, { password: PASSWORD });
  const first = await login(u.email, PASSWORD, { ip: nextIp() });
  assert.equal(first.status, 200);
  const device = deviceCookieOf(first)!;
  assert.ok(device, "a sign-in marks the browser as a known device");

  for (let i = 0; i < 4; i++) {
    assert.equal((await login(u.email, "wrong guess", { ip: nextIp() })).status, 401);
  }
  const stranger = await login(u.email, PASSWORD, { ip: nextIp() });
  assertLimited(stranger, 600);
  const body = await stranger.json();
  assert.equal(body.error.details.scope, "account");
  assert.match(body.error.message, /sign in from a browser that signed in to it before/);
  // The known browser gets in from anywhere; a forged or foreign device cookie does not help.
  assert.equal((await login(u.email, PASSWORD, { ip: nextIp(), cookie: device })).status, 200);
  const forged = await login(u.email, PASSWORD, { ip: nextIp(), cookie: "vox_device=v1.AAAA.BBBB" });
  assert.equal(forged.status, 429);
  const other = await createUser(db.sql, { password: PASSWORD });
  const otherDevice = deviceCookieOf(await login(other.email, PASSWORD, { ip: nextIp() }))!;
  assert.equal((await login(u.email, PASSWORD, { ip: nextIp(), cookie: otherDevice })).status, 429);
});

Deno.test("a spoofed left-most X-Forwarded-For does not change the recorded client address", async () => {
  await limits({});
  const a = await app();
  const u = await createUser(db.sql, { password: PASSWORD });
  const res = await a.request(
    "/api/auth/login",
    jsonInit("POST", { email: u.email, password: PASSWORD }, {
      // The client wrote 198.51.100.66; the one trusted proxy appended the address it saw.
      headers: { "x-forwarded-for": "198.51.100.66, 203.0.113.250" },
    }),
  );
  assert.equal(res.status, 200);
  const [session] = await db.sql`SELECT ip FROM sessions WHERE user_id = ${u.id}`;
  assert.equal(session.ip, "203.0.113.250");
  const [audit] = await db.sql`
    SELECT ip FROM audit_log WHERE action = 'auth.login.succeeded' AND target_id = ${String(u.id)}`;
  assert.equal(audit.ip, "203.0.113.250");

  // With two trusted hops the client is the second entry from the right.
  const twoHops = (await createTestApp(db.sql, {
    mailer: memoryMailer(),
    config: testConfig({ TRUST_PROXY_HOPS: "2" }),
  })).app;
  const v = await createUser(db.sql, { password: PASSWORD });
  const res2 = await twoHops.request(
    "/api/auth/login",
    jsonInit("POST", { email: v.email, password: PASSWORD }, {
      headers: { "x-forwarded-for": "198.51.100.66, 203.0.113.251, 10.0.0.2" },
    }),
  );
  assert.equal(res2.status, 200);
  const [session2] = await db.sql`SELECT ip FROM sessions WHERE user_id = ${v.id}`;
  assert.equal(session2.ip, "203.0.113.251");
});

Deno.test("old counters are pruned", async () => {
  const { pruneRateLimits } = await import("../lib/auth/rate_limit.ts");
  await db
    .sql`INSERT INTO rate_limit_hits (bucket, window_start, hits) VALUES ('general:ip:old', now() - interval '2 days', 5)`;
  assert.ok((await pruneRateLimits(db.sql)) >= 1);
  const rows = await db.sql`SELECT 1 FROM rate_limit_hits WHERE bucket = 'general:ip:old'`;
  assert.equal(rows.length, 0);
});
