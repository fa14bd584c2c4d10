// Orchestration test helpers: eval data fixtures and an in-process server with the agent
// gateway listening on a real port.
import { AGENT_WS_PATH } from "../agent/protocol.ts";
import { createAgentToken } from "../lib/agent_tokens.ts";
import { type FetchHandler, type HttpServer, serveHttp } from "../lib/http_server.ts";
import { agentUpgrade } from "../routes/api/agent_gateway.ts";
import type { AppDeps } from "../lib/context.ts";
import type { Sql } from "../lib/db.ts";
import { Orchestrator, type OrchestratorOptions } from "../lib/orchestrator.ts";
import { createLogger } from "../lib/log.ts";
import { rebuildRollups } from "../lib/metrics.ts";
import { SEEDED_PROVIDERS } from "../lib/seed.ts";
import { ensureProvider } from "../lib/providers.ts";
import { createTestApp } from "./_app.ts";
import { createUser } from "./_auth.ts";
import assert from "node:assert/strict";
import { createJob } from "../lib/queue.ts";
import { eventually, serverReady } from "./_wait.ts";
import { EvalDaemon } from "../agent/daemon.ts";
import { daemonSettings } from "../agent/daemon_settings.ts";
import { serveReferenceAgent } from "../bench/reference_agent.ts";
import { setSetting } from "./_db.ts";

let seq = 0;

/**
 * A workflow and an eval set (mainline when asked) in a fresh user's project; the user is a
 * principal for a mainline pair, so jobs made with `createdBy` (spread the pair into
 * createJob()) feed the public boards.
 */
export async function insertEvalPair(
  sql: Sql,
  opts: { mainline?: boolean; providerId?: string } = {},
): Promise<
  {
    userId: number;
    createdBy: number;
    projectId: number;
    workflowId: number;
    evalSetId: number;
    providerId: string;
  }
> {
  const user = await createUser(sql, { role: opts.mainline ? "principal" : "basic" });
  const providerId = opts.providerId ?? SEEDED_PROVIDERS[0].id;
  const [w] = await sql`
    INSERT INTO workflows (project_id, provider_id, name, config, is_mainline, created_by)
    VALUES (${user.defaultProjectId}, ${providerId}, 'wf', ${
    sql.json({ url: "http://127.0.0.1/agent", steps: [] })
  },
            ${opts.mainline ?? false}, ${user.id})
    RETURNING id`;
  const [e] = await sql`
    INSERT INTO eval_sets (project_id, name, config, is_mainline, created_by)
    VALUES (${user.defaultProjectId}, 'set', ${sql.json({ steps: [{ action: "wait_for_voice" }] })},
            ${opts.mainline ?? false}, ${user.id})
    RETURNING id`;
  return {
    userId: user.id,
    createdBy: user.id,
    projectId: user.defaultProjectId,
    workflowId: w.id,
    evalSetId: e.id,
    providerId,
  };
}

/**
 * For a test that stores results in the database its file shares: when disposed of (`await
 * using`), deletes the results stored since and rebuilds the rollups, so the tests after it see
 * the file's data as it was, whichever order they run in.
 */
export async function restoreResults(sql: Sql): Promise<AsyncDisposable> {
  const [{ last }] = await sql<
    { last: number }[]
  >`SELECT coalesce(max(id), 0)::bigint AS last FROM eval_results`;
  return {
    async [Symbol.asyncDispose]() {
      await sql`DELETE FROM eval_results WHERE id > ${last}`;
      await rebuildRollups(sql);
    },
  };
}

/** A raw agent token for `region`. */
export async function agentToken(sql: Sql, region: string, expiresAt: Date | null = null): Promise<string> {
  return (await createAgentToken(sql, { name: `t-${region}-${++seq}`, region, expiresAt })).token;
}

export interface OrchServer {
  baseUrl: string;
  orch: Orchestrator;
  app: Awaited<ReturnType<typeof createTestApp>>["app"];
  stop(): Promise<void>;
}

/** The app with a running Orchestrator, served on a free port. Fast loops for tests. */
export async function startOrchServer(
  sql: Sql,
  opts: Partial<OrchestratorOptions> = {},
  appDeps: Partial<AppDeps> = {},
): Promise<OrchServer> {
  const serverId = `test-${++seq}`;
  const orch = new Orchestrator({
    sql,
    serverId,
    log: createLogger({ serverId }),
    pollMs: 1000,
    reapMs: 200,
    flushMs: 100,
    rollupMs: 200,
    ...opts,
  });
  await orch.start();
  const { app } = await createTestApp(sql, { orchestrator: orch, serverId, ...appDeps });
  const server = await serveApp(app, orch);
  return {
    baseUrl: `http://127.0.0.1:${server.addr.port}`,
    orch,
    app,
    async stop() {
      await orch.stop();
      await server.shutdown();
    },
  };
}

/**
 * `app` on 127.0.0.1 with the listener main.ts uses (lib/http_server.ts), so agent sockets go
 * through the same upgrade path as in production.
 */
export function serveApp(
  app: { fetch: FetchHandler },
  orch: Orchestrator,
  port = 0,
): Promise<HttpServer> {
  return serveHttp({
    port,
    hostname: "127.0.0.1",
    fetch: (req, info) => app.fetch(req, info),
    upgrades: { [AGENT_WS_PATH]: agentUpgrade(orch) },
  });
}

/** A `deno run main.ts` server process on its own port. */
export interface ServerProcess {
  baseUrl: string;
  port: number;
  child: Deno.ChildProcess;
  /** The process's stderr lines (warnings and errors as JSON), when started with `captureLog`. */
  log: string[];
  /** SIGKILL (no shutdown hooks) or SIGTERM (graceful), then wait for the exit. */
  stop(signal?: "SIGKILL" | "SIGTERM"): Promise<void>;
}

/** Starts Vox as a real process against `databaseUrl` and waits until /readyz answers. */
export async function spawnServer(
  databaseUrl: string,
  opts: { port?: number; env?: Record<string, string>; captureLog?: boolean } = {},
): Promise<ServerProcess> {
  const { freePort } = await import("../lib/embedded_pg.ts");
  const port = opts.port ?? freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--unstable-cron", "main.ts"],
    cwd: new URL("..", import.meta.url).pathname,
    env: {
      DATABASE_URL: databaseUrl,
      VOX_SECRET_KEY: "1".repeat(64),
      PORT: String(port),
      HOST: "127.0.0.1",
      VOX_DEMO: "false",
      LOG_LEVEL: "warn",
      VOX_SCHEDULE_TICK_MS: "100",
      VOX_REAP_MS: "200",
      ...opts.env,
    },
    stdin: "null",
    stdout: "null",
    stderr: opts.captureLog ? "piped" : "inherit",
  }).spawn();
  const log: string[] = [];
  if (opts.captureLog) {
    (async () => {
      let rest = "";
      for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) {
        const lines = (rest + chunk).split("\n");
        rest = lines.pop() ?? "";
        log.push(...lines);
      }
    })().catch(() => {});
  }
  const baseUrl = `http://127.0.0.1:${port}`;
  try {
    await serverReady(baseUrl, { child });
  } catch (err) {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    throw err;
  }
  return {
    baseUrl,
    port,
    child,
    log,
    async stop(signal = "SIGTERM") {
      try {
        child.kill(signal);
      } catch { /* already gone */ }
      await child.status;
    },
  };
}

/**
 * Creates a job of a workflow/eval-set pair, waits (up to `timeoutMs`) until an agent has run it
 * to an end, and asserts that it completed. Returns the job's id.
 */
export async function completedJob(
  sql: Sql,
  job: { workflowId: number; evalSetId: number; region: string; createdBy: number },
  timeoutMs = 180_000,
): Promise<number> {
  const { id } = await createJob(sql, job);
  await eventually(
    async () => {
      const [j] = await sql`SELECT status FROM eval_jobs WHERE id = ${id}`;
      return j.status === "completed" || j.status === "failed";
    },
    `job ${id} done`,
    timeoutMs,
  );
  const [j] = await sql`SELECT status, error FROM eval_jobs WHERE id = ${id}`;
  assert.equal(j.status, "completed", j.error);
  return id;
}

/** A server, the reference agent pages and a real eval agent (daemon) for one region. */
export interface AgentRig {
  server: OrchServer;
  fixtures: ReturnType<typeof serveReferenceAgent>;
  daemon: EvalDaemon;
  region: string;
  /** Stops the daemon, then the server and the pages. */
  stop(): Promise<void>;
}

/**
 * Starts what an end-to-end job needs: the reference agent pages, a server with fast
 * heartbeats, and a daemon for `region` allowed to reach only the pages. `env` adds agent
 * settings (assets or cache folders); `log` receives the daemon's log lines.
 */
export async function startAgentRig(
  sql: Sql,
  opts: {
    region: string;
    name: string;
    env?: Record<string, string>;
    log?: ConstructorParameters<typeof EvalDaemon>[1];
  },
): Promise<AgentRig> {
  const fixtures = serveReferenceAgent();
  await setSetting(sql, "agents.heartbeat_interval_seconds", 1);
  await setSetting(sql, "jobs.heartbeat_timeout_seconds", 60);
  const server = await startOrchServer(sql);
  const daemon = new EvalDaemon(
    daemonSettings({}, {
      VOX_SERVER_URL: server.baseUrl,
      VOX_AGENT_TOKEN: await agentToken(sql, opts.region),
      VOX_AGENT_REGION: opts.region,
      VOX_AGENT_NAME: opts.name,
      VOX_AGENT_GRACE_SECONDS: "5",
      VOX_AGENT_EGRESS_ALLOW: fixtures.url,
      ...opts.env,
    }),
    opts.log ?? (() => {}),
  );
  daemon.start();
  return {
    server,
    fixtures,
    daemon,
    region: opts.region,
    async stop() {
      await daemon.stop("test over");
      await server.stop();
      await fixtures.close();
    },
  };
}

/** What the mainline helpers need of the owner: a principal (or the admin) and a project. */
type Owner = { id: number; defaultProjectId: number };

/**
 * A mainline workflow in `owner`'s project measuring the page at `url`, under the curated
 * provider named `provider` (created when missing). Returns the workflow's and provider's ids.
 */
export async function mainlineWorkflow(
  sql: Sql,
  owner: Owner,
  provider: string,
  url: string,
): Promise<{ workflowId: number; providerId: string }> {
  const providerId = await sql.begin((tx) =>
    ensureProvider(tx, { name: provider, sku: 0, createdBy: null, curated: true })
  );
  const [w] = await sql`
    INSERT INTO workflows (project_id, provider_id, name, config, is_mainline, created_by)
    VALUES (${owner.defaultProjectId}, ${providerId}, ${provider}, ${
    sql.json({ url, steps: [] })
  }, true, ${owner.id})
    RETURNING id`;
  return { workflowId: Number(w.id), providerId };
}

/** A mainline eval set of `steps` in `owner`'s project; returns its id. */
export async function mainlineEvalSet(
  sql: Sql,
  owner: Owner,
  name: string,
  steps: unknown[],
): Promise<number> {
  const [e] = await sql`
    INSERT INTO eval_sets (project_id, name, config, is_mainline, created_by)
    VALUES (${owner.defaultProjectId}, ${name}, ${sql.json({ steps } as never)}, true, ${owner.id})
    RETURNING id`;
  return Number(e.id);
}
