// Replay (issue 18): a job whose eval set speaks synthesized text runs on a real eval agent
// (daemon, headless Chromium), which stores the audio it spoke with the result as
// `speech-<sha256>.wav`. `deno task agent run … --replay <result URL>` then runs the same
// scenario speaking exactly those bytes: fetched with the user's API key, verified against
// their SHA-256 and cached by it, with espeak-ng out of reach (any synthesis would fail the
// run). The replay's report says what it replayed; the audio it played hashes to the stored
// audio, and its caller lane is that audio (cross-correlation). `vox run --local --replay <id>`
// does the same from the agent's cache, and the replay's own report can be replayed offline.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { loadReplay, ReplayError } from "../agent/replay.ts";
import { speechKey } from "../agent/voices.ts";
import { encodeWav } from "../agent/audio.ts";
import type { RunReport } from "../agent/protocol.ts";
import { completeJob } from "../lib/job_completer.ts";
import { claimJobs, createJob } from "../lib/queue.ts";
import { apiKeyFor, createUser } from "./_auth.ts";
import { createTestDatabase } from "./_db.ts";
import { correlation, firstLane } from "./_audio.ts";
import { completedJob, startAgentRig } from "./_orch.ts";

const db = await createTestDatabase();
const sql = db.sql;
const tmp = await Deno.makeTempDir({ prefix: "vox-replay-" });
await Deno.mkdir(join(tmp, "assets"));
const region = "replay-a";
const rig = await startAgentRig(sql, {
  region,
  name: "replay-agent",
  env: { VOX_AGENT_ASSETS_DIR: join(tmp, "assets"), VOX_AGENT_AUDIO_CACHE_DIR: join(tmp, "daemon-cache") },
});
const { server, fixtures } = rig;
Deno.test.afterAll(async () => {
  await rig.stop();
  await db.close();
  await Deno.remove(tmp, { recursive: true });
});

const TEXT = "Could you tell me whether my parcel left the warehouse today?";
const STEPS = [
  { action: "wait_for_element", selector: "body[data-ready='1']" },
  { action: "speak", text: TEXT },
  { action: "wait_for_voice", metrics: "elapsed_time" },
];
const APP_URL = `${fixtures.url}agent/index.html?out=webaudio&delay=700`;

const user = await createUser(sql, { role: "principal" });
const apiKey = await apiKeyFor(sql, user.id);
const key = { authorization: `Bearer ${apiKey}` };
const [provider] = await sql`INSERT INTO providers (name, sku) VALUES ('Replay test', 0) RETURNING id`;
const [workflow] = await sql`
  INSERT INTO workflows (project_id, provider_id, name, config, created_by)
  VALUES (${user.defaultProjectId}, ${provider.id}, 'reference agent', ${
  sql.json({ url: APP_URL, steps: [] })
},
          ${user.id})
  RETURNING id`;
const created = await server.app.request("/api/v1/eval-sets", {
  method: "POST",
  headers: { ...key, "content-type": "application/json" },
  body: JSON.stringify({
    projectId: user.defaultProjectId,
    name: "synthesized caller",
    config: { steps: STEPS },
  }),
});
assert.equal(created.status, 201, await created.clone().text());
const evalSet = await created.json();

const sha256Of = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

/** Runs the agent's run mode as a user would, with espeak-ng out of reach; returns exit code and report. */
async function agentRun(
  suiteSteps: unknown[],
  replay: string,
  name: string,
  env: Record<string, string> = {},
) {
  const app = join(tmp, `${name}-app.json`);
  const suite = join(tmp, `${name}-suite.json`);
  await Deno.writeTextFile(app, JSON.stringify({ url: APP_URL, steps: [] }));
  await Deno.writeTextFile(suite, JSON.stringify({ steps: suiteSteps }));
  const reportPath = join(tmp, name, "report.json");
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../agent/main.ts", import.meta.url).pathname,
      "run",
      "--app",
      app,
      "--suite",
      suite,
      "--replay",
      replay,
      "--report",
      reportPath,
    ],
    env: {
      VOX_API_KEY: apiKey,
      VOX_AGENT_AUDIO_CACHE_DIR: join(tmp, "replay-cache"),
      ESPEAK_PATH: join(tmp, "espeak-ng-is-not-here"),
      ...env,
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  const report = await Deno.readTextFile(reportPath).then(JSON.parse).catch(() => null);
  return { code: out.code, text, report, dir: join(tmp, name) };
}

/** `x` resampled (linear) from `from` Hz to `to` Hz. */
function resample(x: Float32Array, from: number, to: number): Float32Array {
  const out = new Float32Array(Math.floor((x.length * to) / from));
  for (let i = 0; i < out.length; i++) {
    const t = (i * from) / to, j = Math.floor(t), f = t - j;
    out[i] = (x[j] ?? 0) * (1 - f) + (x[j + 1] ?? 0) * f;
  }
  return out;
}

Deno.test({
  name: "a stored result's speech is replayed byte for byte without synthesizing, and the report says so",
  async fn() {
    // The original run: espeak-ng on the eval agent, its audio stored with the result.
    const jobId = await completedJob(sql, {
      workflowId: workflow.id,
      evalSetId: evalSet.id,
      region,
      createdBy: user.id,
    });
    const [{ id: resultId }] = await sql`SELECT id FROM eval_results WHERE job_id = ${jobId}`;
    const res = await server.app.request(`/api/v1/results/${resultId}`, { headers: key });
    assert.equal(res.status, 200);
    const result = await res.json();
    assert.equal(result.report.speech.length, 1);
    const spoken = result.report.speech[0];
    assert.equal(spoken.engine, "espeak");
    assert.equal(spoken.key, speechKey("espeak", "en-us", TEXT));
    assert.equal(spoken.artifact, `speech-${spoken.sha256}.wav`);
    const dl = await server.app.request(`/api/v1/results/${resultId}/artifacts/${spoken.artifact}`, {
      headers: key,
    });
    assert.equal(dl.status, 200);
    const stored = new Uint8Array(await dl.arrayBuffer());
    assert.equal(sha256Of(stored), spoken.sha256);

    // The replay: espeak-ng is out of reach, so anything synthesized would fail the run.
    const url = `${server.baseUrl}/api/v1/results/${resultId}`;
    const replay = await agentRun(STEPS, url, "replay");
    assert.equal(replay.code, 0, replay.text);
    assert.deepEqual(replay.report.replay, {
      of: url,
      result_id: resultId,
      job_id: jobId,
      utterances: 1,
      fetched: 1,
      cached: 0,
    });
    // What was played is what was stored: its hash, and the caller lane of the recording.
    assert.deepEqual(
      replay.report.speech.map((s: { sha256: string; key: string }) => [s.key, s.sha256]),
      [[spoken.key, spoken.sha256]],
    );
    assert.deepEqual([...Deno.readDirSync(join(tmp, "replay-cache"))].map((e) => e.name), [spoken.sha256]);
    const [turn] = replay.report.turns;
    assert.ok(
      turn.ok && Math.abs(turn.latency_ms - 700) <= 5,
      `measured ${turn.latency_ms} ms for a 700 ms reply`,
    );
    const recording = await Deno.readFile(replay.report.runs[0].recording);
    const caller = firstLane(recording);
    const ref = firstLane(stored);
    const r = correlation(caller.samples, resample(ref.samples, ref.rate, caller.rate), caller.rate);
    assert.ok(r > 0.9, `caller lane vs the stored speech: correlation ${r.toFixed(3)}`);

    // The replay kept what it spoke beside its own report, so it can be replayed in turn, offline.
    const local = await loadReplay(join(replay.dir, "report.json"), { apiKey: undefined, cacheDir: tmp });
    assert.deepEqual([...local.audio.audio].map(([k, b]) => [k, sha256Of(b)]), [[spoken.key, spoken.sha256]]);

    // `vox run --local --replay <id>` does the same with the key `vox login` keeps (here the
    // environment's), and this time the audio comes from the agent's cache (verified), not the server.
    await Deno.writeTextFile(join(tmp, "vox-suite.yaml"), JSON.stringify({ steps: STEPS }));
    await Deno.writeTextFile(join(tmp, "vox-app.yaml"), JSON.stringify({ url: APP_URL, steps: [] }));
    const vox = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../agent/cli/main.ts", import.meta.url).pathname,
        "run",
        "--local",
        "--app",
        join(tmp, "vox-app.yaml"),
        "--suite",
        join(tmp, "vox-suite.yaml"),
        "--replay",
        String(resultId),
        "--report",
        join(tmp, "vox", "report.json"),
      ],
      env: {
        VOX_URL: server.baseUrl,
        VOX_API_KEY: apiKey,
        VOX_AGENT_AUDIO_CACHE_DIR: join(tmp, "replay-cache"),
        ESPEAK_PATH: join(tmp, "espeak-ng-is-not-here"),
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.equal(vox.code, 0, new TextDecoder().decode(vox.stderr));
    const again = JSON.parse(await Deno.readTextFile(join(tmp, "vox", "report.json")));
    assert.equal(again.replay.of, url);
    assert.equal(again.replay.cached, 1);
    assert.equal(again.speech[0].sha256, spoken.sha256);

    // A text the result never spoke fails before a browser starts; nothing is synthesized instead.
    const other = await agentRun(
      [STEPS[0], { action: "speak", text: "Something else entirely." }, STEPS[2]],
      url,
      "other",
    );
    assert.equal(other.code, 1);
    assert.match(
      other.text,
      /it holds no audio for espeak:en-us "Something else entirely\."; nothing was spoken/,
    );
    assert.equal(other.report.turns.length, 0);

    // A refused key, or a result the user cannot see: a clear error, and nothing runs.
    const refused = await agentRun(STEPS, url, "refused", { VOX_API_KEY: "vox_" + "x".repeat(40) });
    assert.equal(refused.code, 1);
    assert.match(refused.text, /answered 401 \(the API key was refused\)/);
    const missing = await agentRun(STEPS, url.replace(/\d+$/, "999999"), "missing");
    assert.equal(missing.code, 1);
    assert.match(missing.text, /answered 404 \(no such result you can see\)/);
  },
});

Deno.test("a result's speech is fetched with the user's key, verified against its SHA-256 and cached by it", async () => {
  // A result stored as an agent would store it, in a region no agent serves (no browser runs).
  const other = "replay-b";
  const [{ id: tokenId }] = await sql`
    INSERT INTO eval_agent_tokens (name, region, token_hash, display_prefix)
    VALUES ('replay-b', ${other}, ${"f".repeat(64)}, 'x') RETURNING id`;
  const [agent] =
    await sql`INSERT INTO eval_agents (token_id, name, region) VALUES (${tokenId}, 'b', ${other}) RETURNING id`;
  const job = await createJob(sql, {
    workflowId: workflow.id,
    evalSetId: evalSet.id,
    region: other,
    createdBy: user.id,
  });
  await claimJobs(sql, other, [{ agentId: agent.id }]);
  const wav = encodeWav(new Uint8Array(16_000).map((_, i) => (i * 31) % 253), 16_000, 1);
  const sha = sha256Of(wav);
  const speech = (text: string, artifact: string | null, sha256 = sha) => ({
    key: speechKey("flite", "slt", text),
    engine: "flite",
    voice: "slt",
    text,
    sha256,
    bytes: wav.length,
    artifact,
  });
  const report = {
    metrics: {
      response_latency: { median: 700, sd: 0, p90: 700, n: 1 },
      interrupt_latency: { median: null, sd: null, p90: null, n: 0 },
      network_resilience: null,
      noise_reduction: null,
      naturalness: null,
    },
    turns: [{ kind: "response", latency_ms: 700, ok: true }],
    methods: {},
    speech: [speech("Hello", `speech-${sha}.wav`)],
  } as unknown as RunReport;
  const out = await completeJob(sql, job.id, agent.id, report);
  assert.ok(out.ok);
  await sql`
    INSERT INTO eval_artifacts (job_id, kind, name, content_type, size_bytes, sha256, data, storage)
    VALUES (${job.id}, 'recording', ${`speech-${sha}.wav`}, 'audio/wav', ${wav.length}, ${sha}, ${wav}, 'inline')`;
  const url = `${server.baseUrl}/api/v1/results/${out.resultId}`;
  const cacheDir = join(tmp, "unit-cache");

  const first = await loadReplay(url, { apiKey, cacheDir });
  assert.deepEqual(first.audio.audio.get(speechKey("flite", "slt", "Hello")), wav);
  assert.deepEqual(first.info, {
    of: url,
    result_id: out.resultId,
    job_id: job.id,
    utterances: 1,
    fetched: 1,
    cached: 0,
  });
  assert.deepEqual([...Deno.readDirSync(cacheDir)].map((e) => e.name), [sha]);
  assert.equal((await loadReplay(url, { apiKey, cacheDir })).info.cached, 1);

  // A cached file that no longer hashes to its name is fetched again; stored bytes that do not
  // hash to the listed SHA-256 are refused.
  await Deno.writeFile(join(cacheDir, sha), new Uint8Array([1, 2, 3]));
  assert.equal((await loadReplay(url, { apiKey, cacheDir })).info.fetched, 1);
  await Deno.remove(join(cacheDir, sha));
  const forged = new Uint8Array(wav);
  forged[100] ^= 0xff;
  await sql`UPDATE eval_artifacts SET data = ${forged} WHERE job_id = ${job.id}`;
  await assert.rejects(
    loadReplay(url, { apiKey, cacheDir }),
    (err) =>
      err instanceof ReplayError && /hash to [0-9a-f]{64}, not [0-9a-f]{64}; refused/.test(err.message),
  );
  // No key, a refused key, an utterance whose audio was not stored: clear errors.
  await assert.rejects(loadReplay(url, { apiKey: undefined, cacheDir }), /needs an API key in VOX_API_KEY/);
  await assert.rejects(loadReplay(url, { apiKey: "vox_" + "0".repeat(40), cacheDir }), /answered 401/);
  await sql`UPDATE eval_results SET report = ${sql.json({ ...report, speech: [speech("Hi", null)] } as never)}
            WHERE id = ${out.resultId}`;
  await assert.rejects(
    loadReplay(url, { apiKey, cacheDir }),
    /did not store the audio of flite:slt "Hi" .*it cannot be replayed exactly/,
  );
});
