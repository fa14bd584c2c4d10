import assert from "node:assert/strict";
import { createAgentToken } from "../lib/agent_tokens.ts";
import { completeJob, completeJobs } from "../lib/job_completer.ts";
import type { Notification } from "../lib/notify.ts";
import { cancelJob, claimJobs, createJob, getJob, reapStaleJobs } from "../lib/queue.ts";
import { sampleReport, SimAgent } from "../bench/sim_agent.ts";
import { createTestDatabase, setSetting } from "./_db.ts";
import { createTestApp } from "./_app.ts";
import { apiKeyFor } from "./_auth.ts";
import { agentToken, insertEvalPair, startOrchServer } from "./_orch.ts";
import { eventually } from "./_wait.ts";

const db = await createTestDatabase();
const sql = db.sql;
Deno.test.afterAll(() => db.close());
// The token the agents rows below hang on (agents made by hand, not through a socket).
const tokenId = (await createAgentToken(sql, { name: "orch jobs", region: "any" })).info.id;

Deno.test(
  "20 agents racing for 200 jobs: each completed exactly once, none crossed regions",
  async () => {
    // A database of its own: the counts below are over whole tables.
    await using own = await createTestDatabase();
    const sql = own.sql;
    const server = await startOrchServer(sql);
    const pair = await insertEvalPair(sql);
    const regions = ["eu-west", "us-east"];
    const tokens = Object.fromEntries(
      await Promise.all(regions.map(async (r) => [r, await agentToken(sql, r)])),
    );
    const agents: SimAgent[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const region = regions[i % 2];
        agents.push(
          await SimAgent.connect({
            baseUrl: server.baseUrl,
            token: tokens[region],
            name: `racer-${i}`,
            region,
          }),
        );
      }
      const created = await Promise.all(
        Array.from({ length: 200 }, (_, i) => createJob(sql, { ...pair, region: regions[i % 2] })),
      );
      const ids = new Set(created.map((j) => j.id));
      await eventually(async () => {
        const [{ n }] = await sql`SELECT count(*)::int AS n FROM eval_jobs WHERE status = 'completed'`;
        return n === 200;
      }, "all 200 jobs completed");
      const offered = agents.flatMap((a) =>
        a.offers.map((o) => ({ jobId: o.jobId, region: o.region, agent: a }))
      );
      assert.equal(offered.length, 200, "each job was offered exactly once");
      assert.equal(new Set(offered.map((o) => o.jobId)).size, 200);
      for (const o of offered) {
        assert.ok(ids.has(o.jobId));
        assert.equal(o.region, o.agent.opts.region, `job ${o.jobId} crossed regions`);
      }
      const [{ results, attempts }] = await sql`
      SELECT (SELECT count(*)::int FROM eval_results) AS results,
             (SELECT max(attempts)::int FROM eval_jobs) AS attempts`;
      assert.equal(results, 200);
      assert.equal(attempts, 1);
      const cross = await sql`
      SELECT count(*)::int AS n FROM eval_jobs j JOIN eval_agents a ON a.id = j.agent_id WHERE a.region <> j.region`;
      assert.equal(cross[0].n, 0);
    } finally {
      for (const a of agents) await a.kill();
      await server.stop();
    }
  },
);

Deno.test("claimJobs() takes higher priority first, then the oldest, and only its region", async () => {
  const pair = await insertEvalPair(sql);
  const [{ id: agentId }] = await sql`
    INSERT INTO eval_agents (token_id, name, region) VALUES (${tokenId}, 'prio', 'prio-a') RETURNING id`;
  const low1 = await createJob(sql, { ...pair, region: "prio-a" });
  const other = await createJob(sql, { ...pair, region: "prio-b", priority: 9 });
  const high = await createJob(sql, { ...pair, region: "prio-a", priority: 5 });
  const low2 = await createJob(sql, { ...pair, region: "prio-a" });
  const order: number[] = [];
  for (let i = 0; i < 4; i++) {
    const offers = await claimJobs(sql, "prio-a", [{ agentId }]);
    order.push(...offers.map((o) => o.message.jobId));
  }
  assert.deepEqual(order, [high.id, low1.id, low2.id]);
  assert.equal((await getJob(sql, other.id))?.status, "pending");
});

Deno.test("a duplicate result stores nothing new and is acknowledged as duplicate", async () => {
  const pair = await insertEvalPair(sql);
  const token = await agentToken(sql, "dup");
  const server = await startOrchServer(sql);
  const agent = await SimAgent.connect({
    baseUrl: server.baseUrl,
    token,
    name: "dup",
    region: "dup",
    auto: false,
  });
  try {
    const job = await createJob(sql, { ...pair, region: "dup" });
    await agent.seen((m) => m.type === "job.offer" && m.jobId === job.id);
    agent.send({ type: "job.accepted", jobId: job.id });
    agent.send({ type: "job.result", jobId: job.id, report: sampleReport(700) });
    const first = await agent.waitFor((m) => m.type === "job.ack" && m.jobId === job.id);
    agent.send({ type: "job.result", jobId: job.id, report: sampleReport(999) });
    const second = await agent.waitFor((m) => m.type === "job.ack" && m.jobId === job.id);
    assert.deepEqual(first, { type: "job.ack", jobId: job.id, status: "completed", duplicate: false });
    assert.deepEqual(second, { type: "job.ack", jobId: job.id, status: "completed", duplicate: true });
    const rows = await sql`SELECT response_latency_median FROM eval_results WHERE job_id = ${job.id}`;
    assert.equal(rows.length, 1);
    assert.equal(rows[0].responseLatencyMedian, 700);
  } finally {
    await agent.kill();
    await server.stop();
  }
});

Deno.test(
  "a result is linked to workflow, eval set, provider, region and schedule, with the mainline snapshot",
  async () => {
    const pair = await insertEvalPair(sql, { mainline: true });
    const [agent] = await sql`
    INSERT INTO eval_agents (token_id, name, region)
    VALUES (${tokenId}, 'linker', 'link') RETURNING id`;
    const [sched] = await sql`
    INSERT INTO eval_schedules (workflow_id, eval_set_id, region, schedule_type, run_at, created_by)
    VALUES (${pair.workflowId}, ${pair.evalSetId}, 'link', 'once', now(), ${pair.userId}) RETURNING id`;
    const job = await createJob(sql, { ...pair, region: "link", scheduleId: sched.id });
    await claimJobs(sql, "link", [{ agentId: agent.id }]);
    const outcome = await completeJob(sql, job.id, agent.id, sampleReport(640));
    assert.ok(outcome.ok && !outcome.duplicate);
    const [r] = await sql`SELECT * FROM eval_results WHERE job_id = ${job.id}`;
    assert.equal(r.workflowId, pair.workflowId);
    assert.equal(r.evalSetId, pair.evalSetId);
    assert.equal(r.providerId, pair.providerId);
    assert.equal(r.region, "link");
    assert.equal(r.scheduleId, sched.id);
    assert.equal(r.agentId, agent.id);
    assert.equal(r.isMainline, true);
    assert.equal(r.responseLatencyMedian, 640);
    assert.equal(r.responseLatencyN, 3);
    assert.deepEqual(r.methods, { response_latency: "sim/1" });
  },
);

Deno.test(
  "completeJobs() stores a batch once: duplicates and jobs not held store nothing, next jobs stay in region",
  async () => {
    const pair = await insertEvalPair(sql, { mainline: true });
    const agents = await sql`
      INSERT INTO eval_agents (token_id, name, region)
      SELECT ${tokenId}::bigint, 'batch-' || g, 'batch' FROM generate_series(1, 3) g
      RETURNING id`;
    const [other] = await sql`
      INSERT INTO eval_agents (token_id, name, region)
      VALUES (${tokenId}, 'batch-x', 'batch-x') RETURNING id`;
    const [a1, a2, a3] = agents.map((a) => a.id as number);
    const jobs = [];
    for (let i = 0; i < 3; i++) jobs.push(await createJob(sql, { ...pair, region: "batch" }));
    const foreign = await createJob(sql, { ...pair, region: "batch-x" });
    const offers = await claimJobs(sql, "batch", [{ agentId: a1 }, { agentId: a2 }, { agentId: a3 }]);
    assert.equal(offers.length, 3);
    const held = new Map(offers.map((o) => [o.agentId, o.message.jobId]));
    // One more pending job in the region: only one of the two agents asking gets a next job.
    const spare = await createJob(sql, { ...pair, region: "batch" });
    const events: Notification[] = [];
    const items = [
      { jobId: held.get(a1)!, agentId: a1, report: sampleReport(610), next: true },
      { jobId: held.get(a2)!, agentId: a2, report: sampleReport(620), next: true },
      // a3 sends a result for a job it does not hold (a1's): refused, nothing stored.
      { jobId: held.get(a1)!, agentId: a3, report: sampleReport(999), next: true },
    ];
    const out = await completeJobs(sql, "batch", items, (e) => events.push(...e));
    assert.ok(out[0].stored && out[1].stored);
    assert.equal(out[2].stored, false);
    const nexts = out.flatMap((o) => o.stored && o.offer ? [o.offer] : []);
    assert.equal(nexts.length, 1, "one spare job, one offer");
    assert.equal(nexts[0].message.jobId, spare.id);
    assert.equal(nexts[0].message.region, "batch");
    assert.equal((await getJob(sql, foreign.id))!.status, "pending", "another region's job is never claimed");
    assert.equal(events.filter((e) => e.channel === "vox_job_events").length, 2);
    assert.equal(events.filter((e) => e.channel === "vox_results").length, 2);
    // The same batch again (a resend after a lost ack): nothing new is stored or claimed.
    const again = await completeJobs(sql, "batch", items.slice(0, 2), () => {});
    assert.deepEqual(again, [{ stored: false }, { stored: false }]);
    const dup = await completeJob(sql, items[0].jobId, a1, sampleReport(610));
    assert.ok(dup.ok && dup.duplicate);
    const [{ results }] = await sql`
      SELECT count(*)::int AS results FROM eval_results WHERE job_id = ANY(${
      jobs.map((j) => j.id)
    }::bigint[])`;
    assert.equal(results, 2);
    const states = await sql`
      SELECT id, state, last_job_id FROM eval_agents WHERE id = ANY(${[
      a1,
      a2,
      a3,
      other.id,
    ]}::bigint[]) ORDER BY id`;
    const byId = new Map(states.map((r) => [r.id as number, r]));
    const nextAgent = nexts[0].agentId;
    const idleAgent = nextAgent === a1 ? a2 : a1;
    assert.equal(byId.get(nextAgent)!.state, "OCCUPIED");
    assert.equal(byId.get(nextAgent)!.lastJobId, spare.id);
    assert.equal(byId.get(idleAgent)!.state, "IDLE");
    assert.equal(byId.get(a3)!.state, "OCCUPIED", "a3 still runs its own job");
  },
);

Deno.test(
  "a crash before a batch commits stores nothing: the jobs stay running and their resend is stored once",
  async () => {
    const pair = await insertEvalPair(sql);
    const [agent] = await sql`
      INSERT INTO eval_agents (token_id, name, region)
      VALUES (${tokenId}, 'crash', 'crash') RETURNING id`;
    const job = await createJob(sql, { ...pair, region: "crash" });
    await claimJobs(sql, "crash", [{ agentId: agent.id }]);
    const item = { jobId: job.id, agentId: agent.id as number, report: sampleReport(650), next: false };
    // The statement runs inside a transaction that never commits, as when the process dies.
    await sql.begin(async (tx) => {
      const out = await completeJobs(tx, "crash", [item], () => {});
      assert.ok(out[0].stored);
      await tx`SELECT 1/0`;
    }).catch(() => {});
    assert.equal((await getJob(sql, job.id))!.status, "running");
    const [{ n }] = await sql`SELECT count(*)::int AS n FROM eval_results WHERE job_id = ${job.id}`;
    assert.equal(n, 0);
    const [first, second] = await Promise.all([
      completeJobs(sql, "crash", [item], () => {}),
      completeJobs(sql, "crash", [item], () => {}),
    ]);
    assert.equal([first[0].stored, second[0].stored].filter(Boolean).length, 1, "stored exactly once");
    assert.equal((await getJob(sql, job.id))!.status, "completed");
  },
);

Deno.test("cancel works while pending and is refused once running", async () => {
  const pair = await insertEvalPair(sql);
  const [agent] = await sql`
    INSERT INTO eval_agents (token_id, name, region)
    VALUES (${tokenId}, 'canceller', 'cancel') RETURNING id`;
  const a = await createJob(sql, { ...pair, region: "cancel" });
  assert.deepEqual(await cancelJob(sql, a.id), { cancelled: true, status: "cancelled" });
  assert.deepEqual(
    await claimJobs(sql, "cancel", [{ agentId: agent.id }]),
    [],
    "a cancelled job is never claimed",
  );
  const b = await createJob(sql, { ...pair, region: "cancel" });
  await claimJobs(sql, "cancel", [{ agentId: agent.id }]);
  assert.deepEqual(await cancelJob(sql, b.id), { cancelled: false, status: "running" });
  assert.equal(await cancelJob(sql, 987654321), null);
});

Deno.test(
  "an agent killed mid-job: the job is requeued, retried by another agent and completes",
  async () => {
    await setSetting(sql, "jobs.heartbeat_timeout_seconds", 1);
    await setSetting(sql, "agents.heartbeat_interval_seconds", 0.2);
    const server = await startOrchServer(sql);
    const pair = await insertEvalPair(sql);
    const token = await agentToken(sql, "fault");
    const doomed = await SimAgent.connect({
      baseUrl: server.baseUrl,
      token,
      name: "doomed",
      region: "fault",
      auto: false,
    });
    let survivor: SimAgent | null = null;
    try {
      const job = await createJob(sql, { ...pair, region: "fault" });
      await doomed.seen((m) => m.type === "job.offer" && m.jobId === job.id);
      doomed.send({ type: "job.accepted", jobId: job.id });
      await doomed.kill();
      survivor = await SimAgent.connect({
        baseUrl: server.baseUrl,
        token,
        name: "survivor",
        region: "fault",
      });
      await eventually(
        async () => (await getJob(sql, job.id))?.status === "completed",
        "the retried job completed",
      );
      const done = await getJob(sql, job.id);
      assert.equal(done?.attempts, 2);
      assert.equal(done?.agentId, survivor.registered!.agentId);
      assert.deepEqual(survivor.offers.map((o) => [o.jobId, o.attempt]), [[job.id, 2]]);
    } finally {
      await survivor?.kill();
      await server.stop();
      await setSetting(sql, "jobs.heartbeat_timeout_seconds", 30);
      await setSetting(sql, "agents.heartbeat_interval_seconds", 10);
    }
  },
);

Deno.test("a job that exhausts its attempts ends failed with the reason", async () => {
  await setSetting(sql, "jobs.heartbeat_timeout_seconds", 0.5);
  await setSetting(sql, "agents.heartbeat_interval_seconds", 0.1);
  const server = await startOrchServer(sql);
  const pair = await insertEvalPair(sql);
  const token = await agentToken(sql, "exhaust");
  try {
    const job = await createJob(sql, { ...pair, region: "exhaust", maxAttempts: 2 });
    for (let i = 0; i < 2; i++) {
      const a = await SimAgent.connect({
        baseUrl: server.baseUrl,
        token,
        name: `silent-${i}`,
        region: "exhaust",
        auto: false,
      });
      await a.seen((m) => m.type === "job.offer" && m.jobId === job.id);
      await a.kill();
    }
    const failed = await eventually(async () => {
      const j = await getJob(sql, job.id);
      return j?.status === "failed" ? j : null;
    }, "the job failed");
    assert.equal(failed.attempts, 2);
    assert.match(failed.error ?? "", /stopped heartbeating during attempt 2 of 2; no attempts left/);
    assert.ok(failed.finishedAt);
  } finally {
    await server.stop();
    await setSetting(sql, "jobs.heartbeat_timeout_seconds", 30);
    await setSetting(sql, "agents.heartbeat_interval_seconds", 10);
  }
});

Deno.test("job.failed retries while attempts remain; retryable:false fails at once", async () => {
  const server = await startOrchServer(sql);
  const pair = await insertEvalPair(sql);
  const token = await agentToken(sql, "failing");
  const agent = await SimAgent.connect({
    baseUrl: server.baseUrl,
    token,
    name: "failing",
    region: "failing",
    auto: false,
  });
  try {
    const job = await createJob(sql, { ...pair, region: "failing" });
    await agent.seen((m) => m.type === "job.offer" && m.jobId === job.id);
    agent.send({ type: "job.failed", jobId: job.id, reason: "page unreachable" });
    const again = await eventually(
      () => agent.offers.find((o) => o.jobId === job.id && o.attempt === 2),
      "re-offer",
    );
    assert.equal(again.attempt, 2);
    assert.ok(
      agent.messages.some((m) => m.type === "job.ack" && m.jobId === job.id && m.status === "pending"),
    );
    agent.send({ type: "job.failed", jobId: job.id, reason: "selector #start not found", retryable: false });
    const ack2 = await agent.waitFor((m) => m.type === "job.ack" && m.status === "failed");
    assert.equal((ack2 as { jobId: number }).jobId, job.id);
    const j = await getJob(sql, job.id);
    assert.equal(j?.status, "failed");
    assert.equal(j?.error, "selector #start not found");
  } finally {
    await agent.kill();
    await server.stop();
  }
});

Deno.test("a rejected offer goes back to the queue without using an attempt", async () => {
  const server = await startOrchServer(sql);
  const pair = await insertEvalPair(sql);
  const token = await agentToken(sql, "reject");
  const picky = await SimAgent.connect({
    baseUrl: server.baseUrl,
    token,
    name: "picky",
    region: "reject",
    auto: false,
  });
  try {
    const job = await createJob(sql, { ...pair, region: "reject" });
    await picky.seen((m) => m.type === "job.offer" && m.jobId === job.id);
    picky.send({ type: "job.rejected", jobId: job.id, reason: "busy" });
    const helper = await SimAgent.connect({
      baseUrl: server.baseUrl,
      token,
      name: "helper",
      region: "reject",
    });
    await eventually(
      async () => (await getJob(sql, job.id))?.status === "completed",
      "completed after the rejection",
    );
    assert.equal((await getJob(sql, job.id))?.attempts, 1);
    await helper.kill();
  } finally {
    await picky.kill();
    await server.stop();
  }
});

Deno.test(
  "with the default 30 s timeout a silent agent's job is released after 30 s, not before",
  async () => {
    const pair = await insertEvalPair(sql);
    const [agent] = await sql`
    INSERT INTO eval_agents (token_id, name, region)
    VALUES (${tokenId}, 'default-timeout', 'dflt') RETURNING id`;
    const job = await createJob(sql, { ...pair, region: "dflt" });
    await claimJobs(sql, "dflt", [{ agentId: agent.id }]);
    await sql`UPDATE eval_jobs SET heartbeat_at = now() - interval '29 seconds' WHERE id = ${job.id}`;
    assert.deepEqual((await reapStaleJobs(sql)).filter((r) => r.id === job.id), []);
    await sql`UPDATE eval_jobs SET heartbeat_at = now() - interval '31 seconds' WHERE id = ${job.id}`;
    const reaped = (await reapStaleJobs(sql)).filter((r) => r.id === job.id);
    assert.deepEqual(reaped, [{ id: job.id, status: "pending", previousAgentId: agent.id, region: "dflt" }]);
    // The reaper runs every 2 s and heartbeats reach Postgres within 1 s: released ≤ 33 s after the last beat.
  },
);

Deno.test(
  "progress from the agent reaches the job's live stream; the stream ends when the job does",
  async () => {
    const server = await startOrchServer(sql);
    const pair = await insertEvalPair(sql);
    const token = await agentToken(sql, "progress");
    const agent = await SimAgent.connect({
      baseUrl: server.baseUrl,
      token,
      name: "talker",
      region: "progress",
      auto: false,
    });
    try {
      const job = await createJob(sql, { ...pair, region: "progress" });
      await agent.seen((m) => m.type === "job.offer" && m.jobId === job.id);
      const { app } = await createTestApp(sql, { orchestrator: server.orch });
      const res = await app.request(`/api/v1/jobs/${job.id}/events`, {
        headers: { authorization: `Bearer ${await apiKeyFor(sql, pair.userId)}` },
      });
      assert.equal(res.status, 200);
      const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      let text = "";
      while (!text.includes("event: status")) text += (await reader.read()).value ?? "";
      agent.send({
        type: "job.progress",
        jobId: job.id,
        step: 2,
        totalSteps: 5,
        message: "turn 1/3",
        turn: { kind: "response", latency_ms: 612, ok: true },
      });
      while (!text.includes("turn 1/3")) text += (await reader.read()).value ?? "";
      const progress = text.split("\n\n").find((b) => b.startsWith("event: progress"))!;
      const data = JSON.parse(progress.split("\n").find((l) => l.startsWith("data: "))!.slice(6));
      assert.deepEqual(data.progress, {
        step: 2,
        totalSteps: 5,
        message: "turn 1/3",
        turn: { kind: "response", latency_ms: 612, ok: true },
      });
      agent.result(job.id);
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += value;
      }
      assert.match(text, /"status":"completed"/);
      const [row] = await sql`SELECT progress FROM eval_jobs WHERE id = ${job.id}`;
      assert.equal(row.progress, null, "progress is cleared when the job completes");
    } finally {
      await agent.kill();
      await server.stop();
    }
  },
);
