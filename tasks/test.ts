// `deno task test [files…]`: runs the suite against DATABASE_URL, or, when it is unset,
// against an embedded PostgreSQL kept in .vox/test-pg. Each run's databases are dropped after.
//
// Test files run two at a time (DENO_JOBS=n for another number, DENO_JOBS=1 for one after
// another). Files share nothing that would collide: each makes its own databases (random
// names: parallel files are workers of one process, so not the pid), picks free ports and
// writes to temporary folders; the island bundle and the template database are built once,
// under a rename and an advisory lock. Most of a file's time is spent waiting (for Chromium,
// the audio clock, child processes), so two at once finish sooner even on two cores; the README
// has the figures. Not more by default, nor Deno's default of one per CPU: the agent tests
// bound measured latencies to 5–15 ms of the truth, and with four files at once on two cores
// a src-output turn was measured 19 ms off.
import { createSql } from "../lib/db.ts";
import { startEmbeddedPostgres } from "../lib/embedded_pg.ts";
import { createLogger } from "../lib/log.ts";

await ensureTools(["chromium", "espeak-ng", "sox"]);

const env: Record<string, string> = { ...Deno.env.toObject() };
// Every database the test files make starts with this prefix (tests/_db.ts reads it), so the
// run can drop whatever a crashed or killed test file left behind.
const dbPrefix = `vox_t_${Date.now().toString(36)}_`;
env.VOX_TEST_DB_PREFIX = dbPrefix;
let embedded: Awaited<ReturnType<typeof startEmbeddedPostgres>> | undefined;
if (!env.DATABASE_URL) {
  console.log("DATABASE_URL is not set: starting an embedded PostgreSQL for the tests");
  embedded = await startEmbeddedPostgres({ dataDir: ".vox/test-pg", log: createLogger() });
  env.DATABASE_URL = embedded.url;
}

const files = Deno.args.length > 0 ? Deno.args : ["tests/"];
// No --sanitize-ops/--sanitize-resources: since Deno 2.8 the op and resource sanitizers are
// off unless asked for, which the integration tests rely on (a file's database pool, server,
// browser and sockets outlive each single test and are released after the file's last one).
env.DENO_JOBS ??= "2";
const parallel = env.DENO_JOBS === "1" ? [] : ["--parallel"];
// The accuracy file compares measured latencies with the reference agent's own truth, and the
// `<audio src>` truth is a wall-clock play() converted to audio frames: with another Chromium
// file beside it on two cores that conversion drifts by ~25 ms while the measurement does not.
// The Realtime accuracy file paces audio on the event loop's timers, which the same neighbour
// delays. So in a whole-suite run both go last, one at a time (a measurement host should be
// quiet; issue 19). The overload file loads the machine on purpose (CPU hogs beside eight calls),
// so it goes last too, alone, and disturbs no other file.
const ALONE = [
  "tests/agent_accuracy_test.ts",
  "tests/agent_realtime_test.ts",
  "tests/agent_overload_test.ts",
];
const whole = Deno.args.length === 0;
const runs: string[][] = whole && parallel.length > 0
  ? [[...parallel, ...ALONE.map((f) => `--ignore=${f}`), ...files], ...ALONE.map((f) => [f])]
  : [[...parallel, ...files]];
let code = 0;
for (const args of runs) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", "--unstable-cron", ...args],
    env,
    stdin: "null",
  }).spawn();
  const removeSignal = () => {
    try {
      child.kill("SIGINT");
    } catch { /* already gone */ }
  };
  Deno.addSignalListener("SIGINT", removeSignal);
  const status = await child.status;
  Deno.removeSignalListener("SIGINT", removeSignal);
  if (status.code !== 0) code = status.code;
  if (status.signal === "SIGINT") break;
}

await dropDatabases(env.DATABASE_URL, dbPrefix).catch((err) =>
  console.error("could not drop test databases:", err)
);
await embedded?.stop();
Deno.exit(code);

/** Drops every database whose name starts with `prefix`, disconnecting anyone still on it. */
async function dropDatabases(url: string, prefix: string): Promise<void> {
  const admin = createSql(url, { max: 1 });
  try {
    const rows = await admin<{ datname: string }[]>`
      SELECT datname FROM pg_database WHERE starts_with(datname, ${prefix})`;
    for (const r of rows) await admin.unsafe(`DROP DATABASE IF EXISTS "${r.datname}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/**
 * The browser and audio tests need Debian's chromium, espeak-ng and sox. On a fresh
 * machine where we are root with apt-get, install them; otherwise say what is missing.
 */
async function ensureTools(commands: string[]): Promise<void> {
  const missing: string[] = [];
  for (const cmd of commands) {
    const found = await new Deno.Command("sh", { args: ["-c", `command -v ${cmd}`], stdout: "null" })
      .output();
    if (!found.success) missing.push(cmd);
  }
  if (missing.length === 0) return;
  const packages = missing.flatMap((m) => m === "sox" ? ["sox", "libsox-fmt-all"] : [m]);
  if (Deno.uid() !== 0) {
    console.error(
      `Missing ${missing.join(", ")}: install them with apt-get install -y ${packages.join(" ")}`,
    );
    return;
  }
  console.log(`installing ${packages.join(", ")} with apt-get`);
  const apt = (args: string[]) =>
    new Deno.Command("apt-get", { args, env: { DEBIAN_FRONTEND: "noninteractive" } }).output();
  await apt(["update", "-qq"]);
  const out = await apt(["install", "-y", "-qq", ...packages]);
  if (!out.success) console.error(new TextDecoder().decode(out.stderr));
}
