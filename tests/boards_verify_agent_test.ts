// `deno task verify` over results a real eval agent produced (issue 13): a principal's mainline
// pairs run on a daemon (headless Chromium, strict egress) against the reference agent's Web
// Audio and <audio src> output paths, each with replies and a barge-in. (Its srcObject path
// loops a peer connection inside the page, which the strict policy's proxied-only WebRTC does
// not carry; that path is verified in run mode by the accuracy tests.) Re-deriving every
// turn from the uploaded stereo recordings with the same detector agrees with what was
// measured in the page: zero mismatches from the task and from GET /api/admin/verify. Then one
// stored turn latency is altered, and exactly that result is reported.
import assert from "node:assert/strict";
import { EvalDaemon } from "../agent/daemon.ts";
import { daemonSettings } from "../agent/daemon_settings.ts";
import { serveReferenceAgent } from "../bench/reference_agent.ts";
import { ensureProvider } from "../lib/providers.ts";
import { createUser, signedIn } from "./_auth.ts";
import { createTestDatabase, setSetting } from "./_db.ts";
import { agentToken, completedJob, startOrchServer } from "./_orch.ts";

const db = await createTestDatabase();
const sql = db.sql;
const fixtures = serveReferenceAgent();
await setSetting(sql, "agents.heartbeat_interval_seconds", 1);
await setSetting(sql, "jobs.heartbeat_timeout_seconds", 60);
const server = await startOrchServer(sql);
const region = "verify-e2e";
const daemon = new EvalDaemon(
  daemonSettings({}, {
    VOX_SERVER_URL: server.baseUrl,
    VOX_AGENT_TOKEN: await agentToken(sql, region),
    VOX_AGENT_REGION: region,
    VOX_AGENT_NAME: "verify-agent",
    VOX_AGENT_GRACE_SECONDS: "5",
    VOX_AGENT_EGRESS_ALLOW: fixtures.url,
  }),
  () => {},
);
daemon.start();
Deno.test.afterAll(async () => {
  await daemon.stop("test over");
  await server.stop();
  await fixtures.close();
  await db.close();
});

/** `deno task verify` against this test's database: exit code and what it printed. */
async function verifyTask(): Promise<{ code: number; text: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "tasks/verify.ts"],
    env: { DATABASE_URL: db.url, VOX_SECRET_KEY: "0".repeat(64), LOG_LEVEL: "error" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
}

Deno.test("verify re-derives a real agent's turns on two output paths with zero mismatches, then names the one altered", async () => {
  const principal = await createUser(sql, { role: "principal" });
  const [evalSet] = await sql`
    INSERT INTO eval_sets (project_id, name, config, is_mainline, created_by)
    VALUES (${principal.defaultProjectId}, 'replies and a barge-in', ${
    sql.json({
      steps: [
        { action: "wait_for_element", selector: "body[data-ready='1']" },
        { action: "speak", file: "v1-greeting.ogg" },
        { action: "wait_for_voice", metrics: "elapsed_time" },
        { action: "wait_for_silence" },
        { action: "speak", file: "v1-question.ogg" },
        { action: "wait_for_voice", metrics: "elapsed_time" },
        { action: "barge_in", file: "v1-interruption.ogg", after_ms: 400 },
        { action: "wait_for_voice" },
        { action: "wait_for_silence" },
      ],
    })
  }, true, ${principal.id})
    RETURNING id`;
  const results: { out: string; resultId: number; turns: number }[] = [];
  for (const [out, delay] of [["webaudio", 640], ["src", 720]] as const) {
    const providerId = await sql.begin((tx) =>
      ensureProvider(tx, { name: `Verify reference ${out}`, sku: 0, createdBy: null, curated: true })
    );
    const [workflow] = await sql`
      INSERT INTO workflows (project_id, provider_id, name, config, is_mainline, created_by)
      VALUES (${principal.defaultProjectId}, ${providerId}, ${out}, ${
      sql.json({ url: `${fixtures.url}agent/index.html?out=${out}&delay=${delay}&stop=300`, steps: [] })
    }, true, ${principal.id})
      RETURNING id`;
    const jobId = await completedJob(sql, {
      workflowId: workflow.id,
      evalSetId: evalSet.id,
      region,
      createdBy: principal.id,
    });
    const [r] = await sql`SELECT id, is_mainline, turns FROM eval_results WHERE job_id = ${jobId}`;
    assert.equal(r.isMainline, true, `${out}: a board result`);
    const kinds = (r.turns as { kind: string; ok: boolean }[]).map((t) => `${t.kind}:${t.ok}`);
    assert.deepEqual(
      kinds,
      ["response:true", "response:true", "interrupt:true", "response:true"],
      `${out}: ${kinds}`,
    );
    results.push({ out, resultId: Number(r.id), turns: kinds.length });
  }

  const clean = await verifyTask();
  assert.equal(clean.code, 0, clean.text);
  assert.match(clean.text, /checked 2 results, 2 recordings, 8 turns re-derived/);
  assert.match(clean.text, /published figures agree/);
  assert.match(clean.text, /^0 mismatches$/m);

  // The admin endpoint says the same.
  const admin = await signedIn(sql, { isAdmin: true });
  const res = await server.app.request("/api/admin/verify", { headers: { cookie: admin.cookie } });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.deepEqual(body.mismatches, []);
  assert.equal(body.results, 2);
  assert.equal(body.turnsRederived, 8);
  // Others may not run it.
  const basic = await signedIn(sql, { role: "basic" });
  assert.equal(
    (await server.app.request("/api/admin/verify", { headers: { cookie: basic.cookie } })).status,
    403,
  );

  // A stored interrupt latency 40 ms off what the recording shows: that result, only.
  const target = results.find((r) => r.out === "src")!;
  await sql`
    UPDATE eval_results SET turns = jsonb_set(turns, '{2,latency_ms}', to_jsonb((turns -> 2 ->> 'latency_ms')::numeric + 40))
    WHERE id = ${target.resultId}`;
  const altered = await verifyTask();
  assert.equal(altered.code, 1, altered.text);
  const flagged = [...altered.text.matchAll(/^MISMATCH result (\d+) /gm)].map((m) => Number(m[1]));
  assert.deepEqual([...new Set(flagged)], [target.resultId], altered.text);
  assert.match(altered.text, /turn 3: stored [\d.]+ ms, re-derived from recording-1\.wav [\d.]+ ms/);
});
