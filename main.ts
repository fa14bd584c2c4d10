// Wiring only: configuration → database → migrations/seed → islands → app → serve.
import { join } from "node:path";
import { AGENT_WS_PATH } from "./agent/protocol.ts";
import { agentUpgrade, answerAgentRequest } from "./routes/api/agent_gateway.ts";
import { createApp } from "./routes/app.ts";
import { artifactStoreFromConfig } from "./lib/artifact_store.ts";
import { applyLapsed } from "./lib/billing/subscriptions.ts";
import { pruneArtifacts } from "./lib/artifacts.ts";
import { type DemoAgent, disableDemo, startDemo } from "./lib/demo.ts";
import { pruneIdentity } from "./lib/auth/maintenance.ts";
import { buildIslands } from "./lib/islands/bundle.ts";
import { ConfigError, loadConfig, publicUrl } from "./lib/config.ts";
import { createSql, openDatabase } from "./lib/db.ts";
import { serveHttp } from "./lib/http_server.ts";
import { leaveShutdownSignalsToCaller } from "./lib/embedded_pg.ts";
import { Orchestrator } from "./lib/orchestrator.ts";
import { configureLogging, log } from "./lib/log.ts";
import { migrate } from "./lib/migrate.ts";
import { tickSchedules } from "./lib/schedules.ts";
import { loadSecretKey } from "./lib/secrets.ts";
import { seed } from "./lib/seed.ts";
import { setupNeeded } from "./lib/setup.ts";

let config;
try {
  config = loadConfig();
} catch (err) {
  if (err instanceof ConfigError) {
    console.error(err.message);
    Deno.exit(1);
  }
  throw err;
}
configureLogging(config.LOG_LEVEL);

const serverId = `${Deno.hostname()}-${Deno.pid}-${crypto.randomUUID().slice(0, 8)}`;
const db = await openDatabase(config, log);
await migrate(db.sql, { log });
await seed(db.sql);
const secretKey = await loadSecretKey(config, log);
const assets = await buildIslands({ outRoot: join(config.VOX_DATA_DIR, "build", "islands"), log });
// LISTEN needs a session of its own; a transaction pooler in DATABASE_URL drops notifications.
const listenSql = config.DATABASE_LISTEN_URL
  ? createSql(config.DATABASE_LISTEN_URL, { max: 1, appName: "vox-listen" })
  : undefined;
const orchestrator = new Orchestrator({
  sql: db.sql,
  listenSql,
  serverId,
  log,
  pollMs: config.VOX_DISPATCH_POLL_MS,
  reapMs: config.VOX_REAP_MS,
  probeMs: config.VOX_LISTENER_PROBE_MS,
});
await orchestrator.start();
const artifactStore = artifactStoreFromConfig(config);
const app = createApp({ sql: db.sql, config, assets, log, serverId, secretKey, orchestrator, artifactStore });

// Deno.cron only ticks; tickSchedules() decides in Postgres which firings get a job, so every
// process may tick and each due run still makes exactly one job.
let stopping = false;
const tick = async () => {
  if (stopping) return;
  try {
    const jobs = await tickSchedules(db.sql);
    if (jobs.length > 0) log.info("schedules fired", { jobs: jobs.map((j) => j.id) });
  } catch (err) {
    log.error("schedule tick failed", { error: err });
  }
};
Deno.cron("vox-schedules", "* * * * *", tick);
const tickTimer = config.VOX_SCHEDULE_TICK_MS > 0
  ? setInterval(tick, config.VOX_SCHEDULE_TICK_MS)
  : undefined;

if (await setupNeeded(db.sql)) {
  log.warn(
    config.INIT_CODE
      ? "Vox is not set up yet: open /setup and enter INIT_CODE to create the admin and the Scout"
      : "Vox is not set up yet: set INIT_CODE and restart, then open /setup",
    { setupUrl: `${publicUrl(config)}/setup` },
  );
}

Deno.cron("identity cleanup", "17 * * * *", async () => {
  log.info("identity cleanup", await pruneIdentity(db.sql));
});

// Cancelled and finally unpaid subscriptions end at their period's end even if Stripe's last
// event is lost (lib/billing/subscriptions.ts).
if (config.STRIPE_SECRET_KEY) {
  Deno.cron("billing lapses", "*/5 * * * *", async () => {
    try {
      const applied = await applyLapsed(db.sql);
      if (applied > 0) log.info("billing lapses applied", { applied });
    } catch (err) {
      log.error("billing lapses failed", { error: err });
    }
  });
}

if (config.VOX_ARTIFACT_RETENTION_DAYS > 0) {
  Deno.cron("artifact retention", "43 * * * *", async () => {
    try {
      const deleted = await pruneArtifacts(db.sql, artifactStore, config.VOX_ARTIFACT_RETENTION_DAYS);
      if (deleted > 0) log.info("artifact retention", { deleted, days: config.VOX_ARTIFACT_RETENTION_DAYS });
    } catch (err) {
      log.error("artifact retention failed", { error: err });
    }
  });
}

// node:http rather than Deno.serve: agent upgrades need the raw connection, so the frame
// limit holds before a frame is buffered (lib/http_server.ts, routes/api/agent_gateway.ts).
const server = await serveHttp({
  port: config.PORT,
  hostname: config.HOST,
  onListen: ({ port }) => {
    const url = config.PUBLIC_URL ?? `http://localhost:${port}`;
    log.info("Vox is listening", { url, port, embeddedDatabase: Boolean(db.embedded) });
    console.log(`\n  Vox is running at ${publicUrl({ ...config, PUBLIC_URL: url })}\n`);
  },
  // Agent requests skip the app's middleware: an idle agent then holds nothing of it.
  fetch: (req, info) =>
    new URL(req.url).pathname === AGENT_WS_PATH
      ? answerAgentRequest(orchestrator, req)
      : app.fetch(req, info),
  upgrades: { [AGENT_WS_PATH]: agentUpgrade(orchestrator) },
});

// The demo (lib/demo.ts): only on the embedded database, off with VOX_DEMO=false.
let demo: DemoAgent | null = null;
if (db.embedded && config.VOX_DEMO) {
  const host = ["0.0.0.0", "::", ""].includes(config.HOST) ? "127.0.0.1" : config.HOST;
  const serverUrl = `http://${host.includes(":") ? `[${host}]` : host}:${server.addr.port}`;
  try {
    demo = (await startDemo(db.sql, { serverUrl, log, cron: config.VOX_DEMO_CRON })).agent;
  } catch (err) {
    log.error("the demo could not start", { error: err });
  }
} else if (db.embedded && await disableDemo(db.sql)) {
  log.info("the demo is turned off (VOX_DEMO=false): its schedule is disabled");
}

const drainMs = config.VOX_DRAIN_SECONDS * 1000;
async function shutdown(signal: string) {
  if (stopping) return;
  stopping = true;
  // A tick running into a closed pool would only log a spurious failure.
  clearInterval(tickTimer);
  log.info("shutting down", { signal });
  // The demo agent first (it hands back a running job), then agent sockets (they reconnect
  // to another process), then in-flight requests.
  await demo?.stop();
  await orchestrator.stop();
  // Bounded, so the orchestrator's grace period (deploy/, docs/deploy.md) can be longer.
  const drained = await Promise.race([
    server.shutdown().then(() => true),
    new Promise<false>((r) => setTimeout(() => r(false), drainMs)),
  ]);
  if (!drained) log.warn("requests still open after VOX_DRAIN_SECONDS; exiting anyway");
  await listenSql?.end({ timeout: 5 });
  await db.close();
  log.info("stopped");
  Deno.exit(0);
}
// shutdown() stops the embedded database last; its library must not stop it first.
leaveShutdownSignalsToCaller();
Deno.addSignalListener("SIGINT", () => shutdown("SIGINT"));
Deno.addSignalListener("SIGTERM", () => shutdown("SIGTERM"));
