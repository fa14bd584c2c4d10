// Two real server processes on one database: cross-process dispatch, schedules firing once
// across both, and restarts that lose no job.
import assert from "node:assert/strict";
import { createJob } from "../lib/queue.ts";
import { createSchedule } from "../lib/schedules.ts";
import { SimAgent } from "../bench/sim_agent.ts";
import { createTestDatabase } from "./_db.ts";
import { agentToken, insertEvalPair, type ServerProcess, spawnServer } from "./_orch.ts";
import { eventually } from "./_wait.ts";

const db = await createTestDatabase();
const sql = db.sql;
// Polling far slower than the tests' waits: jobs can only arrive through NOTIFY.
const env = { VOX_DISPATCH_POLL_MS: "600000" };
const servers: ServerProcess[] = await Promise.all([
  spawnServer(db.url, { env }),
  spawnServer(db.url, { env }),
]);
Deno.test.afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop("SIGTERM")));
  await db.close();
});
const pair = await insertEvalPair(sql);
// One basic owner holds the 40 schedules below: its fair-use cap on pending jobs (20) would
// skip firings that this file counts, so it is raised here.
await sql`UPDATE plan_limits SET max_pending_jobs = 1000 WHERE owner_kind = 'basic'`;

Deno.test("a job created elsewhere reaches an agent on either process through NOTIFY", async () => {
  const token = await agentToken(sql, "xproc");
  const onA = await SimAgent.connect({ baseUrl: servers[0].baseUrl, token, name: "on-a", region: "xproc" });
  const onB = await SimAgent.connect({
    baseUrl: servers[1].baseUrl,
    token,
    name: "on-b",
    region: "xproc",
    capacity: 2,
  });
  try {
    const jobs = [];
    for (let i = 0; i < 30; i++) jobs.push(await createJob(sql, { ...pair, region: "xproc" }));
    await eventually(async () => {
      const [{ n }] =
        await sql`SELECT count(*)::int AS n FROM eval_jobs WHERE region = 'xproc' AND status = 'completed'`;
      return n === 30;
    }, "30 jobs completed");
    const offered = [...onA.offers, ...onB.offers].map((o) => o.jobId).sort((a, b) => a - b);
    assert.deepEqual(offered, jobs.map((j) => j.id));
    assert.ok(onA.offers.length > 0 && onB.offers.length > 0, "both processes dispatched");
    const servedBy =
      await sql`SELECT DISTINCT server_id FROM eval_agents WHERE region = 'xproc' AND server_id IS NOT NULL`;
    assert.equal(servedBy.length, 2);
  } finally {
    await onA.kill();
    await onB.kill();
  }
});

Deno.test("every schedule fires exactly once per due time across both processes", async () => {
  const once: { id: number }[] = [];
  const recurring: { id: number }[] = [];
  for (let i = 0; i < 20; i++) {
    once.push(
      await createSchedule(sql, {
        ...pair,
        region: "sched-x",
        scheduleType: "once",
        runAt: new Date(Date.now() - 1000),
      }),
    );
    recurring.push(
      await createSchedule(sql, {
        ...pair,
        region: "sched-x",
        scheduleType: "recurring",
        cronExpression: "*/10 * * * *",
      }),
    );
  }
  const rIds = recurring.map((s) => s.id);
  await eventually(async () => {
    const [{ n }] = await sql`SELECT count(*)::int AS n FROM eval_schedules WHERE id = ANY(${
      once.map((s) => s.id)
    }::bigint[]) AND run_count = 1`;
    return n === 20;
  }, "once schedules fired");
  // Two more due times for every recurring schedule, as if twenty minutes passed.
  for (const minutesAgo of [20, 10]) {
    await sql`UPDATE eval_schedules SET next_run_at = date_trunc('minute', now()) - make_interval(mins => ${minutesAgo})
              WHERE id = ANY(${rIds}::bigint[])`;
    await eventually(async () => {
      const [{ n }] = await sql`SELECT count(*)::int AS n FROM eval_schedules
                                WHERE id = ANY(${rIds}::bigint[]) AND next_run_at > now()`;
      return n === 20;
    }, "recurring schedules fired");
  }
  const [{ jobs, firings }] = await sql`
    SELECT count(*)::int AS jobs, count(DISTINCT (schedule_id, scheduled_for))::int AS firings
    FROM eval_jobs WHERE region = 'sched-x'`;
  assert.equal(jobs, 20 + 40);
  assert.equal(firings, 60);
  const runCounts =
    await sql`SELECT DISTINCT run_count FROM eval_schedules WHERE id = ANY(${rIds}::bigint[])`;
  assert.deepEqual(runCounts.map((r) => r.runCount), [2]);
});

Deno.test(
  "killing a server with jobs in flight loses none; it restarts and everything completes once",
  async () => {
    const token = await agentToken(sql, "crash");
    const agents: SimAgent[] = [];
    for (let i = 0; i < 4; i++) {
      agents.push(
        await SimAgent.connect({
          baseUrl: servers[0].baseUrl,
          token,
          name: `crash-${i}`,
          region: "crash",
          resultDelayMs: 700,
          reconnect: true,
        }),
      );
    }
    const jobs = [];
    for (let i = 0; i < 12; i++) jobs.push(await createJob(sql, { ...pair, region: "crash" }));
    await eventually(() => agents.every((a) => a.active.size > 0), "every agent is running a job");
    await servers[0].stop("SIGKILL");
    // Jobs created while the process is down wait in Postgres.
    for (let i = 0; i < 4; i++) jobs.push(await createJob(sql, { ...pair, region: "crash" }));
    servers[0] = await spawnServer(db.url, { port: servers[0].port, env });
    await eventually(
      async () => {
        const [{ n }] =
          await sql`SELECT count(*)::int AS n FROM eval_jobs WHERE region = 'crash' AND status = 'completed'`;
        return n === 16;
      },
      "all 16 jobs completed after the restart",
      20_000,
    ).catch(async (e) => {
      console.log(
        await sql`SELECT id, status, attempts, agent_id, error FROM eval_jobs WHERE region = 'crash' ORDER BY id`,
      );
      console.log(await sql`SELECT id, name, state, server_id FROM eval_agents WHERE region = 'crash'`);
      console.log(
        agents.map((a) => [a.closeInfo, a.registered?.agentId, [...a.active], a.socket.readyState]),
      );
      throw e;
    });
    const [{ results, distinctJobs }] = await sql`
    SELECT count(*)::int AS results, count(DISTINCT job_id)::int AS distinct_jobs
    FROM eval_results WHERE region = 'crash'`;
    assert.equal(results, 16);
    assert.equal(distinctJobs, 16);
    for (const a of agents) await a.kill();
  },
);
