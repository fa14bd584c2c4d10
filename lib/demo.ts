// The demo out of the box: on its embedded database (and unless VOX_DEMO=false) Vox seeds a
// mainline workflow on its bundled demo voice agent (routes/demo.ts) with an eval set and a
// recurring schedule in region `local`, and runs one local eval agent for that region as a
// child process, so a fresh install shows real measured results within minutes.
import { join, resolve } from "node:path";
import { createAgentToken, revokeAgentToken } from "./agent_tokens.ts";
import type { Sql } from "./db.ts";
import { createJob } from "./queue.ts";
import type { Logger } from "./log.ts";
import { ensureProvider } from "./providers.ts";
import { createSchedule, updateSchedule } from "./schedules.ts";

/** Folder of the demo page (agent/, served by routes/demo.ts) and the caller's utterances (caller/). */
export const DEMO_DIR = new URL("../static/demo/", import.meta.url).pathname;
/**
 * How the demo agent behaves: a 900 ms reply delay, stops 250 ms into a barge-in, and plays each
 * reply through an `<audio src>` element that fetches it from the server when it is due (as a
 * TTS reply would be), so the network profile of the demo's eval set shows in its latency.
 */
export const DEMO_AGENT_QUERY = "out=src&fetch=1&delay=900&stop=250";
/** Path of the demo agent page, with its behaviour. */
export const DEMO_AGENT_PATH = `/demo/agent/index.html?${DEMO_AGENT_QUERY}`;

/** Names of what the demo seeds; seeding finds its rows again by these. */
export const DEMO = {
  region: "local",
  username: "vox-demo",
  email: "demo@vox.invalid",
  userName: "Vox demo (system)",
  project: "Vox demo",
  provider: "Vox reference agent",
  providerDescription: "The demo voice agent bundled with Vox (a page that answers after a set delay). " +
    "Its numbers measure Vox's own reference page, not a voice-AI product.",
  workflow: "Vox demo voice agent",
  evalSet: "Demo: two replies and a barge-in",
  tokenName: "Vox demo agent",
  agentName: "vox-demo-agent",
} as const;

/** The demo's caller turns: two replies (hello, Tuesday) and one barge-in during the second reply. */
export const DEMO_EVAL_SET = {
  tags: ["demo"],
  steps: [
    { action: "wait_for_element", selector: "body[data-ready='1']" },
    { action: "speak", file: "hello.wav" },
    { action: "wait_for_voice", metrics: "elapsed_time" },
    { action: "wait_for_silence" },
    { action: "speak", file: "tuesday.wav" },
    { action: "wait_for_voice", metrics: "elapsed_time" },
    { action: "barge_in", file: "wait.wav", after_ms: 400 },
    { action: "wait_for_voice" },
    { action: "wait_for_silence" },
  ],
};

/**
 * The network profile the built-in demo's eval set runs again under (network resilience); the
 * compose eval set (deploy/compose/demo_eval_set.json) is DEMO_EVAL_SET without it.
 */
export const DEMO_NETWORK = [{ name: "3g" }];

/** The eval set the built-in demo seeds: DEMO_EVAL_SET with its network profile. */
export const DEMO_SEEDED_EVAL_SET = { ...DEMO_EVAL_SET, network: DEMO_NETWORK };

/** What seedDemo() settled. */
export interface DemoSeed {
  userId: number;
  projectId: number;
  providerId: string;
  workflowId: number;
  evalSetId: number;
  scheduleId: number;
}

// Serialises seeding across processes starting at once on one database.
const DEMO_LOCK = 7_346_021_010;

/**
 * Creates what the demo needs, or finds it again: a system user that cannot sign in (no
 * password, never activated, deactivated), its project, the demo provider, a public mainline
 * workflow on the demo page at `baseUrl`, the mainline eval set and a recurring schedule in
 * region `local`. Idempotent; a changed `baseUrl` or `cron` updates the rows in place.
 */
export async function seedDemo(sql: Sql, opts: { baseUrl: string; cron: string }): Promise<DemoSeed> {
  const url = `${opts.baseUrl.replace(/\/+$/, "")}${DEMO_AGENT_PATH}`;
  const ids = await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${DEMO_LOCK})`;
    // Found by username and email together, so a person who picked the username "vox-demo"
    // is never taken for the demo owner (the insert then fails on the username instead).
    let [user] = await tx`
      SELECT id FROM users WHERE lower(username) = ${DEMO.username} AND lower(email) = ${DEMO.email}`;
    user ??= (await tx`
      INSERT INTO users (name, username, email, role, password_hash, activated_at, deactivated_at, is_system)
      VALUES (${DEMO.userName}, ${DEMO.username}, ${DEMO.email}, 'principal', NULL, NULL, now(), true)
      RETURNING id`)[0];
    let [project] = await tx`
      SELECT id FROM projects WHERE owner_user_id = ${user.id} AND lower(name) = lower(${DEMO.project})`;
    project ??= (await tx`
      INSERT INTO projects (name, description, owner_user_id, created_by)
      VALUES (${DEMO.project}, 'Seeded by Vox for its demo (lib/demo.ts)', ${user.id}, ${user.id})
      RETURNING id`)[0];
    const providerId = await ensureProvider(tx, {
      name: DEMO.provider,
      sku: 0,
      description: DEMO.providerDescription,
      createdBy: user.id,
      curated: true,
    });
    const appConfig = { url, steps: [], tags: ["demo"] };
    let [workflow] = await tx`
      SELECT id FROM workflows WHERE project_id = ${project.id} AND name = ${DEMO.workflow}`;
    if (workflow) {
      await tx`
        UPDATE workflows SET config = ${tx.json(appConfig)}, provider_id = ${providerId},
          visibility = 'public', is_mainline = true, updated_at = now()
        WHERE id = ${workflow.id} AND config IS DISTINCT FROM ${tx.json(appConfig)}::jsonb`;
    } else {
      [workflow] = await tx`
        INSERT INTO workflows (project_id, provider_id, name, description, config, visibility, is_mainline,
                               created_by)
        VALUES (${project.id}, ${providerId}, ${DEMO.workflow}, 'The bundled demo voice agent',
                ${tx.json(appConfig)}, 'public', true, ${user.id})
        RETURNING id`;
    }
    let [evalSet] = await tx`
      SELECT id FROM eval_sets WHERE project_id = ${project.id} AND name = ${DEMO.evalSet}`;
    if (evalSet) {
      await tx`
        UPDATE eval_sets SET config = ${tx.json(DEMO_SEEDED_EVAL_SET)}, updated_at = now()
        WHERE id = ${evalSet.id} AND config IS DISTINCT FROM ${tx.json(DEMO_SEEDED_EVAL_SET)}::jsonb`;
    }
    evalSet ??= (await tx`
      INSERT INTO eval_sets (project_id, name, description, config, visibility, is_mainline, created_by)
      VALUES (${project.id}, ${DEMO.evalSet}, 'Two response turns and one barge-in, clean and over 3G',
              ${tx.json(DEMO_SEEDED_EVAL_SET)}, 'public', true, ${user.id})
      RETURNING id`)[0];
    let [schedule] = await tx`
      SELECT id, cron_expression, is_enabled FROM eval_schedules
      WHERE workflow_id = ${workflow.id} AND eval_set_id = ${evalSet.id} AND region = ${DEMO.region}
      ORDER BY id LIMIT 1`;
    schedule ??= await createSchedule(tx, {
      workflowId: workflow.id,
      evalSetId: evalSet.id,
      region: DEMO.region,
      scheduleType: "recurring",
      cronExpression: opts.cron,
      timezone: "UTC",
      createdBy: user.id,
    });
    return {
      userId: user.id as number,
      projectId: project.id as number,
      providerId,
      workflowId: workflow.id as number,
      evalSetId: evalSet.id as number,
      scheduleId: schedule.id as number,
      cron: schedule.cronExpression as string,
      enabled: schedule.isEnabled as boolean,
    };
  });
  // updateSchedule() opens its own transaction, hence after the seeding one.
  if (ids.cron !== opts.cron || !ids.enabled) {
    await updateSchedule(sql, ids.scheduleId, { cronExpression: opts.cron, isEnabled: true });
  }
  const { cron: _, enabled: __, ...seed } = ids;
  return seed;
}

/**
 * With the demo turned off after it once ran: its schedule is disabled, its waiting jobs are
 * cancelled and its token revoked, so nothing queues up for an agent that no longer runs.
 * Nothing happens when the demo was never seeded. Returns whether there was a demo to stop.
 */
export async function disableDemo(sql: Sql): Promise<boolean> {
  const schedules = await sql<{ id: number; workflowId: number; evalSetId: number }[]>`
    SELECT s.id, s.workflow_id, s.eval_set_id FROM eval_schedules s
    JOIN workflows w ON w.id = s.workflow_id JOIN projects p ON p.id = w.project_id
    JOIN users u ON u.id = p.owner_user_id
    WHERE lower(u.username) = ${DEMO.username} AND lower(u.email) = ${DEMO.email}
      AND s.region = ${DEMO.region}`;
  for (const s of schedules) {
    await updateSchedule(sql, s.id, { isEnabled: false });
    await sql`
      UPDATE eval_jobs SET status = 'cancelled', finished_at = now(), error = 'the demo is turned off'
      WHERE workflow_id = ${s.workflowId} AND eval_set_id = ${s.evalSetId} AND status = 'pending'`;
  }
  const tokens = await sql<{ id: number }[]>`
    SELECT id FROM eval_agent_tokens WHERE name = ${DEMO.tokenName} AND revoked_at IS NULL`;
  for (const t of tokens) await revokeAgentToken(sql, t.id);
  return schedules.length > 0;
}

/**
 * A fresh token for the demo agent (region `local`); earlier demo tokens are revoked, so a
 * token from a previous start (or a crashed one) never works again. Returns the raw token.
 */
export async function rotateDemoToken(sql: Sql, createdBy: number | null): Promise<string> {
  const old = await sql<{ id: number }[]>`
    SELECT id FROM eval_agent_tokens WHERE name = ${DEMO.tokenName} AND revoked_at IS NULL`;
  for (const t of old) await revokeAgentToken(sql, t.id);
  return (await createAgentToken(sql, { name: DEMO.tokenName, region: DEMO.region, createdBy })).token;
}

/**
 * Queues one demo job now unless one is already waiting or running, so the first result does
 * not wait for the schedule's next firing. Returns the job id, or null when one was queued.
 */
export async function kickDemo(sql: Sql, seed: DemoSeed): Promise<number | null> {
  const [busy] = await sql`
    SELECT 1 FROM eval_jobs
    WHERE workflow_id = ${seed.workflowId} AND eval_set_id = ${seed.evalSetId}
      AND status IN ('pending', 'running') LIMIT 1`;
  if (busy) return null;
  const job = await createJob(sql, {
    workflowId: seed.workflowId,
    evalSetId: seed.evalSetId,
    region: DEMO.region,
    scheduleId: seed.scheduleId,
    createdBy: seed.userId,
  });
  return job.id;
}

/** The demo agent's own working folder (its jobs, its Chromium profiles' parent). */
export const DEMO_AGENT_DIR = resolve(".vox", "demo-agent");
const SETPRIV = "/usr/bin/setpriv";

function hasSetpriv(): boolean {
  try {
    return Deno.statSync(SETPRIV).isFile;
  } catch {
    return false;
  }
}

/** Variables of the server's environment the demo agent may see: tools' paths, locale, Deno's cache. */
const DEMO_AGENT_ENV_KEYS = [
  "PATH",
  "HOME",
  "LANG",
  "LC_ALL",
  "TZ",
  "TMPDIR",
  "DENO_DIR",
  "DENO_NO_UPDATE_CHECK",
  "CHROMIUM_PATH",
  "ESPEAK_PATH",
  "XDG_CACHE_HOME",
];

/** The part of this process's environment handed to the demo agent (see DEMO_AGENT_ENV_KEYS). */
export function demoAgentBaseEnv(env: Record<string, string> = Deno.env.toObject()): Record<string, string> {
  return Object.fromEntries(DEMO_AGENT_ENV_KEYS.filter((k) => env[k] !== undefined).map((k) => [k, env[k]]));
}

export interface DemoAgentOptions {
  /** Where the child reaches this server, e.g. http://127.0.0.1:8000. */
  serverUrl: string;
  token: string;
  log: Logger;
  /** Restarts allowed within `restartWindowMs` before giving up (default 5). */
  maxRestarts?: number;
  restartWindowMs?: number;
}

/**
 * The local eval agent as a child process (`agent/main.ts` with this Deno), restarted with
 * backoff when it dies — at most `maxRestarts` times within the window, then left down with
 * an error in the log. `stop()` sends SIGTERM (the agent hands back a running job) and
 * waits for it to exit.
 */
export class DemoAgent {
  #child: Deno.ChildProcess | null = null;
  #stopping = false;
  #restarts: number[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  #exited: Promise<void> = Promise.resolve();

  constructor(readonly opts: DemoAgentOptions) {}

  /** The running child's pid, if any. */
  get pid(): number | null {
    return this.#child?.pid ?? null;
  }

  start(): void {
    if (this.#stopping) return;
    const o = this.opts;
    const main = new URL("../agent/main.ts", import.meta.url).pathname;
    const config = new URL("../deno.json", import.meta.url).pathname;
    // The agent runs configs and pages anyone may write: it gets its own folder and an
    // environment holding only what it needs and its own token — none of the server's
    // secrets (INIT_CODE, OAuth, Stripe, the database, VOX_SECRET_KEY).
    Deno.mkdirSync(DEMO_AGENT_DIR, { recursive: true });
    // setpriv: the agent gets SIGKILL when this server dies, however it dies.
    const die = hasSetpriv() ? [SETPRIV, "--pdeathsig", "KILL", "--"] : [];
    const argv = [...die, Deno.execPath(), "run", "-A", "--config", config, main, "daemon"];
    const child = new Deno.Command(argv[0], {
      args: argv.slice(1),
      cwd: DEMO_AGENT_DIR,
      clearEnv: true,
      env: {
        ...demoAgentBaseEnv(),
        VOX_SERVER_URL: o.serverUrl,
        VOX_AGENT_TOKEN: o.token,
        VOX_AGENT_REGION: DEMO.region,
        VOX_AGENT_NAME: DEMO.agentName,
        VOX_AGENT_CONCURRENCY: "1",
        VOX_AGENT_ASSETS_DIR: join(DEMO_DIR, "caller"),
        VOX_AGENT_WORK_DIR: join(DEMO_AGENT_DIR, "jobs"),
        // Short, so stopping the server is quick; a job cut short is handed back.
        VOX_AGENT_GRACE_SECONDS: "5",
        // The strict egress policy with one exception: the demo agent's pages on this server.
        VOX_AGENT_EGRESS_ALLOW: `${o.serverUrl.replace(/\/+$/, "")}/demo/`,
      },
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn();
    this.#child = child;
    o.log.info("demo eval agent started", { pid: child.pid, region: DEMO.region });
    this.#exited = child.status.then((status) => {
      if (this.#child === child) this.#child = null;
      if (this.#stopping) return;
      const now = Date.now();
      const window = o.restartWindowMs ?? 10 * 60_000;
      this.#restarts = this.#restarts.filter((t) => now - t < window);
      if (this.#restarts.length >= (o.maxRestarts ?? 5)) {
        o.log.error("demo eval agent keeps dying; not restarting it", {
          code: status.code,
          signal: status.signal,
        });
        return;
      }
      this.#restarts.push(now);
      const delay = 1000 * 2 ** (this.#restarts.length - 1);
      o.log.warn("demo eval agent exited; restarting", {
        code: status.code,
        signal: status.signal,
        inMs: delay,
      });
      this.#timer = setTimeout(() => this.start(), delay);
    });
  }

  /** SIGTERM, then SIGKILL if it has not exited within `timeoutMs`. */
  async stop(timeoutMs = 15_000): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#timer);
    const child = this.#child;
    if (!child) return;
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const killed = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* gone */ }
        resolve();
      }, timeoutMs);
    });
    await Promise.race([this.#exited, killed]);
    clearTimeout(timer);
    await child.status;
  }
}

/**
 * Seeds the demo, rotates its token, queues a first job and starts the local agent against
 * the server listening at `serverUrl`. Returns the agent (stop it on shutdown).
 */
export async function startDemo(
  sql: Sql,
  opts: { serverUrl: string; log: Logger; cron: string },
): Promise<{ agent: DemoAgent; seed: DemoSeed }> {
  const seed = await seedDemo(sql, { baseUrl: opts.serverUrl, cron: opts.cron });
  const token = await rotateDemoToken(sql, seed.userId);
  const jobId = await kickDemo(sql, seed);
  const agent = new DemoAgent({ serverUrl: opts.serverUrl, token, log: opts.log });
  agent.start();
  opts.log.info("demo running", {
    agentPage: `${opts.serverUrl}${DEMO_AGENT_PATH}`,
    workflowId: seed.workflowId,
    scheduleId: seed.scheduleId,
    firstJob: jobId,
    turnOff: "VOX_DEMO=false",
  });
  return { agent, seed };
}
