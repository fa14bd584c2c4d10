// `deno task verify` over results a real eval agent produced (issue 13): a principal's mainline
// pairs run on a daemon (headless Chromium, strict egress) against the reference agent's Web
// Audio and <audio src> output paths, each with replies and a barge-in. (Its srcObject path
// loops a peer connection inside the page, which the strict policy's proxied-only WebRTC does
// not carry; that path is verified in run mode by the accuracy tests.) The console's result view
// marks each interrupt on the recording with its latency. Re-deriving every
// turn from the uploaded stereo recordings with the same detector agrees with what was
// measured in the page: zero mismatches from the task and from GET /api/admin/verify. Then one
// stored turn latency is altered, and exactly that result is reported.
import assert from "node:assert/strict";
import { marksOf, type RecordingTurn } from "../islands/recording.tsx";
import { createUser, sessionFor, signedIn } from "./_auth.ts";
import { createTestDatabase, verifyTask } from "./_db.ts";
import { completedJob, mainlineEvalSet, mainlineWorkflow, startAgentRig } from "./_orch.ts";

const db = await createTestDatabase();
const sql = db.sql;
const rig = await startAgentRig(sql, { region: "verify-e2e", name: "verify-agent" });
const { server, fixtures, region } = rig;
Deno.test.afterAll(async () => {
  await rig.stop();
  await db.close();
});

Deno.test("verify re-derives a real agent's turns on two output paths with zero mismatches, then names the one altered", async () => {
  const principal = await createUser(sql, { role: "principal" });
  const evalSetId = await mainlineEvalSet(sql, principal, "replies and a barge-in", [
    { action: "wait_for_element", selector: "body[data-ready='1']" },
    { action: "speak", file: "v1-greeting.ogg" },
    { action: "wait_for_voice", metrics: "elapsed_time" },
    { action: "wait_for_silence" },
    { action: "speak", file: "v1-question.ogg" },
    { action: "wait_for_voice", metrics: "elapsed_time" },
    { action: "barge_in", file: "v1-interruption.ogg", after_ms: 400 },
    { action: "wait_for_voice" },
    { action: "wait_for_silence" },
  ]);
  const results: {
    out: string;
    resultId: number;
    jobId: number;
    turns: RecordingTurn[];
    firstFrame: number;
  }[] = [];
  for (const [out, delay] of [["webaudio", 640], ["src", 720]] as const) {
    const { workflowId } = await mainlineWorkflow(
      sql,
      principal,
      `Verify reference ${out}`,
      `${fixtures.url}agent/index.html?out=${out}&delay=${delay}&stop=300`,
    );
    const jobId = await completedJob(sql, {
      workflowId,
      evalSetId,
      region,
      createdBy: principal.id,
    });
    const [r] = await sql`
      SELECT id, is_mainline, turns, (report -> 'runs' -> 0 ->> 'recording_first_frame')::bigint AS first_frame
      FROM eval_results WHERE job_id = ${jobId}`;
    assert.equal(r.isMainline, true, `${out}: a board result`);
    // Every turn is there; one the host's load made unreliable is kept but not re-derived.
    const kinds = (r.turns as { kind: string }[]).map((t) => t.kind);
    assert.deepEqual(kinds, ["response", "response", "interrupt", "response"], `${out}: ${kinds}`);
    results.push({ out, resultId: Number(r.id), jobId, turns: r.turns, firstFrame: Number(r.firstFrame) });
  }

  // On a quiet host all eight turns are ok; each ok one is re-derived.
  const okTurns = results.flatMap((r) => r.turns.filter((t) => t.ok));
  assert.ok(okTurns.length >= 4, `${okTurns.length} of 8 turns measured reliably`);
  const clean = await verifyTask(db.url);
  assert.equal(clean.code, 0, clean.text);
  assert.match(clean.text, new RegExp(`checked 2 results, 2 recordings, ${okTurns.length} turns re-derived`));
  assert.match(clean.text, /published figures agree/);
  assert.match(clean.text, /^0 mismatches$/m);

  // The admin endpoint says the same.
  const admin = await signedIn(sql, { isAdmin: true });
  const res = await server.app.request("/api/admin/verify", { headers: { cookie: admin.cookie } });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.deepEqual(body.mismatches, []);
  assert.equal(body.results, 2);
  assert.equal(body.turnsRederived, okTurns.length);
  // Others may not run it.
  const basic = await signedIn(sql, { role: "basic" });
  assert.equal(
    (await server.app.request("/api/admin/verify", { headers: { cookie: basic.cookie } })).status,
    403,
  );

  // The console's result view marks the interrupt on the recording as it marks replies: from the
  // caller's barge-in to the agent's last voiced frame, labelled with the latency (the list
  // below the waveform is server-rendered, so it is checked without JavaScript).
  const { cookie } = await sessionFor(sql, principal.id);
  for (const r of results) {
    const ok = r.turns.filter((t) => t.ok);
    const marks = marksOf(ok, r.firstFrame, null);
    assert.deepEqual(marks.map((m) => m.kind), ok.map((t) => t.kind), r.out);
    for (const [i, m] of marks.entries()) {
      const latency = ok[i].latency_ms!;
      assert.ok(
        Math.abs((m.end - m.start) * 1000 - latency) <= 1,
        `${r.out} ${m.kind}: ${m.start}→${m.end}, ${latency}`,
      );
    }
    const interrupt = r.turns[2];
    if (!interrupt.ok) continue;
    const view = await (await server.app.request(`/console/jobs/${r.jobId}`, { headers: { cookie } })).text();
    assert.match(
      view,
      new RegExp(`interrupt at [\\d.]+ s → [\\d.]+ s: ${Math.round(interrupt.latency_ms!)} ms`),
    );
  }

  // A stored interrupt latency 40 ms off what the recording shows (a reply's, should the host's
  // load have left no interrupt reliable): that result, only.
  const target = [...results].reverse().find((r) => r.turns[2].ok) ?? results.find((r) => r.turns[0].ok)!;
  const index = target.turns[2].ok ? 2 : 0;
  await sql`
    UPDATE eval_results
    SET turns = jsonb_set(turns, ${`{${index},latency_ms}`}::text[],
                          to_jsonb((turns -> ${index}::int ->> 'latency_ms')::numeric + 40))
    WHERE id = ${target.resultId}`;
  const altered = await verifyTask(db.url);
  assert.equal(altered.code, 1, altered.text);
  const flagged = [...altered.text.matchAll(/^MISMATCH result (\d+) /gm)].map((m) => Number(m[1]));
  assert.deepEqual([...new Set(flagged)], [target.resultId], altered.text);
  assert.match(
    altered.text,
    new RegExp(`turn ${index + 1}: stored [\\d.]+ ms, re-derived from recording-1\\.wav [\\d.]+ ms`),
  );
});
