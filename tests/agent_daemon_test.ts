// vox_eval_agentd in daemon mode against a real server (createApp + Orchestrator on a test
// database, served on a real port) running real headless Chromium jobs against the
// reference voice agent: delivery, server restart, network drop and SIGTERM.
import assert from "node:assert/strict";
import { PostgresArtifactStore } from "../lib/artifact_store.ts";
import { verifyBoards } from "../lib/verify.ts";
import { createAgentToken } from "../lib/agent_tokens.ts";
import { Orchestrator } from "../lib/orchestrator.ts";
import { createJob } from "../lib/queue.ts";
import { createLogger } from "../lib/log.ts";
import { EvalDaemon } from "../agent/daemon.ts";
import { daemonSettings } from "../agent/daemon_settings.ts";
import { createTestApp } from "./_app.ts";
import { serveApp } from "./_orch.ts";
import type { HttpServer } from "../lib/http_server.ts";
import { createUser } from "./_auth.ts";
import { createTestDatabase, setSetting } from "./_db.ts";
import { eventually } from "./_wait.ts";
import { serveReferenceAgent } from "../bench/reference_agent.ts";

const db = await createTestDatabase();
const sql = db.sql;
const fixtures = serveReferenceAgent();
Deno.test.afterAll(async () => {
  await fixtures.close();
  await db.close();
});
const ASSETS = new URL("./fixtures/vat/assets/", import.meta.url).pathname;
const REPO = new URL("..", import.meta.url).pathname;

// Heartbeats every second so a restart is noticed quickly; the timeout stays long enough
// that the outages below never hand a job to someone else.
await setSetting(sql, "agents.heartbeat_interval_seconds", 1);
await setSetting(sql, "jobs.heartbeat_timeout_seconds", 60);

/** A server on a fixed port that can be stopped and started again (same database). */
class TestServer {
  port = 0;
  #orch: Orchestrator | null = null;
  #server: HttpServer | null = null;
  #n = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  get orch(): Orchestrator {
    return this.#orch!;
  }

  async start(): Promise<void> {
    const serverId = `daemon-test-${++this.#n}`;
    const orch = new Orchestrator({
      sql,
      serverId,
      log: createLogger({ serverId }),
      pollMs: 1000,
      reapMs: 200,
      flushMs: 100,
      rollupMs: 200,
    });
    await orch.start();
    const { app } = await createTestApp(sql, { orchestrator: orch, serverId });
    this.#server = await serveApp(app, orch, this.port);
    this.port = this.#server.addr.port;
    this.#orch = orch;
  }

  /** Like main.ts's shutdown: agent sockets first (close 1012), then the listener. */
  async stop(): Promise<void> {
    await this.#orch?.stop();
    await this.#server?.shutdown();
    this.#orch = null;
    this.#server = null;
  }
}

/** A mainline workflow on the reference agent and a one-turn eval set. */
async function evalPair(query = "out=webaudio&delay=700") {
  const user = await createUser(sql, { role: "principal" });
  const [provider] = await sql`
    INSERT INTO providers (name, sku) VALUES (${"Daemon test " + crypto.randomUUID().slice(0, 8)}, 0)
    RETURNING id`;
  const [w] = await sql`
    INSERT INTO workflows (project_id, provider_id, name, config, is_mainline, created_by)
    VALUES (${user.defaultProjectId}, ${provider.id}, 'reference agent',
            ${sql.json({ url: `${fixtures.url}agent/index.html?${query}`, steps: [] })}, true, ${user.id})
    RETURNING id`;
  const [e] = await sql`
    INSERT INTO eval_sets (project_id, name, config, is_mainline, created_by)
    VALUES (${user.defaultProjectId}, 'one turn', ${
    sql.json({
      steps: [
        { action: "wait_for_element", selector: "body[data-ready='1']" },
        { action: "speak", file: "hello.wav" },
        { action: "wait_for_voice", metrics: "elapsed_time" },
      ],
    })
  }, true, ${user.id})
    RETURNING id`;
  // createdBy: jobs made from the spread pair are the principal's, so their results are public.
  return {
    workflowId: w.id as number,
    evalSetId: e.id as number,
    providerId: provider.id as string,
    createdBy: user.id,
  };
}

/** Daemon events as the tests see them. */
class Events {
  lines: { level: string; message: string; fields?: Record<string, unknown> }[] = [];
  log = (level: "info" | "warn" | "error", message: string, fields?: Record<string, unknown>) => {
    this.lines.push({ level, message, fields });
  };
  count(message: string): number {
    return this.lines.filter((l) => l.message === message).length;
  }
}

function settings(region: string, token: string, serverUrl: string) {
  return daemonSettings({}, {
    VOX_SERVER_URL: serverUrl,
    VOX_AGENT_TOKEN: token,
    VOX_AGENT_REGION: region,
    VOX_AGENT_NAME: `daemon-${region}`,
    VOX_AGENT_ASSETS_DIR: ASSETS,
    VOX_AGENT_GRACE_SECONDS: "5",
    // The reference agent is on loopback: the strict egress policy lets exactly it through.
    VOX_AGENT_EGRESS_ALLOW: fixtures.url,
  });
}

async function storedOutcome(jobId: number) {
  const [job] = await sql`SELECT status, attempts, error FROM eval_jobs WHERE id = ${jobId}`;
  const results = await sql`
    SELECT response_latency_median, response_latency_n, is_mainline, report FROM eval_results WHERE job_id = ${jobId}`;
  const artifacts = await sql`
    SELECT name, kind, content_type, size_bytes,
           (SELECT string_agg(c.data, ''::bytea ORDER BY c.seq) FROM eval_artifact_chunks c
            WHERE c.artifact_id = a.id) AS data
    FROM eval_artifacts a WHERE job_id = ${jobId}`;
  return { job, results, artifacts };
}

/** The stored outcome of a job that must have completed exactly once with a stereo recording. */
async function assertDeliveredOnce(jobId: number) {
  const { job, results, artifacts } = await storedOutcome(jobId);
  assert.equal(job.status, "completed", `job ${jobId}: ${job.error}`);
  assert.equal(job.attempts, 1, "completed on its first attempt, never handed to anyone else");
  assert.equal(results.length, 1, "exactly one result");
  const r = results[0];
  assert.equal(r.responseLatencyN, 1);
  // The reference agent answers 700 ms after the caller stops (its own audio clock); the
  // runner's target on Web Audio output is within 5 ms, so 10 ms here is generous.
  assert.ok(
    typeof r.responseLatencyMedian === "number" && Math.abs(r.responseLatencyMedian - 700) <= 10,
    `measured ${r.responseLatencyMedian} ms for a 700 ms reply delay`,
  );
  assert.equal(artifacts.length, 1);
  const a = artifacts[0];
  assert.equal(a.name, "recording-1.wav");
  assert.equal(a.kind, "recording");
  assert.equal(a.contentType, "audio/wav");
  const wav = new Uint8Array(a.data);
  assert.equal(new TextDecoder().decode(wav.subarray(0, 4)), "RIFF");
  assert.equal(new DataView(wav.buffer, wav.byteOffset).getUint16(22, true), 2, "stereo: caller and agent");
  assert.ok(a.sizeBytes > 44 + 48_000, "the recording holds audio");
  return r;
}

// One in-process daemon (one Chromium) serves the next three tests, in region daemon-a; the
// server serves every test below.
const server = new TestServer();
await server.start();
const regionA = "daemon-a";
const tokenA = (await createAgentToken(sql, { name: "daemon test", region: regionA })).token;
const events = new Events();
const daemon = new EvalDaemon(settings(regionA, tokenA, server.url), events.log);
daemon.start();
Deno.test.afterAll(async () => {
  await daemon.stop("test over");
  await server.stop();
});
const pair = await evalPair();

Deno.test({
  name:
    "a job created on the server reaches the daemon, runs in Chromium, and its result and recording are stored",
  async fn() {
    const job = await createJob(sql, { ...pair, region: regionA });
    const progress: { step: number; totalSteps: number; message: string }[] = [];
    const unsubscribe = server.orch.events.subscribe(`job:${job.id}`, (event, data) => {
      const p = (data as { progress?: typeof progress[number] }).progress;
      if (event === "progress" && p) progress.push(p);
    });
    await eventually(
      () => daemon.delivered.some((d) => d.jobId === job.id),
      "the result acknowledged",
      120_000,
    );
    unsubscribe();
    // Progress reached the job's live stream while it ran, step by step.
    assert.ok(progress.length >= 3, JSON.stringify(progress));
    assert.equal(progress.at(-1)!.totalSteps, 3);
    assert.ok(
      progress.some((p) => p.step === 3 && /wait_for_voice/.test(p.message)),
      JSON.stringify(progress),
    );
    const r = await assertDeliveredOnce(job.id);
    assert.equal(r.isMainline, true);
    const report = r.report as { methods: Record<string, string>; runs: { recording: string }[] };
    assert.equal(report.methods.response_latency, "vox-audioclock-response/1");
    assert.equal(report.runs[0].recording, "recording-1.wav");
    // The receipts hold: `deno task verify` re-derives the turn from the uploaded recording with
    // the meter's detector and agrees with what the agent measured in the page (issue 13).
    const [{ id: resultId }] = await sql`SELECT id FROM eval_results WHERE job_id = ${job.id}`;
    const verified = await verifyBoards(sql, new PostgresArtifactStore(), { resultIds: [resultId] });
    assert.deepEqual(verified.mismatches, []);
    assert.equal(verified.recordings, 1);
    assert.equal(verified.turnsRederived, 1, JSON.stringify(verified));
    const [agent] = await sql`SELECT state, version FROM eval_agents WHERE name = ${"daemon-" + regionA}`;
    assert.match(agent.version, /^vox_eval_agentd\/1/);
    await eventually(async () => {
      const [a] = await sql`SELECT state FROM eval_agents WHERE name = ${"daemon-" + regionA}`;
      return a.state === "IDLE";
    }, "the agent idle again");
  },
});

Deno.test({
  name: "the server restarts while a job runs: the daemon reconnects and the result lands exactly once",
  async fn() {
    const before = events.count("registered");
    const job = await createJob(sql, { ...pair, region: regionA });
    await eventually(() => daemon.jobs.has(job.id), "the job accepted", 60_000);
    await server.stop();
    // The job keeps running with no server; its result waits in the daemon.
    await eventually(() => daemon.jobs.get(job.id)?.outcome, "the job finished offline", 120_000);
    assert.equal(daemon.conn.registered, null, "measured while disconnected");
    assert.equal((await storedOutcome(job.id)).results.length, 0);
    await server.start();
    await eventually(
      () => daemon.delivered.some((d) => d.jobId === job.id),
      "the result acknowledged after the restart",
      60_000,
    );
    assert.ok(events.count("registered") > before, "registered again");
    const ack = daemon.delivered.find((d) => d.jobId === job.id)!;
    assert.equal(ack.status, "completed");
    await assertDeliveredOnce(job.id);
  },
});

Deno.test({
  name: "the connection drops mid-job and again as the result goes out: nothing is lost or counted twice",
  async fn() {
    const job = await createJob(sql, { ...pair, region: regionA });
    await eventually(() => daemon.jobs.has(job.id), "the job accepted", 60_000);
    const serverSide = () => [...server.orch.connections.values()].find((c) => c.region === regionA);
    // Server side drops the socket while the page is being measured…
    serverSide()?.socket.close(1011, "simulated network failure");
    await eventually(() => daemon.conn.registered, "reconnected", 30_000);
    // …and again the moment the result is ready, racing the result frame and its ack.
    await eventually(
      () => daemon.jobs.get(job.id)?.outcome ?? !daemon.jobs.has(job.id),
      "the job finished",
      120_000,
    );
    serverSide()?.socket.close(1011, "simulated network failure");
    await eventually(
      async () => (await storedOutcome(job.id)).job.status === "completed" && !daemon.jobs.has(job.id),
      "the result stored and acknowledged",
      60_000,
    );
    await assertDeliveredOnce(job.id);
  },
});

Deno.test({
  name: "an in-process daemon stops gracefully and its agent goes offline",
  async fn() {
    const region = "daemon-stop";
    const { token } = await createAgentToken(sql, { name: "stop", region });
    const d = new EvalDaemon(settings(region, token, server.url), () => {});
    d.start();
    try {
      await eventually(() => d.conn.registered, "registered", 30_000);
    } finally {
      await d.stop("test over");
    }
    assert.equal(d.jobs.size, 0);
    await eventually(async () => {
      const [a] = await sql`SELECT state FROM eval_agents WHERE name = ${"daemon-" + region}`;
      return a.state === "OFFLINE";
    }, "the agent offline");
  },
});

/**
 * A TCP relay between the daemon and the server that can make the network vanish for the
 * connections it carries: bytes are read and thrown away in both directions, nothing is
 * closed, so neither side sees an error — a silent drop. New connections pass again.
 */
class Relay {
  #listener: Deno.Listener;
  #pairs: { dead: boolean; conns: Deno.Conn[] }[] = [];

  constructor(readonly targetPort: number) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#accept();
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#listener.addr as Deno.NetAddr).port}`;
  }

  async #accept() {
    for await (const a of iterate(this.#listener)) {
      const b = await Deno.connect({ hostname: "127.0.0.1", port: this.targetPort }).catch(() => null);
      if (!b) {
        a.close();
        continue;
      }
      const pair = { dead: false, conns: [a, b] };
      this.#pairs.push(pair);
      this.#pump(a, b, pair);
      this.#pump(b, a, pair);
    }
  }

  async #pump(from: Deno.Conn, to: Deno.Conn, pair: { dead: boolean; conns: Deno.Conn[] }) {
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await from.read(buf).catch(() => null);
      if (n === null) break;
      if (pair.dead) continue;
      let off = 0;
      while (off < n) off += await to.write(buf.subarray(off, n)).catch(() => n);
    }
    if (!pair.dead) closeAll(pair.conns);
  }

  /** Every connection open now goes silent. */
  blackhole(): void {
    for (const p of this.#pairs) p.dead = true;
  }

  close(): void {
    this.#listener.close();
    for (const p of this.#pairs) {
      p.dead = true;
      closeAll(p.conns);
    }
  }
}

function closeAll(conns: Deno.Conn[]): void {
  for (const c of conns) {
    try {
      c.close();
    } catch { /* closed already */ }
  }
}

/** The listener's connections until it is closed. */
async function* iterate(listener: Deno.Listener): AsyncGenerator<Deno.Conn> {
  for (;;) {
    try {
      yield await listener.accept();
    } catch {
      return;
    }
  }
}

Deno.test({
  name:
    "a silent network drop (no close, no error) while the result goes out: the daemon notices and delivers once",
  async fn() {
    const region = "daemon-silent";
    const { token } = await createAgentToken(sql, { name: "silent", region });
    const relay = new Relay(server.port);
    const ev = new Events();
    const d = new EvalDaemon(settings(region, token, relay.url), ev.log);
    d.ackTimeoutMs = 3000;
    d.start();
    try {
      await eventually(() => d.conn.registered, "registered through the relay", 30_000);
      const job = await createJob(sql, { ...pair, region });
      await eventually(() => d.jobs.has(job.id), "the job accepted", 60_000);
      relay.blackhole();
      await eventually(
        () => ev.count("no acknowledgement from the server; reconnecting") > 0,
        "noticed",
        120_000,
      );
      await eventually(() => d.delivered.some((x) => x.jobId === job.id), "the result acknowledged", 60_000);
      await assertDeliveredOnce(job.id);
    } finally {
      await d.stop();
      relay.close();
    }
  },
});

Deno.test({
  name: "with concurrency 2 the daemon runs two jobs at once and delivers each once",
  async fn() {
    const region = "daemon-pair";
    const { token } = await createAgentToken(sql, { name: "pair", region });
    const ev = new Events();
    const d = new EvalDaemon({ ...settings(region, token, server.url), concurrency: 2 }, ev.log);
    d.start();
    try {
      await eventually(() => d.conn.registered, "registered", 30_000);
      const jobs = [await createJob(sql, { ...pair, region }), await createJob(sql, { ...pair, region })];
      await eventually(
        () => jobs.every((j) => d.delivered.some((x) => x.jobId === j.id)),
        "both results acknowledged",
        120_000,
      );
      const order = ev.lines.filter((l) => l.message === "job accepted" || l.message === "job finished")
        .map((l) => l.message);
      assert.deepEqual(order.slice(0, 2), ["job accepted", "job accepted"], "both ran at the same time");
      for (const j of jobs) await assertDeliveredOnce(j.id);
    } finally {
      await d.stop();
    }
  },
});

/** `deno task agent` as a real process; its output is kept for failure messages. */
function spawnDaemon(env: Record<string, string>) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "agent/main.ts"],
    cwd: REPO,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let output = "";
  const drain = async (s: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of s) output += decoder.decode(chunk, { stream: true });
  };
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
  return {
    child,
    get output() {
      return output;
    },
    async exit() {
      const status = await child.status;
      await drained;
      return status;
    },
  };
}

Deno.test({
  name: "SIGTERM mid-job: the daemon process finishes the job, delivers it and exits 0",
  async fn() {
    const region = "daemon-term";
    const { token } = await createAgentToken(sql, { name: "sigterm", region });
    const proc = spawnDaemon({
      ...settingsEnv(region, token),
      VOX_AGENT_GRACE_SECONDS: "120",
    });
    try {
      const job = await createJob(sql, { ...pair, region });
      await eventually(
        async () => {
          const [j] = await sql`SELECT accepted_at FROM eval_jobs WHERE id = ${job.id}`;
          return j.acceptedAt;
        },
        "the job accepted by the process",
        60_000,
      );
      proc.child.kill("SIGTERM");
      const status = await proc.exit();
      assert.equal(status.code, 0, proc.output);
      await assertDeliveredOnce(job.id);
      assert.match(proc.output, /"message":"draining: no new jobs"/);
    } finally {
      try {
        proc.child.kill("SIGKILL");
      } catch { /* exited */ }
    }
  },
});

Deno.test({
  name: "SIGTERM with no grace left: the running job is handed back to the queue without using an attempt",
  async fn() {
    const region = "daemon-handback";
    const { token } = await createAgentToken(sql, { name: "handback", region });
    const proc = spawnDaemon({ ...settingsEnv(region, token), VOX_AGENT_GRACE_SECONDS: "0" });
    try {
      const job = await createJob(sql, { ...pair, region });
      await eventually(
        async () => {
          const [j] = await sql`SELECT accepted_at FROM eval_jobs WHERE id = ${job.id}`;
          return j.acceptedAt;
        },
        "the job accepted by the process",
        60_000,
      );
      proc.child.kill("SIGTERM");
      const status = await proc.exit();
      assert.equal(status.code, 0, proc.output);
      assert.match(proc.output, /"message":"job handed back"/);
      const { job: after, results } = await storedOutcome(job.id);
      assert.equal(after.status, "pending", "back in the queue for another agent");
      assert.equal(after.attempts, 0, "the hand-back used no attempt");
      assert.equal(results.length, 0);
    } finally {
      try {
        proc.child.kill("SIGKILL");
      } catch { /* exited */ }
    }
  },
});

Deno.test({
  name: "a revoked token makes the daemon exit 1 with the server's reason",
  async fn() {
    const region = "daemon-revoked";
    const { token, info } = await createAgentToken(sql, { name: "revoked", region });
    const proc = spawnDaemon(settingsEnv(region, token));
    try {
      await eventually(
        async () => {
          const [a] = await sql`SELECT state FROM eval_agents WHERE token_id = ${info.id}`;
          return a?.state === "IDLE";
        },
        "the process registered",
        60_000,
      );
      const { revokeAgentToken } = await import("../lib/agent_tokens.ts");
      await revokeAgentToken(sql, info.id);
      const status = await proc.exit();
      assert.equal(status.code, 1, proc.output);
      assert.match(proc.output, /token revoked/);
    } finally {
      try {
        proc.child.kill("SIGKILL");
      } catch { /* exited */ }
    }
  },
});

Deno.test({
  name: "a token refused at the upgrade ends the daemon with the reason from the 401's body",
  async fn() {
    const unknown = "vox_agent_" + "Z".repeat(40);
    const d = new EvalDaemon(settings("daemon-unknown", unknown, server.url), () => {});
    d.start();
    try {
      const final = await d.conn.untilFinal();
      assert.equal(final.code, 4001);
      assert.equal(final.reason, "agent token is not known");
    } finally {
      await d.stop();
    }
    // Revoked before the daemon ever connected: told apart from an unknown one (4002: do not retry).
    const { token, info } = await createAgentToken(sql, { name: "revoked-early", region: "daemon-early" });
    const { revokeAgentToken } = await import("../lib/agent_tokens.ts");
    await revokeAgentToken(sql, info.id);
    const r = new EvalDaemon(settings("daemon-early", token, server.url), () => {});
    r.start();
    try {
      const final = await r.conn.untilFinal();
      assert.deepEqual(final, { code: 4002, reason: "agent token was revoked" });
    } finally {
      await r.stop();
    }
  },
});

function settingsEnv(region: string, token: string): Record<string, string> {
  return {
    PATH: Deno.env.get("PATH") ?? "",
    HOME: Deno.env.get("HOME") ?? "/tmp",
    VOX_SERVER_URL: server.url,
    VOX_AGENT_TOKEN: token,
    VOX_AGENT_REGION: region,
    VOX_AGENT_NAME: `proc-${region}`,
    VOX_AGENT_ASSETS_DIR: ASSETS,
    VOX_AGENT_EGRESS_ALLOW: fixtures.url,
  };
}
