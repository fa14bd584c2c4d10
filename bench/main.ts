// `deno task bench`: the orchestration benchmarks of issue 4, with their baselines measured in
// the same run on the same database. Writes bench/results.json and prints figures and ratios.
//
// Scale (environment): BENCH_QUICK=1 for a small run, or individually BENCH_DISPATCH_AGENTS
// (100), BENCH_DISPATCH_SAMPLES (500), BENCH_BACKLOG (100000), BENCH_THROUGHPUT_AGENTS (50),
// BENCH_RAW_JOBS (30000), BENCH_FLEET (10000), BENCH_RESULTS (1000000), BENCH_STREAMS (1000),
// BENCH_PUSH_SAMPLES (20), BENCH_PEER_BACKLOG (20000), BENCH_HTTP_MS (10000), BENCH_HTTP_CONCURRENCY
// (50). DATABASE_URL names the server; the bench uses its own database.
//
// Targets are ratios against baselines and peers measured in the same run (bench/results.json
// `ratios`); absolute figures move several-fold between machines and are printed for reference.
import { createAgentToken } from "../lib/agent_tokens.ts";
import { createSql } from "../lib/db.ts";
import { freePort } from "../lib/embedded_pg.ts";
import { completeJob } from "../lib/job_completer.ts";
import { claimJobs, createJob } from "../lib/queue.ts";
import { leaderboard, realtime, rollUpResults } from "../lib/metrics.ts";
import { migrate } from "../lib/migrate.ts";
import { seed, SEEDED_PROVIDERS } from "../lib/seed.ts";
import { createApiKey } from "../lib/auth/api_keys.ts";
import { load, pageJavaScript, ttfb } from "./http.ts";
import { benchGraphileWorker, benchPgBoss } from "./peers.ts";
import { type Offer, sampleReport, SimAgent } from "./sim_agent.ts";
import { cpuSeconds, cpuSecondsOf, envInt, percentile, r2, report, rssKb, sleep, waitReady } from "./lib.ts";

const quick = Deno.env.get("BENCH_QUICK") === "1";
const scale = {
  dispatchAgents: envInt("BENCH_DISPATCH_AGENTS", quick ? 20 : 100),
  dispatchSamples: envInt("BENCH_DISPATCH_SAMPLES", quick ? 100 : 500),
  backlog: envInt("BENCH_BACKLOG", quick ? 5_000 : 100_000),
  throughputAgents: envInt("BENCH_THROUGHPUT_AGENTS", quick ? 20 : 50),
  rawJobs: envInt("BENCH_RAW_JOBS", quick ? 5_000 : 30_000),
  fleet: envInt("BENCH_FLEET", quick ? 500 : 10_000),
  results: envInt("BENCH_RESULTS", quick ? 50_000 : 1_000_000),
  streams: envInt("BENCH_STREAMS", quick ? 100 : 1_000),
  pushSamples: envInt("BENCH_PUSH_SAMPLES", quick ? 5 : 20),
  peerBacklog: envInt("BENCH_PEER_BACKLOG", quick ? 2_000 : 20_000),
  httpMs: envInt("BENCH_HTTP_MS", quick ? 3_000 : 10_000),
  httpConcurrency: envInt("BENCH_HTTP_CONCURRENCY", 50),
};
const ROOT = new URL("..", import.meta.url).pathname;
// BENCH_ONLY=raw,dispatch,peers,fleet,reads,http runs a subset (dispatch includes throughput and push);
// BENCH_ONLY=throughput runs the claim + complete baseline and the full cycle only.
const only = Deno.env.get("BENCH_ONLY")?.split(",").map((s) => s.trim());
const want = (phase: string) => !only || only.includes(phase);
const wantRaw = want("raw") || want("throughput");
const wantDispatch = want("dispatch");
const wantThroughput = want("dispatch") || want("throughput");
const SETTLE_MS = envInt("BENCH_SETTLE_MS", quick ? 3000 : 8000);
const baseUrl = Deno.env.get("DATABASE_URL") ?? "postgres://postgres@127.0.0.1:5432/postgres";
// A database of this run's own: two benches at once (another engineer's, a helper's) must not
// drop each other's.
const dbName = `vox_bench_${Deno.pid}`;
const results: Record<string, unknown> = { measured_at: new Date().toISOString(), quick, scale };

console.log(`Vox orchestration bench${quick ? " (quick)" : ""}: ${JSON.stringify(scale)}`);

// ---------------------------------------------------------------- database
{
  const admin = createSql(baseUrl, { max: 1 });
  // Databases left by runs that were killed: dropped unless something still uses them.
  for (
    const { datname } of await admin`SELECT datname FROM pg_database WHERE datname ~ '^vox_bench(_[0-9]+)?$'`
  ) {
    await admin.unsafe(`DROP DATABASE IF EXISTS ${datname}`).catch(() => {});
  }
  await admin.unsafe(`CREATE DATABASE ${dbName}`);
  await admin.end();
}
const dbUrl = (() => {
  const u = new URL(baseUrl);
  u.pathname = `/${dbName}`;
  return u.toString();
})();
const sql = createSql(dbUrl, { max: 10, appName: "vox-bench" });
await migrate(sql);
await seed(sql);
const [fsync] = await sql`SHOW fsync`;
results.postgres = { fsync: fsync.fsync, version: (await sql`SHOW server_version`)[0].serverVersion };

const owner = await sql`
  INSERT INTO users (name, username, email, role, activated_at) VALUES ('Bench', 'bench', 'bench@example.test', 'principal', now())
  RETURNING id`;
const [project] = await sql`INSERT INTO projects (name, owner_user_id) VALUES ('Bench', ${
  owner[0].id
}) RETURNING id`;
// The pairs' jobs are the principal's, so their results feed the rollups as on a real install.
const benchOwner = owner[0].id as number;
const pairs: { workflowId: number; evalSetId: number; providerId: string }[] = [];
for (const p of SEEDED_PROVIDERS) {
  const [w] = await sql`
    INSERT INTO workflows (project_id, provider_id, name, config, is_mainline)
    VALUES (${project.id}, ${p.id}, ${p.name}, ${sql.json({ url: "http://127.0.0.1/", steps: [] })}, true)
    RETURNING id`;
  const [e] = await sql`
    INSERT INTO eval_sets (project_id, name, config, is_mainline)
    VALUES (${project.id}, ${"set " + p.name}, ${sql.json({ steps: [] })}, true) RETURNING id`;
  pairs.push({ workflowId: w.id as number, evalSetId: e.id as number, providerId: p.id });
}

// ---------------------------------------------------------------- baselines: raw SQL
if (wantRaw) {
  console.log("\nBaselines (raw SQL on the same database)");
  // Insert + NOTIFY → LISTEN → SKIP LOCKED claim, one job at a time.
  const claimSql = createSql(dbUrl, { max: 1 });
  const lat: number[] = [];
  let started = 0;
  let done: (() => void) | null = null;
  const sub = await claimSql.listen("bench_raw", async () => {
    await claimSql`
      WITH next AS (SELECT id FROM eval_jobs WHERE status = 'pending' AND region = 'raw'
                    ORDER BY priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED)
      UPDATE eval_jobs j SET status = 'completed' FROM next WHERE j.id = next.id RETURNING j.id`;
    lat.push(performance.now() - started);
    done?.();
  });
  for (let i = 0; i < 300; i++) {
    const wait = new Promise<void>((r) => done = r);
    started = performance.now();
    await sql`
      WITH j AS (INSERT INTO eval_jobs (workflow_id, eval_set_id, region, created_by)
                 VALUES (${pairs[0].workflowId}, ${
      pairs[0].evalSetId
    }, 'raw', ${benchOwner}) RETURNING region)
      SELECT pg_notify('bench_raw', region) FROM j`;
    await wait;
  }
  await sub.unlisten();
  await claimSql.end();
  const warm = lat.slice(20);
  results.raw_notify_claim_p50_ms = r2(percentile(warm, 50));
  results.raw_notify_claim_p99_ms = r2(percentile(warm, 99));
  report(
    "insert+NOTIFY → claim p50 / p99",
    `${results.raw_notify_claim_p50_ms} / ${results.raw_notify_claim_p99_ms} ms`,
  );

  // Claim + complete in two commits, 8 workers, from a backlog.
  await sql`
    INSERT INTO eval_jobs (workflow_id, eval_set_id, region, created_by)
    SELECT ${pairs[0].workflowId}, ${pairs[0].evalSetId}, 'rawtp', ${benchOwner}
    FROM generate_series(1, ${scale.rawJobs})`;
  await sql`VACUUM ANALYZE eval_jobs`;
  const workers = 8;
  const pool = createSql(dbUrl, { max: workers });
  const t0 = performance.now();
  let claimed = 0;
  await Promise.all(Array.from({ length: workers }, async () => {
    for (;;) {
      const [job] = await pool`
        WITH next AS (SELECT id FROM eval_jobs WHERE status = 'pending' AND region = 'rawtp'
                      ORDER BY priority DESC, id LIMIT 1 FOR UPDATE SKIP LOCKED)
        UPDATE eval_jobs j SET status = 'running', attempts = j.attempts + 1, started_at = now()
        FROM next WHERE j.id = next.id RETURNING j.id`;
      if (!job) return;
      await pool`UPDATE eval_jobs SET status = 'completed', finished_at = now() WHERE id = ${job.id}`;
      claimed++;
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  await pool.end();
  results.raw_claim_complete_per_s = r2(claimed / secs);
  report("claim + complete, two commits, 8 workers", `${results.raw_claim_complete_per_s} jobs/s`);
}

// ---------------------------------------------------------------- the server process
async function startServer(extraEnv: Record<string, string> = {}) {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-cron",
      ...(Deno.env.get("BENCH_GC_EXPERIMENT") ? ["--v8-flags=--expose-gc", ".vox/gc_main.ts"] : ["main.ts"]),
    ],
    cwd: ROOT,
    env: {
      DATABASE_URL: dbUrl,
      VOX_SECRET_KEY: "2".repeat(64),
      PORT: String(port),
      HOST: "127.0.0.1",
      VOX_DEMO: "false",
      LOG_LEVEL: "error",
      ...extraEnv,
    },
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const url = `http://127.0.0.1:${port}`;
  await waitReady(`${url}/readyz`);
  return {
    url,
    pid: child.pid,
    async stop() {
      child.kill("SIGTERM");
      const t = setTimeout(() => child.kill("SIGKILL"), 10_000);
      await child.status;
      clearTimeout(t);
    },
  };
}

async function connectAgents(
  url: string,
  region: string,
  n: number,
  extra: Partial<Parameters<typeof SimAgent.connect>[0]> = {},
) {
  const { token } = await createAgentToken(sql, { name: `bench-${region}`, region });
  const agents: SimAgent[] = [];
  const batch = 200;
  for (let i = 0; i < n; i += batch) {
    const chunk = await Promise.all(
      Array.from(
        { length: Math.min(batch, n - i) },
        (_, k) => SimAgent.connect({ baseUrl: url, token, name: `${region}-${i + k}`, region, ...extra }),
      ),
    );
    agents.push(...chunk);
  }
  return agents;
}

// ---------------------------------------------------------------- dispatch latency
if (wantDispatch || wantThroughput) {
  const server = await startServer();
  if (wantDispatch) await benchDispatch(server.url);
  if (wantThroughput) await benchThroughput(server.url, server.pid);
  if (wantDispatch) await benchPush(server.url);
  await server.stop();
}

// ---------------------------------------------------------------- queue peers
if (want("peers")) {
  const peerScale = {
    idleWorkers: scale.dispatchAgents,
    samples: scale.dispatchSamples,
    backlog: scale.peerBacklog,
    concurrency: scale.throughputAgents,
  };
  console.log(
    `\nQueue peers on the same PostgreSQL: ${peerScale.idleWorkers} idle workers for latency, ` +
      `concurrency ${peerScale.concurrency} through a ${peerScale.backlog} backlog`,
  );
  const peers: Record<string, unknown> = {};
  for (const [name, fn] of [["graphile_worker", benchGraphileWorker], ["pg_boss", benchPgBoss]] as const) {
    const f = await fn(dbUrl, peerScale);
    peers[name] = f;
    report(
      `${name} inserted → handler p50 / p99`,
      `${f.dispatch_p50_ms ?? "n/a"} / ${f.dispatch_p99_ms ?? "n/a"} ms`,
    );
    report(`${name} insert → start → complete`, `${f.jobs_per_s ?? "n/a"} jobs/s`);
  }
  results.peers = peers;
}

async function benchDispatch(url: string) {
  console.log(`\nDispatch: job created → offer received, ${scale.dispatchAgents} agents connected`);
  let resolveOffer: ((o: Offer) => void) | null = null;
  const agents = await connectAgents(url, "dispatch", scale.dispatchAgents, {
    onOffer: (o) => resolveOffer?.(o),
  });
  const lat: number[] = [];
  for (let i = 0; i < scale.dispatchSamples + 20; i++) {
    const got = new Promise<Offer>((r) => resolveOffer = r);
    const t0 = performance.now();
    await createJob(sql, {
      workflowId: pairs[0].workflowId,
      evalSetId: pairs[0].evalSetId,
      createdBy: benchOwner,
      region: "dispatch",
    });
    await got;
    if (i >= 20) lat.push(performance.now() - t0);
    await sleep(2); // let the agent's result land before the next job
  }
  results.dispatch_p50_ms = r2(percentile(lat, 50));
  results.dispatch_p99_ms = r2(percentile(lat, 99));
  report(
    "dispatch p50 / p99",
    `${results.dispatch_p50_ms} / ${results.dispatch_p99_ms} ms (target ≤ 2 / ≤ 10)`,
  );
  report(
    "  vs raw insert+NOTIFY→claim p50",
    `${r2((results.dispatch_p50_ms as number) / (results.raw_notify_claim_p50_ms as number))}×`,
  );
  for (const a of agents) await a.kill();
}

// ---------------------------------------------------------------- throughput
async function benchThroughput(url: string, serverPid: number) {
  console.log(
    `\nThroughput: ${scale.throughputAgents} agents through offer → accept → result, ${scale.backlog} backlog`,
  );
  await sql`
    INSERT INTO eval_jobs (workflow_id, eval_set_id, region, created_by)
    SELECT ${pairs[1].workflowId}, ${
    pairs[1].evalSetId
  }, 'tp', ${benchOwner} FROM generate_series(1, ${scale.backlog})`;
  await sql`VACUUM ANALYZE eval_jobs`;
  let completed = 0;
  // Where the CPU goes during the run: the server, this process (the simulated agents) and
  // the Postgres backends (every backend on the machine, so other work shows up here too).
  const cpu0 = {
    server: await cpuSeconds(serverPid),
    agents: await cpuSeconds(Deno.pid),
    pg: await cpuSecondsOf("postgres"),
  };
  const t0 = performance.now();
  const marks: { t: number; n: number }[] = [{ t: 0, n: 0 }];
  const tpAgents = await connectAgents(url, "tp", scale.throughputAgents, {
    auto: false,
    // TCP_NODELAY, as production clients set it: with Deno's client each job waited ~40 ms
    // for a delayed ACK (1 agent: 22.8 jobs/s, vs 604 without the job.accepted frame).
    client: Deno.env.get("BENCH_CLIENT") === "deno" ? "deno" : "ws",
    onOffer: (o, a) => {
      a.send({ type: "job.accepted", jobId: o.jobId });
      a.result(o.jobId, sampleReport(500 + (o.jobId % 400)));
    },
  });
  // Count acks as completions.
  const counter = setInterval(() => {
    completed = tpAgents.reduce((n, a) => n + a.completed.length, 0);
    marks.push({ t: performance.now() - t0, n: completed });
  }, 1000);
  while (completed < scale.backlog) {
    await sleep(200);
    completed = tpAgents.reduce((n, a) => n + a.completed.length, 0);
  }
  clearInterval(counter);
  const secs = (performance.now() - t0) / 1000;
  const cpu = {
    server: await cpuSeconds(serverPid) - cpu0.server,
    agents: await cpuSeconds(Deno.pid) - cpu0.agents,
    pg: await cpuSecondsOf("postgres") - cpu0.pg,
  };
  marks.push({ t: performance.now() - t0, n: completed });
  results.throughput_jobs_per_s = r2(completed / secs);
  results.throughput_ratio = r2(
    (results.throughput_jobs_per_s as number) / (results.raw_claim_complete_per_s as number),
  );
  // First vs last window: a minute each when the run is long enough, else the first and last fifth.
  const total = marks[marks.length - 1].t;
  const win = total >= 150_000 ? 60_000 : total / 5;
  const at = (t: number) => {
    const m = marks.reduce((best, x) => Math.abs(x.t - t) < Math.abs(best.t - t) ? x : best);
    return m;
  };
  const first = at(win);
  const lastStart = at(total - win);
  const last = marks[marks.length - 1];
  const firstRate = first.n / (first.t / 1000);
  const lastRate = (last.n - lastStart.n) / ((last.t - lastStart.t) / 1000);
  results.throughput_first_window_per_s = r2(firstRate);
  results.throughput_last_window_per_s = r2(lastRate);
  results.throughput_sustain_ratio = r2(lastRate / firstRate);
  results.throughput_window_s = r2(win / 1000);
  const refused = tpAgents.flatMap((a) => a.messages.filter((m) => m.type === "error"));
  if (refused.length > 0) {
    console.log(`  ${refused.length} refusals, e.g. ${JSON.stringify(refused.slice(0, 3))}`);
  }
  report("full cycle", `${results.throughput_jobs_per_s} jobs/s over ${r2(secs)} s`);
  report("  ratio to raw claim + complete", `${results.throughput_ratio} (target ≥ 0.5)`);
  const perJob = (s: number) => r2((s * 1e6) / completed);
  results.throughput_cpu_us_per_job = {
    server: perJob(cpu.server),
    agents: perJob(cpu.agents),
    postgres: perJob(cpu.pg),
  };
  results.throughput_cpu_busy = r2((cpu.server + cpu.agents + cpu.pg) / secs);
  report(
    "  CPU µs per job: server / sim agents / Postgres",
    `${perJob(cpu.server)} / ${perJob(cpu.agents)} / ${
      perJob(cpu.pg)
    } (${results.throughput_cpu_busy} of ${navigator.hardwareConcurrency} cores busy)`,
  );
  report(
    `  first vs last ${r2(win / 1000)} s window`,
    `${r2(firstRate)} → ${r2(lastRate)} jobs/s (${results.throughput_sustain_ratio}, target ≥ 0.8)`,
  );
  for (const a of tpAgents) await a.kill();
}

// ---------------------------------------------------------------- push
async function benchPush(url: string) {
  console.log(`\nPush: a new result → ${scale.streams} subscribed dashboard streams`);
  const streams: { reader: ReadableStreamDefaultReader<string>; ac: AbortController }[] = [];
  const pushLat: number[] = [];
  const waiting = new Map<number, { t0: number; left: number; done: () => void }>();
  for (let i = 0; i < scale.streams; i++) {
    const ac = new AbortController();
    const res = await fetch(`${url}/api/v1/metrics/stream`, { signal: ac.signal });
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    streams.push({ reader, ac });
    (async () => {
      let buf = "";
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          buf += value;
          let idx;
          while ((idx = buf.indexOf("\n\n")) >= 0) {
            const block = buf.slice(0, idx);
            buf = buf.slice(idx + 2);
            const data = block.split("\n").find((l) => l.startsWith("data: "));
            if (!block.includes("event: result") || !data) continue;
            const jobId = JSON.parse(data.slice(6)).jobId as number;
            const w = waiting.get(jobId);
            if (!w) continue;
            pushLat.push(performance.now() - w.t0);
            if (--w.left === 0) w.done();
          }
        }
      } catch { /* aborted */ }
    })();
  }
  await sleep(500);
  const [{ id: pushAgent }] = await sql`
    INSERT INTO eval_agents (token_id, name, region) VALUES ((SELECT min(id) FROM eval_agent_tokens), 'push', 'push')
    RETURNING id`;
  for (let i = 0; i < scale.pushSamples; i++) {
    const job = await createJob(sql, {
      workflowId: pairs[0].workflowId,
      evalSetId: pairs[0].evalSetId,
      createdBy: benchOwner,
      region: "push",
    });
    await claimJobs(sql, "push", [{ agentId: pushAgent }]);
    const all = new Promise<void>((done) =>
      waiting.set(job.id, { t0: performance.now(), left: scale.streams, done })
    );
    waiting.get(job.id)!.t0 = performance.now();
    await completeJob(sql, job.id, pushAgent, sampleReport(600));
    await Promise.race([all, sleep(10_000)]);
  }
  results.push_p50_ms = r2(percentile(pushLat, 50));
  results.push_p99_ms = r2(percentile(pushLat, 99));
  results.push_deliveries = pushLat.length;
  report(
    "result → stream p50 / p99",
    `${results.push_p50_ms} / ${results.push_p99_ms} ms (target p99 ≤ 250)`,
  );
  for (const s of streams) s.ac.abort();
}

// ---------------------------------------------------------------- fleet memory
if (want("fleet")) {
  console.log(`\nFleet: ${scale.fleet} idle agents heartbeating every 10 s on one process`);
  const settle = async (pid: number) => {
    await sleep(SETTLE_MS);
    return await rssKb(pid);
  };
  // Baseline: bare sockets on a bare Deno.upgradeWebSocket server, measured the same way.
  const port = freePort();
  const bare = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      ...(Deno.env.get("BENCH_GC_EXPERIMENT")
        ? ["--v8-flags=--expose-gc", ".vox/gc_bare.ts"]
        : ["bench/bare_ws_server.ts"]),
      String(port),
    ],
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  await waitReady(`http://127.0.0.1:${port}/`);
  const bareBefore = await settle(bare.pid);
  const bareSockets: WebSocket[] = [];
  for (let i = 0; i < scale.fleet; i += 500) {
    await Promise.all(
      Array.from({ length: Math.min(500, scale.fleet - i) }, () =>
        new Promise<void>((resolve, reject) => {
          const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
          ws.onopen = () => {
            ws.send(JSON.stringify({ type: "hello" }));
            resolve();
          };
          ws.onerror = () => reject(new Error("bare socket failed"));
          bareSockets.push(ws);
        })),
    );
  }
  const beat = setInterval(() => {
    for (const ws of bareSockets) {
      if (ws.readyState === WebSocket.OPEN) ws.send('{"type":"heartbeat","activeJobs":[]}');
    }
  }, 10_000);
  const bareAfter = await settle(bare.pid);
  clearInterval(beat);
  results.raw_rss_per_socket_kb = r2((bareAfter - bareBefore) / scale.fleet);
  for (const ws of bareSockets) ws.close();
  bare.kill("SIGKILL");
  await bare.status;
  report("bare Deno.upgradeWebSocket per socket", `${results.raw_rss_per_socket_kb} KB`);

  const server = await startServer();
  await sleep(1000);
  const before = await settle(server.pid);
  const agents = await connectAgents(server.url, "fleet", scale.fleet);
  const after = await settle(server.pid);
  results.rss_per_agent_kb = r2((after - before) / scale.fleet);
  results.rss_ratio = r2((results.rss_per_agent_kb as number) / (results.raw_rss_per_socket_kb as number));
  report("Vox agent connection per agent", `${results.rss_per_agent_kb} KB`);
  report("  ratio to bare socket", `${results.rss_ratio} (target ≤ 1.5)`);

  // last_seen: a heartbeat is visible in Postgres within the batching interval.
  const seenLat: number[] = [];
  for (let i = 0; i < 10; i++) {
    const a = agents[Math.floor(Math.random() * agents.length)];
    const id = a.registered!.agentId;
    const [before] = await sql`SELECT last_seen_at FROM eval_agents WHERE id = ${id}`;
    await sleep(20);
    const t0 = performance.now();
    a.send({ type: "heartbeat", activeJobs: [] });
    for (;;) {
      const [row] = await sql`SELECT last_seen_at FROM eval_agents WHERE id = ${id}`;
      if (row.lastSeenAt > before.lastSeenAt) break;
      await sleep(20);
    }
    seenLat.push(performance.now() - t0);
  }
  results.last_seen_visible_max_ms = r2(Math.max(...seenLat));
  const [{ n: fleetRows }] =
    await sql`SELECT count(*)::int AS n FROM eval_agents WHERE region = 'fleet' AND state = 'IDLE'`;
  results.fleet_agents_idle = fleetRows;
  report(
    "heartbeat → last_seen visible, max of 10",
    `${results.last_seen_visible_max_ms} ms (target ≤ 2000)`,
  );
  for (const a of agents) await a.kill();
  await server.stop();
}

// ---------------------------------------------------------------- reads over many results
if (want("reads")) {
  console.log(`\nReads: leaderboard and realtime over ${scale.results} results`);
  const regions = ["eu-west", "eu-central", "us-east", "us-west", "ap-south"];
  const chunk = 100_000;
  const tGen = performance.now();
  for (let done = 0; done < scale.results; done += chunk) {
    const n = Math.min(chunk, scale.results - done);
    const pair = pairs[(done / chunk) % 2];
    // Spread over the last 30 days; latencies vary by region so rankings are not flat.
    await sql`
      WITH s AS (
        SELECT g, now() - random() * interval '30 days' AS ts, ${regions}::text[] AS regions
        FROM generate_series(1, ${n}) g
      ), j AS (
        INSERT INTO eval_jobs (workflow_id, eval_set_id, region, status, attempts, created_at, finished_at)
        SELECT ${pair.workflowId}, ${pair.evalSetId}, regions[1 + g % 5], 'completed', 1, ts, ts FROM s
        RETURNING id, region, finished_at
      )
      INSERT INTO eval_results (job_id, workflow_id, eval_set_id, provider_id, region, is_mainline,
        response_latency_median, response_latency_sd, response_latency_p90, response_latency_n,
        interrupt_latency_median, interrupt_latency_sd, interrupt_latency_p90, interrupt_latency_n,
        network_resilience, naturalness, noise_reduction, created_at)
      SELECT id, ${pair.workflowId}, ${pair.evalSetId}, ${pair.providerId}, region, true,
             400 + random() * 800, 30, 1300, 5, 200 + random() * 400, 20, 700, 3,
             60 + random() * 40, 50 + random() * 50, 40 + random() * 60, finished_at
      FROM j`;
  }
  results.results_generate_s = r2((performance.now() - tGen) / 1000);
  const tRoll = performance.now();
  await rollUpResults(sql, 100_000);
  results.rollup_build_s = r2((performance.now() - tRoll) / 1000);
  await sql`VACUUM ANALYZE eval_results`;
  await sql`VACUUM ANALYZE eval_rollups`;
  report(
    "generated results / built rollups",
    `${results.results_generate_s} s / ${results.rollup_build_s} s`,
  );

  const time = async (fn: () => Promise<unknown>, n: number) => {
    const out: number[] = [];
    for (let i = 0; i < n + 3; i++) {
      const t0 = performance.now();
      await fn();
      if (i >= 3) out.push(performance.now() - t0);
    }
    return out;
  };
  const now = new Date();
  const dayAgo = new Date(now.getTime() - 86_400_000);
  const lb = await time(() => leaderboard(sql, { days: 30 }), 100);
  const lbRead = await time(() => leaderboard(sql, { days: 30, onRead: true }), quick ? 10 : 5);
  const rt = await time(() => realtime(sql, { from: dayAgo, to: now, bucket: "hour" }), 100);
  const rtRead = await time(() => realtime(sql, { from: dayAgo, to: now, bucket: "hour", onRead: true }), 10);
  results.leaderboard_p50_ms = r2(percentile(lb, 50));
  results.leaderboard_p99_ms = r2(percentile(lb, 99));
  results.leaderboard_on_read_p50_ms = r2(percentile(lbRead, 50));
  results.leaderboard_speedup = r2(percentile(lbRead, 50) / percentile(lb, 50));
  results.realtime_p50_ms = r2(percentile(rt, 50));
  results.realtime_p99_ms = r2(percentile(rt, 99));
  results.realtime_on_read_p50_ms = r2(percentile(rtRead, 50));
  results.realtime_speedup = r2(percentile(rtRead, 50) / percentile(rt, 50));
  report(
    "leaderboard (30 days) p50 / p99",
    `${results.leaderboard_p50_ms} / ${results.leaderboard_p99_ms} ms (target p99 ≤ 20)`,
  );
  report(
    "  computed on read p50",
    `${results.leaderboard_on_read_p50_ms} ms (${results.leaderboard_speedup}× slower)`,
  );
  report(
    "realtime (24 h, hourly, all series) p50 / p99",
    `${results.realtime_p50_ms} / ${results.realtime_p99_ms} ms (target p99 ≤ 20)`,
  );
  report(
    "  computed on read p50",
    `${results.realtime_on_read_p50_ms} ms (${results.realtime_speedup}× slower)`,
  );
}

// ---------------------------------------------------------------- HTTP
if (want("http")) {
  const [{ n: resultCount }] = await sql`SELECT count(*)::int AS n FROM eval_results`;
  console.log(
    `\nHTTP: ${scale.httpConcurrency} clients for ${
      scale.httpMs / 1000
    } s per route; pages over ${resultCount} results`,
  );
  // The general rate limit would answer 429 long before a load test ends; its bookkeeping
  // (one upsert per request) still runs, as it does in production.
  await sql`UPDATE system_config SET value = ${sql.json({ max: 1e9, windowSeconds: 900 })}
            WHERE key IN ('rate_limit.general', 'rate_limit.auth')`;
  const job = await createJob(sql, {
    workflowId: pairs[0].workflowId,
    evalSetId: pairs[0].evalSetId,
    createdBy: benchOwner,
    region: "http",
  });
  const { key } = await createApiKey(sql, owner[0].id as number, { name: "bench" });
  const server = await startServer();
  const barePort = freePort();
  const bare = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "bench/bare_hono_server.ts", String(barePort)],
    cwd: ROOT,
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  await waitReady(`http://127.0.0.1:${barePort}/job`);
  const opts = { concurrency: scale.httpConcurrency, ms: scale.httpMs };
  const http: Record<string, unknown> = {};
  http.bare_hono = await load(`http://127.0.0.1:${barePort}/job`, opts);
  http.job_by_api_key = await load(`${server.url}/api/v1/jobs/${job.id}`, {
    ...opts,
    headers: { authorization: `Bearer ${key}` },
  });
  http.leaderboard_json = await load(`${server.url}/api/v1/metrics/leaderboard`, opts);
  for (
    const [label, k] of [
      ["bare Hono JSON route", "bare_hono"],
      ["GET /api/v1/jobs/:id with an API key", "job_by_api_key"],
      ["GET /api/v1/metrics/leaderboard", "leaderboard_json"],
    ] as const
  ) {
    const f = http[k] as Awaited<ReturnType<typeof load>>;
    report(
      label,
      `${f.requests_per_s ?? "n/a"} req/s, p99 ${f.p99_ms ?? "n/a"} ms${
        f.non_200 ? ` (${f.non_200} not 200)` : ""
      }`,
    );
  }
  for (const page of ["/leaderboard", "/realtime"]) {
    const t = await ttfb(`${server.url}${page}`, {
      concurrency: scale.httpConcurrency,
      requests: quick ? 200 : 1000,
    });
    http[`ttfb_${page.slice(1)}`] = t;
    report(`${page} time to first byte p50 / p99`, `${t.p50_ms ?? "n/a"} / ${t.p99_ms ?? "n/a"} ms`);
  }
  const js: Record<string, unknown> = {};
  for (const page of ["/", "/realtime", "/leaderboard", "/dive", "/agents", "/run-your-own", "/login"]) {
    const f = await pageJavaScript(`${server.url}${page}`);
    js[page] = f;
    report(
      `JavaScript on ${page}`,
      `${r2(f.gzip_bytes / 1024)} KB gzip (${f.files} files, ${r2(f.bytes / 1024)} KB raw)`,
    );
  }
  http.page_javascript = js;
  results.http = http;
  bare.kill("SIGTERM");
  await bare.status;
  await server.stop();
}

// ---------------------------------------------------------------- targets as ratios
{
  const num = (v: unknown) => typeof v === "number" && Number.isFinite(v) ? v : null;
  const peer = (name: string, k: string) =>
    num((results.peers as Record<string, Record<string, unknown>>)?.[name]?.[k]);
  const http = results.http as Record<string, Record<string, unknown>> | undefined;
  const div = (a: number | null, b: number | null) => a !== null && b !== null && b > 0 ? r2(a / b) : null;
  const ratios: Record<string, { value: number | null; goal: string }> = {
    dispatch_p50_over_raw_notify_claim: {
      value: div(num(results.dispatch_p50_ms), num(results.raw_notify_claim_p50_ms)),
      goal: "overhead of Vox's WebSocket hop over insert+NOTIFY→claim (lower is better)",
    },
    throughput_over_raw_claim_complete: {
      value: div(num(results.throughput_jobs_per_s), num(results.raw_claim_complete_per_s)),
      goal: "≥ 0.5",
    },
    dispatch_p50_over_graphile_worker: {
      value: div(num(results.dispatch_p50_ms), peer("graphile_worker", "dispatch_p50_ms")),
      goal: "≤ 1",
    },
    dispatch_p50_over_pg_boss: {
      value: div(num(results.dispatch_p50_ms), peer("pg_boss", "dispatch_p50_ms")),
      goal: "≤ 1",
    },
    throughput_over_pg_boss: {
      value: div(num(results.throughput_jobs_per_s), peer("pg_boss", "jobs_per_s")),
      goal: "≥ 1",
    },
    throughput_over_graphile_worker: {
      value: div(num(results.throughput_jobs_per_s), peer("graphile_worker", "jobs_per_s")),
      goal: "≥ 1 (not a stated target)",
    },
    job_route_over_bare_hono: {
      value: div(num(http?.job_by_api_key?.requests_per_s), num(http?.bare_hono?.requests_per_s)),
      goal: "≥ 0.3",
    },
    leaderboard_json_over_bare_hono: {
      value: div(num(http?.leaderboard_json?.requests_per_s), num(http?.bare_hono?.requests_per_s)),
      goal: "for reference",
    },
  };
  results.ratios = ratios;
  console.log("\nTargets as ratios (same run)");
  for (const [k, r] of Object.entries(ratios)) {
    report(
      k,
      r.value === null ? "n/a (a phase it needs did not run or measured nothing)" : `${r.value} (${r.goal})`,
    );
  }
  // A short run may not fill every window: say which figures could not be computed instead of NaN.
  const missing: string[] = [];
  const scrub = (o: Record<string, unknown>, path: string) => {
    for (const [k, v] of Object.entries(o)) {
      if (typeof v === "number" && !Number.isFinite(v)) {
        o[k] = null;
        missing.push(path + k);
      } else if (v && typeof v === "object" && !Array.isArray(v)) {
        scrub(v as Record<string, unknown>, `${path}${k}.`);
      }
    }
  };
  scrub(results, "");
  if (missing.length > 0) {
    results.not_computed = missing;
    console.log(`\n  not computed in this run (too short or a phase skipped): ${missing.join(", ")}`);
  }
}

await sql.end();
{
  const admin = createSql(baseUrl, { max: 1 });
  await admin.unsafe(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
  await admin.end();
}
// A partial run (BENCH_ONLY) must not replace the full figures scripts read.
const out = only ? "results.partial.json" : "results.json";
await Deno.writeTextFile(new URL(`./${out}`, import.meta.url), JSON.stringify(results, null, 2) + "\n");
console.log(`\nWrote bench/${out}`);
Deno.exit(0);
