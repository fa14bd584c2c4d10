import assert from "node:assert/strict";
import { createSql } from "../lib/db.ts";
import { nextFiring } from "../lib/cron.ts";
import {
  createSchedule,
  getSchedule,
  runScheduleNow,
  tickSchedules,
  updateSchedule,
} from "../lib/schedules.ts";
import { createTestDatabase } from "./_db.ts";
import { insertEvalPair } from "./_orch.ts";

const db = await createTestDatabase();
const sql = db.sql;
Deno.test.afterAll(() => db.close());
const pair = await insertEvalPair(sql);
const base = {
  workflowId: pair.workflowId,
  evalSetId: pair.evalSetId,
  region: "sched",
  createdBy: pair.userId,
};

async function jobsOf(scheduleId: number) {
  return await sql`SELECT id, scheduled_for, status FROM eval_jobs WHERE schedule_id = ${scheduleId} ORDER BY id`;
}

Deno.test("a once-schedule fires exactly once and then has no next run", async () => {
  const s = await createSchedule(sql, { ...base, scheduleType: "once", runAt: new Date(Date.now() - 1000) });
  assert.ok(s.nextRunAt);
  const first = await tickSchedules(sql);
  assert.deepEqual(first.filter((j) => j.scheduleId === s.id).length, 1);
  assert.equal((await tickSchedules(sql)).filter((j) => j.scheduleId === s.id).length, 0);
  const after = (await getSchedule(sql, s.id))!;
  assert.equal(after.runCount, 1);
  assert.equal(after.nextRunAt, null);
  assert.ok(after.lastRunAt);
  const jobs = await jobsOf(s.id);
  assert.equal(jobs.length, 1);
  assert.equal(jobs[0].scheduledFor.toISOString(), s.nextRunAt);
});

Deno.test("a recurring schedule stops at max runs; each due time makes one job", async () => {
  const s = await createSchedule(sql, {
    ...base,
    scheduleType: "recurring",
    cronExpression: "* * * * *",
    maxRuns: 2,
  });
  assert.ok(new Date(s.nextRunAt!).getTime() > Date.now(), "first run is in the future");
  for (const ago of [120_000, 60_000, 30_000]) {
    // Pretend the due time came (a tick a minute later would see the same).
    await sql`UPDATE eval_schedules SET next_run_at = ${new Date(Date.now() - ago)}
              WHERE id = ${s.id} AND next_run_at IS NOT NULL`;
    await tickSchedules(sql);
  }
  const jobs = await jobsOf(s.id);
  assert.equal(jobs.length, 2);
  const after = (await getSchedule(sql, s.id))!;
  assert.equal(after.runCount, 2);
  assert.equal(after.nextRunAt, null);
});

Deno.test("disabled schedules do not fire; enabling computes the next run again", async () => {
  const s = await createSchedule(sql, {
    ...base,
    scheduleType: "recurring",
    cronExpression: "0 3 * * *",
    timezone: "Europe/Paris",
    isEnabled: false,
  });
  assert.equal(s.nextRunAt, null);
  await sql`UPDATE eval_schedules SET next_run_at = now() - interval '1 minute' WHERE id = ${s.id}`;
  assert.equal((await tickSchedules(sql)).filter((j) => j.scheduleId === s.id).length, 0);
  const enabled = (await updateSchedule(sql, s.id, { isEnabled: true }))!;
  const expected = nextFiring("0 3 * * *", "Europe/Paris", new Date())!;
  assert.equal(enabled.nextRunAt, expected.toISOString());
  const disabled = (await updateSchedule(sql, s.id, { isEnabled: false }))!;
  assert.equal(disabled.nextRunAt, null);
});

Deno.test(
  "run-now makes a job linked to the schedule without touching its timing or count",
  async () => {
    const s = await createSchedule(sql, { ...base, scheduleType: "recurring", cronExpression: "0 0 1 1 *" });
    const job = (await runScheduleNow(sql, s.id, pair.userId))!;
    assert.equal(job.scheduleId, s.id);
    assert.equal(job.scheduledFor, null);
    assert.equal(job.status, "pending");
    const after = (await getSchedule(sql, s.id))!;
    assert.equal(after.runCount, 0);
    assert.equal(after.nextRunAt, s.nextRunAt);
    assert.equal(await runScheduleNow(sql, 99_999_999, null), null);
  },
);

Deno.test(
  "concurrent ticks from several connections create exactly one job per due firing",
  async () => {
    // 120 pending jobs of one basic owner: past the fair-use cap (lib/fair_use.ts), which is
    // not what this test is about.
    await sql`UPDATE plan_limits SET max_pending_jobs = 1000 WHERE owner_kind = 'basic'`;
    const ids: number[] = [];
    for (let i = 0; i < 40; i++) {
      const s = await createSchedule(sql, {
        ...base,
        scheduleType: "recurring",
        cronExpression: "*/5 * * * *",
      });
      ids.push(s.id);
    }
    const pools = Array.from({ length: 4 }, () => createSql(db.url, { max: 2 }));
    try {
      for (let round = 0; round < 3; round++) {
        await sql`UPDATE eval_schedules SET next_run_at = ${new Date(Date.now() - 600_000 + round * 1000)}
                WHERE id = ANY(${ids}::bigint[])`;
        await Promise.all(
          pools.flatMap((p) => [tickSchedules(p, { limit: 7 }), tickSchedules(p, { limit: 7 })]),
        );
      }
      const [{ jobs, firings }] = await sql`
      SELECT count(*)::int AS jobs, count(DISTINCT (schedule_id, scheduled_for))::int AS firings
      FROM eval_jobs WHERE schedule_id = ANY(${ids}::bigint[])`;
      assert.equal(jobs, 120);
      assert.equal(firings, 120);
      const counts =
        await sql`SELECT DISTINCT run_count FROM eval_schedules WHERE id = ANY(${ids}::bigint[])`;
      assert.deepEqual(counts.map((r) => r.runCount), [3]);
    } finally {
      await Promise.all(pools.map((p) => p.end()));
    }
  },
);
