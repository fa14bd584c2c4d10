// Turn taking (issue 20) from the agent's report through the server: a completed job's
// metrics.turn_taking becomes event counts on its result (migration 00009), the rollups pool
// them, the leaderboard (API and page) shows the rates with n and sorts by them, the console's
// result view shows them, and the vox CLI gates on them (from a report file and from a server
// result's turns). Real PostgreSQL; the CLI as a subprocess.
import assert from "node:assert/strict";
import { join } from "node:path";
import { fromReport, fromResult, resultDetailSchema } from "../agent/cli/measurement.ts";
import { checkGates, parseGate } from "../agent/cli/gates.ts";
import { type RunReport, runReportSchema } from "../agent/protocol.ts";
import { turnTaking } from "../agent/turn_taking_metrics.ts";
import { completeJob } from "../lib/job_completer.ts";
import { meanInterval } from "../lib/board_stats.ts";
import { leaderboard, rebuildRollups, rollUpResults } from "../lib/metrics.ts";
import { claimJobs, createJob } from "../lib/queue.ts";
import { SEEDED_PROVIDERS } from "../lib/seed.ts";
import { sampleReport } from "../bench/sim_agent.ts";
import { createTestApp } from "./_app.ts";
import { sessionFor } from "./_auth.ts";
import { createTestDatabase } from "./_db.ts";
import { insertEvalPair } from "./_orch.ts";

const db = await createTestDatabase();
const sql = db.sql;
const tmp = await Deno.makeTempDir({ prefix: "vox-turns-flow-" });
Deno.test.afterAll(async () => {
  await db.close();
  await Deno.remove(tmp, { recursive: true });
});
const { app } = await createTestApp(sql);
const [{ id: tokenId }] = await sql`
  INSERT INTO eval_agent_tokens (name, region, token_hash, display_prefix)
  VALUES ('turns', 'eu', ${"e".repeat(64)}, 'x') RETURNING id`;

/** Turns of a job: `takeovers` of `pauses` taken over, `stops` of `bcs` backchannels stopped for. */
function turnsOf(pauses: number, takeovers: number, bcs: number, stops: number, nearby = 0) {
  const turns: Record<string, unknown>[] = [{ kind: "response", latency_ms: 900, ok: true }];
  for (let i = 0; i < pauses; i++) {
    const took = i < takeovers;
    turns.push({
      kind: "pause",
      latency_ms: took ? 400 : null,
      ok: !took,
      took_over: took,
      takeover_ms: took ? 400 : null,
    });
  }
  for (let i = 0; i < bcs; i++) {
    const stopped = i < stops;
    turns.push({ kind: "backchannel", latency_ms: stopped ? 300 : null, ok: !stopped, stopped });
  }
  for (let i = 0; i < nearby; i++) {
    turns.push({ kind: "background", latency_ms: null, ok: true, triggered: false, stopped_agent: false });
  }
  return turns;
}

function reportWith(turns: Record<string, unknown>[]): RunReport {
  const base = sampleReport(900);
  const t = turns as RunReport["turns"];
  return {
    ...base,
    metrics: { ...base.metrics, turn_taking: turnTaking(t) },
    turns: t,
    methods: { ...base.methods, turn_taking: "vox-turntaking/1" },
  };
}

async function complete(
  pair: Awaited<ReturnType<typeof insertEvalPair>>,
  report: RunReport,
): Promise<number> {
  const [agent] = await sql`
    INSERT INTO eval_agents (token_id, name, region) VALUES (${tokenId}, ${crypto.randomUUID()}, 'eu')
    RETURNING id`;
  const job = await createJob(sql, { ...pair, region: "eu" });
  await claimJobs(sql, "eu", [{ agentId: agent.id }]);
  // What the daemon protocol accepts is what is stored.
  assert.equal(runReportSchema.safeParse(report).success, true);
  const out = await completeJob(sql, job.id, agent.id, report);
  assert.ok(out.ok);
  return job.id;
}

// Two providers of one product type, so they share a board (boards are per product type).
const a = SEEDED_PROVIDERS[0].id;
const [{ id: b }] = await sql`
  INSERT INTO providers (name, sku, curated) VALUES ('Second ConvoAI engine', ${
  SEEDED_PROVIDERS[0].sku
}, true)
  RETURNING id`;
const pairA = await insertEvalPair(sql, { mainline: true, providerId: a });
const pairB = await insertEvalPair(sql, { mainline: true, providerId: b });
// Provider a: 1 of 2 pauses, then 2 of 2 (3 of 4 pooled), backchannels 0 of 1 and 1 of 3.
const jobA = await complete(pairA, reportWith(turnsOf(2, 1, 1, 0, 2)));
await complete(pairA, reportWith(turnsOf(2, 2, 3, 1)));
// Provider b: a report from before the method (no turn_taking at all).
await complete(pairB, sampleReport(700));
// Provider b again: 0 of 5 pauses.
await complete(pairB, reportWith(turnsOf(5, 0, 0, 0)));
await rollUpResults(sql);

Deno.test("a report's turn_taking is stored as event counts and pooled by the rollups without drift", async () => {
  const [row] = await sql`
    SELECT tt_pause_n, tt_pause_takeovers, tt_backchannel_n, tt_backchannel_stops, tt_background_n,
           tt_background_triggers, tt_penalty_ms FROM eval_results WHERE job_id = ${jobA}`;
  assert.deepEqual({ ...row, ttPenaltyMs: typeof row.ttPenaltyMs }, {
    ttPauseN: 2,
    ttPauseTakeovers: 1,
    ttBackchannelN: 1,
    ttBackchannelStops: 0,
    ttBackgroundN: 2,
    ttBackgroundTriggers: 0,
    ttPenaltyMs: "number",
  });
  const board = await leaderboard(sql, { days: 1 });
  assert.deepEqual(board, await leaderboard(sql, { days: 1, onRead: true }), "rollups equal eval_results");
  const byId = new Map(board.providers.map((p) => [p.providerId, p]));
  const ta = byId.get(a)!.turnTaking!;
  assert.equal(ta.pauseTakeover.rate, 0.75);
  assert.equal(ta.pauseTakeover.n, 4);
  assert.equal(ta.backchannelStop.rate, 0.25);
  assert.equal(ta.backchannelStop.n, 4);
  assert.equal(ta.backgroundFalseTrigger.rate, 0);
  assert.equal(ta.backgroundFalseTrigger.n, 2);
  assert.equal(ta.penaltyMs.n, 2);
  // The penalty's interval is the latencies' t-interval over the results' penalties.
  const penalties = (await sql`
    SELECT r.tt_penalty_ms FROM eval_results r JOIN eval_jobs j ON j.id = r.job_id
    WHERE j.workflow_id = ${pairA.workflowId} ORDER BY r.id`).map((x) => Number(x.ttPenaltyMs));
  assert.equal(penalties.length, 2);
  const sum = penalties[0] + penalties[1];
  const expected = meanInterval(2, sum, penalties[0] ** 2 + penalties[1] ** 2)!;
  assert.ok(penalties[0] !== penalties[1], `two different penalties: ${penalties}`);
  assert.deepEqual(ta.penaltyMs.ci95, {
    lo: Math.round(expected.lo * 100) / 100,
    hi: Math.round(expected.hi * 100) / 100,
  });
  assert.ok(ta.penaltyMs.ci95!.lo < ta.penaltyMs.mean! && ta.penaltyMs.mean! < ta.penaltyMs.ci95!.hi);
  assert.equal(byId.get(b)!.turnTaking!.penaltyMs.ci95, null, "one result: no interval");
  const [lo, hi] = ta.pauseTakeover.ci95!;
  assert.ok(lo < 0.75 && hi > 0.75 && lo >= 0 && hi <= 1, `interval ${lo}–${hi}`);
  const tb = byId.get(b)!.turnTaking!;
  assert.deepEqual([tb.pauseTakeover.rate, tb.pauseTakeover.n], [0, 5]);
  assert.deepEqual([tb.backchannelStop.rate, tb.backchannelStop.n, tb.backchannelStop.ci95], [null, 0, null]);
  // The older report (no turn-taking method) is another method set: never pooled with these,
  // reachable on request, where it has no turn-taking figures (not zero takeovers).
  assert.equal(byId.get(b)!.results, 1);
  assert.equal(board.methods.length, 2);
  const older = board.methods.find((m) => m.id !== board.method!.id)!;
  assert.equal(older.versions.turn_taking, undefined);
  const oldBoard = await leaderboard(sql, { days: 1, method: older.id });
  const oldB = oldBoard.providers.find((p) => p.providerId === b)!;
  assert.equal(oldB.results, 1);
  assert.deepEqual([oldB.turnTaking!.pauseTakeover.rate, oldB.turnTaking!.pauseTakeover.n], [null, 0]);
  const rows =
    async () => [...await sql`SELECT * FROM eval_rollups ORDER BY bucket_size, provider_id, region, bucket`];
  const before = await rows();
  await rebuildRollups(sql);
  assert.deepEqual(await rows(), before, "a rebuild changes no rollup row");
});

Deno.test("a turn_taking with a rate outside 0..1 or a fractional count is refused before it is stored", () => {
  const bad = reportWith(turnsOf(2, 1, 0, 0));
  const tt = bad.metrics.turn_taking!;
  assert.equal(
    runReportSchema.safeParse({
      ...bad,
      metrics: { ...bad.metrics, turn_taking: { ...tt, pause_takeover_rate: 1.5 } },
    }).success,
    false,
  );
  assert.equal(
    runReportSchema.safeParse({ ...bad, metrics: { ...bad.metrics, turn_taking: { ...tt, n_pause: 1.5 } } })
      .success,
    false,
  );
  assert.equal(
    runReportSchema.safeParse({ ...bad, turns: [{ kind: "pauses", latency_ms: null, ok: true }] }).success,
    false,
  );
});

Deno.test("the leaderboard API and page carry the turn-taking columns with n, sortable", async () => {
  const api = await app.request("/api/v1/metrics/leaderboard?days=1");
  assert.equal(api.status, 200);
  const body = await api.json();
  const pa = body.providers.find((p: { providerId: string }) => p.providerId === a);
  assert.equal(pa.turnTaking.pauseTakeover.rate, 0.75);

  const page = await app.request("/leaderboard?days=1&sort=takeover&dir=asc");
  assert.equal(page.status, 200);
  const html = await page.text();
  for (const key of ["takeover", "bc_stop", "bystander", "tt_penalty"]) {
    assert.match(html, new RegExp(`data-sort="${key}"`), `column ${key}`);
  }
  assert.match(html, /data-metric="takeover">75<span[^>]*data-n="4"/);
  // Sorted by takeover, best (lowest) first: b (0 %) before a (75 %).
  const rowsOrder = [...html.matchAll(/<tr[^>]*data-provider="([^"]+)"/g)].map((m) => m[1]);
  assert.ok(rowsOrder.indexOf(b) < rowsOrder.indexOf(a), rowsOrder.join(","));
  assert.match(html, /aria-sort="ascending"[^>]*>\s*<a[^>]*data-sort="takeover"/);
});

Deno.test("the console's result view shows the turn-taking rates with their n", async () => {
  const { cookie } = await sessionFor(sql, pairA.userId);
  const res = await app.request(`/console/jobs/${jobA}`, { headers: { cookie } });
  assert.equal(res.status, 200);
  const html = await res.text();
  const card = /data-testid="turn-taking">([\s\S]*?)<\/div>/.exec(html)?.[1] ?? "";
  assert.match(card, /pause takeover 50 % \(n = 2\)/);
  assert.match(card, /backchannel stop 0 % \(n = 1\)/);
  assert.match(card, /background false trigger 0 % \(n = 2\)/);
  assert.match(card, /penalty per event/);
  assert.match(html, /turn_taking vox-turntaking\/1/);
});

Deno.test("vox gate fails on turn_taking.pause_takeover_rate > 0.2, from a report file and from a result", async () => {
  const gate = parseGate("turn_taking.pause_takeover_rate > 0.2");
  assert.equal(gate.metric, "turn_taking.pause_takeover_rate");
  assert.throws(() => parseGate("turn_taking.takeover > 1"), /unknown metric "turn_taking.takeover"/);
  // A server result: its turns as GET /api/v1/results/{id} returns them.
  const { cookie } = await sessionFor(sql, pairA.userId);
  const [{ id }] = await sql`SELECT id FROM eval_results WHERE job_id = ${jobA}`;
  const detail = await app.request(`/api/v1/results/${id}`, { headers: { cookie } });
  assert.equal(detail.status, 200);
  const m = fromResult(resultDetailSchema.parse(await detail.json()), "http://vox.test");
  assert.deepEqual(checkGates(m, [gate]).map((o) => [o.actual, o.failed]), [[0.5, true]]);
  // A report without pauses has no value: the gate fails rather than passing silently.
  const none = fromReport(sampleReport(700), "old.json");
  assert.deepEqual(checkGates(none, [gate]).map((o) => o.failed), [true]);

  // The CLI itself, in local mode over report files.
  const cli = new URL("../agent/cli/main.ts", import.meta.url).pathname;
  const vox = async (file: string) => {
    const o = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", cli, "gate", file, "--fail-if", "turn_taking.pause_takeover_rate > 0.2"],
      env: { NO_COLOR: "1", HOME: tmp, VOX_CONFIG: join(tmp, "config.json") },
      stdout: "piped",
      stderr: "piped",
    }).output();
    return { code: o.code, out: new TextDecoder().decode(o.stdout) + new TextDecoder().decode(o.stderr) };
  };
  const held = join(tmp, "held.json");
  await Deno.writeTextFile(held, JSON.stringify(reportWith(turnsOf(5, 1, 0, 0))));
  const cut = join(tmp, "cut.json");
  await Deno.writeTextFile(cut, JSON.stringify(reportWith(turnsOf(4, 2, 0, 0))));
  const pass = await vox(held);
  assert.equal(pass.code, 0, pass.out);
  assert.match(pass.out, /turn_taking\.pause_takeover_rate = 0\.2, passes/);
  const fail = await vox(cut);
  assert.equal(fail.code, 1, fail.out);
  assert.match(
    fail.out,
    /turn_taking\.pause_takeover_rate = 0\.5, fails 'turn_taking\.pause_takeover_rate > 0\.2'/,
  );
});
