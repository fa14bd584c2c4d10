import assert from "node:assert/strict";
import { ConfigError, loadConfig, publicUrl } from "../lib/config.ts";

Deno.test("loadConfig() applies defaults for an empty environment", () => {
  const config = loadConfig({});
  assert.equal(config.PORT, 8000);
  assert.equal(config.DATABASE_URL, undefined);
  assert.equal(config.VOX_DATA_DIR, ".vox");
  assert.equal(config.VOX_DEMO, true);
  assert.equal(publicUrl(config), "http://localhost:8000");
});

Deno.test("loadConfig() names every bad variable in one error", () => {
  let error: unknown;
  try {
    loadConfig({ PORT: "eighty", DATABASE_URL: "mysql://x@y/z", LOG_LEVEL: "loud", INIT_CODE: "short" });
  } catch (err) {
    error = err;
  }
  assert.ok(error instanceof ConfigError);
  const names = error.problems.map((p) => p.split(":")[0]).sort();
  assert.deepEqual(names, ["DATABASE_URL", "INIT_CODE", "LOG_LEVEL", "PORT"]);
  assert.match(error.message, /INIT_CODE: must be at least 8 characters/);
});

Deno.test("loadConfig() requires VOX_SECRET_KEY with an external database", () => {
  assert.throws(
    () => loadConfig({ DATABASE_URL: "postgres://u@localhost/vox" }),
    (err: unknown) => err instanceof ConfigError && /VOX_SECRET_KEY: is required/.test(err.message),
  );
  const ok = loadConfig({ DATABASE_URL: "postgres://u@localhost/vox", VOX_SECRET_KEY: "ab".repeat(32) });
  assert.equal(ok.DATABASE_URL, "postgres://u@localhost/vox");
});

Deno.test("loadConfig() rejects a secret key that is not 32 bytes", () => {
  assert.throws(() => loadConfig({ VOX_SECRET_KEY: "abcd" }), /VOX_SECRET_KEY: must be 32 bytes/);
  assert.equal(loadConfig({ VOX_SECRET_KEY: btoa("k".repeat(32)) }).VOX_SECRET_KEY, btoa("k".repeat(32)));
});

Deno.test("loadConfig() checks the deployment settings: metrics token, listen URL, probe, drain", () => {
  assert.throws(
    () => loadConfig({ METRICS_TOKEN: "short" }),
    /METRICS_TOKEN: must be at least 16 characters/,
  );
  assert.throws(
    () => loadConfig({ DATABASE_LISTEN_URL: "postgres://u@db/vox" }),
    /DATABASE_LISTEN_URL: needs DATABASE_URL/,
  );
  assert.throws(() => loadConfig({ VOX_LISTENER_PROBE_MS: "10" }), /VOX_LISTENER_PROBE_MS/);
  const c = loadConfig({
    DATABASE_URL: "postgres://u@pooler:6432/vox",
    DATABASE_LISTEN_URL: "postgres://u@db:5432/vox",
    VOX_SECRET_KEY: "ab".repeat(32),
  });
  assert.equal(c.DATABASE_LISTEN_URL, "postgres://u@db:5432/vox");
  assert.equal(c.VOX_LISTENER_PROBE_MS, 10_000);
  assert.equal(c.VOX_DRAIN_SECONDS, 20);
  assert.equal(c.METRICS_TOKEN, undefined);
});

Deno.test("loadConfig() wants the Google client id and secret together", () => {
  assert.throws(() => loadConfig({ GOOGLE_CLIENT_ID: "id" }), /GOOGLE_CLIENT_SECRET/);
});

Deno.test("loadConfig() parses boolean flags and treats empty values as unset", () => {
  const config = loadConfig({ VOX_DEMO: "off", TRUST_PROXY: "1", PORT: "" });
  assert.equal(config.VOX_DEMO, false);
  assert.equal(config.TRUST_PROXY, true);
  assert.equal(config.PORT, 8000);
  assert.throws(() => loadConfig({ VOX_DEMO: "maybe" }), /VOX_DEMO/);
});

Deno.test("loadConfig() validates the orchestration and demo settings with their defaults", () => {
  const defaults = loadConfig({});
  assert.equal(defaults.VOX_DISPATCH_POLL_MS, 5000);
  assert.equal(defaults.VOX_REAP_MS, 2000);
  assert.equal(defaults.VOX_SCHEDULE_TICK_MS, 0);
  assert.equal(defaults.VOX_DEMO_CRON, "*/2 * * * *");
  const set = loadConfig({
    VOX_DISPATCH_POLL_MS: "250",
    VOX_REAP_MS: "100",
    VOX_SCHEDULE_TICK_MS: "50",
    VOX_DEMO_CRON: " 15 * * * * ",
  });
  assert.equal(set.VOX_DISPATCH_POLL_MS, 250);
  assert.equal(set.VOX_REAP_MS, 100);
  assert.equal(set.VOX_SCHEDULE_TICK_MS, 50);
  assert.equal(set.VOX_DEMO_CRON, "15 * * * *");
  // Empty values count as unset, like every other variable.
  assert.equal(loadConfig({ VOX_REAP_MS: "", VOX_DEMO_CRON: "" }).VOX_REAP_MS, 2000);
});

Deno.test("loadConfig() names each bad orchestration or demo variable in one error", () => {
  let error: unknown;
  try {
    loadConfig({
      VOX_DISPATCH_POLL_MS: "soon",
      VOX_REAP_MS: "50",
      VOX_SCHEDULE_TICK_MS: "-1",
      VOX_DEMO_CRON: "every minute",
    });
  } catch (err) {
    error = err;
  }
  assert.ok(error instanceof ConfigError);
  const names = error.problems.map((p) => p.split(":")[0]).sort();
  assert.deepEqual(names, ["VOX_DEMO_CRON", "VOX_DISPATCH_POLL_MS", "VOX_REAP_MS", "VOX_SCHEDULE_TICK_MS"]);
  assert.match(error.message, /VOX_REAP_MS: .*100/);
  assert.match(error.message, /VOX_DEMO_CRON: must be a 5-field cron expression \(needs exactly 5 fields/);
  assert.throws(() => loadConfig({ VOX_DEMO_CRON: "61 * * * *" }), /VOX_DEMO_CRON: must be a 5-field cron/);
  assert.throws(() => loadConfig({ VOX_DISPATCH_POLL_MS: "1.5e3x" }), /VOX_DISPATCH_POLL_MS/);
});

Deno.test("main.ts exits 1 and prints each bad variable at start-up", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts"],
    env: { PORT: "-1", DATABASE_URL: "not a url", VOX_REAP_MS: "0", VOX_DEMO_CRON: "whenever" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(out.code, 1);
  const stderr = new TextDecoder().decode(out.stderr);
  assert.match(stderr, /Invalid configuration/);
  assert.match(stderr, /PORT:/);
  assert.match(stderr, /DATABASE_URL:/);
  assert.match(stderr, /VOX_REAP_MS:/);
  assert.match(stderr, /VOX_DEMO_CRON:/);
});

Deno.test("Stripe's secret key and webhook secret are set together, or billing stays off", () => {
  assert.throws(
    () => loadConfig({ STRIPE_SECRET_KEY: "sk_test_x" }),
    /STRIPE_WEBHOOK_SECRET: .*must be set together/,
  );
  assert.throws(
    () => loadConfig({ STRIPE_WEBHOOK_SECRET: "whsec_x" }),
    /STRIPE_SECRET_KEY: .*must be set together/,
  );
  const on = loadConfig({ STRIPE_SECRET_KEY: "sk_test_x", STRIPE_WEBHOOK_SECRET: "whsec_x" });
  assert.equal(on.STRIPE_SECRET_KEY, "sk_test_x");
  assert.equal(loadConfig({}).STRIPE_SECRET_KEY, undefined);
});
