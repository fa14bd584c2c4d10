// Turn taking end to end (issue 20): a principal's mainline pair runs on a real eval agent
// (daemon, headless Chromium) against the reference agent with a short turn-end silence, so it
// takes the turn during the caller's 1.5 s pause. The measured takeover travels the whole way:
// the job's result, the rollups, the public leaderboard (API and page) with its n, the
// console's result view, and a `vox` gate on the result as GET /api/v1/results/{id} returns it.
import assert from "node:assert/strict";
import { checkGates, parseGate } from "../agent/cli/gates.ts";
import { fromResult, resultDetailSchema } from "../agent/cli/measurement.ts";
import { rollUpResults } from "../lib/metrics.ts";
import { createUser, sessionFor } from "./_auth.ts";
import { createTestDatabase } from "./_db.ts";
import { completedJob, mainlineEvalSet, mainlineWorkflow, startAgentRig } from "./_orch.ts";

const db = await createTestDatabase();
const sql = db.sql;
const rig = await startAgentRig(sql, { region: "turns-e2e", name: "turns-agent" });
const { server, fixtures, region } = rig;
Deno.test.afterAll(async () => {
  await rig.stop();
  await db.close();
});

Deno.test("a takeover measured by a real agent reaches the result, the leaderboard with n, the console and a gate", async () => {
  const principal = await createUser(sql, { role: "principal" });
  // The reference agent replies 400 ms after 250 ms of caller silence: it takes the turn in a
  // 1.5 s pause, and its reply to the finished sentence is timed as a response.
  const { workflowId, providerId } = await mainlineWorkflow(
    sql,
    principal,
    "Turn Taking Reference",
    `${fixtures.url}agent/index.html?out=webaudio&endpoint=250&delay=400`,
  );
  const evalSetId = await mainlineEvalSet(sql, principal, "pause mid-sentence", [
    { action: "wait_for_element", selector: "body[data-ready='1']" },
    { action: "speak", text: "I would like to book" },
    { action: "pause", ms: 1500 },
    { action: "speak", text: "a table for four tonight" },
    { action: "wait_for_voice" },
    { action: "wait_for_silence" },
  ]);
  const jobId = await completedJob(sql, {
    workflowId,
    evalSetId,
    region,
    createdBy: principal.id,
  });

  // The result: one pause, taken over, counted as an event on the stored row.
  const [result] = await sql`
    SELECT id, is_mainline, report -> 'metrics' -> 'turn_taking' AS tt, turns FROM eval_results WHERE job_id = ${jobId}`;
  assert.equal(result.isMainline, true);
  assert.equal(result.tt.pause_takeover_rate, 1, JSON.stringify(result.tt));
  assert.equal(result.tt.n_pause, 1);
  const pause = (result.turns as { kind: string; took_over?: boolean; takeover_ms?: number }[])
    .find((t) => t.kind === "pause")!;
  assert.equal(pause.took_over, true);
  assert.ok(pause.takeover_ms! >= 395 && pause.takeover_ms! <= 405, `takeover after ${pause.takeover_ms} ms`);

  // The public leaderboard carries the rate with its n.
  await rollUpResults(sql);
  const board = await (await server.app.request(`/api/v1/metrics/leaderboard?days=1&region=${region}`))
    .json();
  const entry = board.providers.find((p: { providerId: string }) => p.providerId === providerId);
  assert.ok(entry, JSON.stringify(board.providers.map((p: { providerId: string }) => p.providerId)));
  assert.equal(entry.turnTaking.pauseTakeover.rate, 1);
  assert.equal(entry.turnTaking.pauseTakeover.n, 1);
  const page = await (await server.app.request("/leaderboard?days=1&sort=takeover")).text();
  assert.match(page, /data-metric="takeover">100<span[^>]*data-n="1"/);

  // The console's result view, for the job's owner.
  const { cookie } = await sessionFor(sql, principal.id);
  const view = await (await server.app.request(`/console/jobs/${jobId}`, { headers: { cookie } })).text();
  const card = /data-testid="turn-taking">([\s\S]*?)<\/div>/.exec(view)?.[1] ?? "";
  assert.match(card, /pause takeover 100 % \(n = 1\)/);

  // A CI gate on the result as the API returns it.
  const detail = await server.app.request(`/api/v1/results/${result.id}`, { headers: { cookie } });
  assert.equal(detail.status, 200);
  const measured = fromResult(resultDetailSchema.parse(await detail.json()), server.baseUrl);
  const outcome = checkGates(measured, [parseGate("turn_taking.pause_takeover_rate > 0.2")]);
  assert.deepEqual(outcome.map((o) => [o.actual, o.failed]), [[1, true]]);
});
