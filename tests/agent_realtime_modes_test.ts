// A Realtime-protocol workflow in both of the agent's modes: run mode (the CLI, key from
// VOX_SECRET_<NAME>) and daemon mode (a workflow and its sealed secret made through the API,
// the job offered over the agent socket, the result and stereo recording stored), both against
// the fake Realtime server; the daemon's strict egress policy applies to the endpoint.
import assert from "node:assert/strict";
import { join } from "node:path";
import { encodeWav } from "../agent/audio.ts";
import { EvalDaemon } from "../agent/daemon.ts";
import { daemonSettings } from "../agent/daemon_settings.ts";
import { createAgentToken } from "../lib/agent_tokens.ts";
import { apiKeyFor, createUser } from "./_auth.ts";
import { createTestDatabase, setSetting } from "./_db.ts";
import { startOrchServer } from "./_orch.ts";
import { eventually } from "./_wait.ts";
import { responseTruth, startFakeRealtime } from "./fixtures/fake_realtime.ts";

const KEY = "sk-fake-modes-" + "m".repeat(20);

function toneWav(leadMs: number, toneMs: number, tailMs: number, rate = 24000): Uint8Array {
  const n = (ms: number) => Math.round((ms * rate) / 1000);
  const pcm = new Uint8Array((n(leadMs) + n(toneMs) + n(tailMs)) * 2);
  const v = new DataView(pcm.buffer);
  for (let i = 0; i < n(toneMs); i++) {
    v.setInt16((n(leadMs) + i) * 2, Math.round(0.3 * 32767 * Math.sin((2 * Math.PI * 300 * i) / rate)), true);
  }
  return encodeWav(pcm, rate, 1);
}

const STEPS = [
  { action: "speak", file: "ask.wav" },
  { action: "wait_for_voice" },
  { action: "wait_for_silence" },
  { action: "speak", file: "ask.wav" },
  { action: "wait_for_voice" },
];

Deno.test("run mode: the CLI runs a Realtime application and writes the report and recording", async () => {
  const fake = startFakeRealtime({ key: KEY, responseDelayMs: 200, replyMs: 800, speed: 10 });
  try {
    const dir = await Deno.makeTempDir({ prefix: "vox-rt-cli-" });
    await Deno.writeFile(join(dir, "ask.wav"), toneWav(100, 800, 100));
    await Deno.writeTextFile(
      join(dir, "app.yaml"),
      `realtime:\n  url: "${fake.url}"\n  auth:\n    secret: OPENAI_API_KEY\n  format: g711_alaw\n`,
    );
    await Deno.writeTextFile(join(dir, "scenario.yaml"), JSON.stringify({ steps: STEPS }));
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "agent/main.ts",
        "run",
        "--app",
        join(dir, "app.yaml"),
        "--suite",
        join(dir, "scenario.yaml"),
        "--report",
        join(dir, "report.json"),
      ],
      env: { VOX_SECRET_OPENAI_API_KEY: KEY },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, text);
    assert.ok(!text.includes(KEY), "the key is never printed");
    const report = JSON.parse(await Deno.readTextFile(join(dir, "report.json")));
    assert.equal(report.ok, true);
    assert.equal(report.turns.length, 2);
    const truth = responseTruth(fake.calls[0]);
    for (const [i, t] of report.turns.entries()) {
      assert.ok(t.ok || t.unreliable, JSON.stringify(t));
      // A separate process: its clock and the fake's differ, so only the figure's size is checked here
      // (accuracy against truth is agent_realtime_test.ts, in one process).
      assert.ok(Math.abs(t.latency_ms - truth[i]) < 50, `${t.latency_ms} vs ${truth[i]}`);
    }
    assert.equal(fake.calls[0].format, "g711_alaw");
    assert.equal(report.runs[0].realtime.turn_detection.type, "server_vad");
    assert.equal(report.runs[0].sample_rate, 8000);
    assert.ok((await Deno.stat(report.runs[0].recording)).size > 44 + 8000 * 4);
  } finally {
    await fake.close();
  }
});

Deno.test("daemon mode: a Realtime workflow with a sealed key runs as a job and its result is stored", async () => {
  const db = await createTestDatabase();
  const sql = db.sql;
  const fake = startFakeRealtime({ key: KEY, responseDelayMs: 300, replyMs: 800, speed: 10 });
  const server = await startOrchServer(sql);
  const assets = await Deno.makeTempDir({ prefix: "vox-rt-assets-" });
  await Deno.writeFile(join(assets, "ask.wav"), toneWav(100, 800, 100));
  // The operator declares what its agents carry, so eval sets may name it (docs/audio.md).
  await setSetting(sql, "audio.agent_assets", ["ask.wav"]);
  const logs: string[] = [];
  let daemon: EvalDaemon | null = null;
  try {
    const user = await createUser(sql);
    const key = await apiKeyFor(sql, user.id);
    const call = async (method: string, path: string, body: unknown) => {
      const res = await server.app.request(path, {
        method,
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      const data = await res.json();
      assert.ok(res.ok, `${method} ${path}: ${JSON.stringify(data)}`);
      return data;
    };
    const workflow = await call("POST", "/api/v1/workflows", {
      projectId: user.defaultProjectId,
      name: "realtime agent",
      provider: { name: "Fake Realtime" },
      yaml: `realtime:\n  url: "${fake.url}"\n  auth:\n    secret: OPENAI_API_KEY\n  dialect: beta\n`,
    });
    await call("PUT", `/api/v1/workflows/${workflow.id}/secrets/OPENAI_API_KEY`, { value: KEY });
    const evalSet = await call("POST", "/api/v1/eval-sets", {
      projectId: user.defaultProjectId,
      name: "two turns",
      config: { steps: STEPS },
    });
    const region = "realtime";
    const token = (await createAgentToken(sql, { name: "rt", region })).token;
    const port = new URL(fake.url).port;
    daemon = new EvalDaemon(
      daemonSettings({}, {
        VOX_SERVER_URL: server.baseUrl,
        VOX_AGENT_TOKEN: token,
        VOX_AGENT_REGION: region,
        VOX_AGENT_NAME: "daemon-realtime",
        VOX_AGENT_ASSETS_DIR: assets,
        VOX_AGENT_GRACE_SECONDS: "5",
        VOX_AGENT_EGRESS_ALLOW: `127.0.0.1:${port}`,
      }),
      (level, message, fields) => logs.push(JSON.stringify({ level, message, fields })),
    );
    daemon.start();
    const job = await call("POST", `/api/v1/workflows/${workflow.id}/run`, { evalSetId: evalSet.id, region });
    await eventually(
      () => daemon!.delivered.some((d) => d.jobId === job.id),
      "the result acknowledged",
      60_000,
    );
    const [row] = await sql`SELECT status, error FROM eval_jobs WHERE id = ${job.id}`;
    assert.equal(row.status, "completed", row.error);
    const [result] = await sql`SELECT response_latency_n, report FROM eval_results WHERE job_id = ${job.id}`;
    assert.ok(result.responseLatencyN >= 1, JSON.stringify(result.report.turns));
    assert.equal(result.report.methods.response_latency, "vox-realtime-playback-response/1");
    assert.equal(result.report.runs[0].realtime.dialect, "beta");
    assert.equal(result.report.runs[0].recording, "recording-1.wav");
    const [art] = await sql`SELECT size_bytes FROM eval_artifacts WHERE job_id = ${job.id}`;
    assert.ok(art.sizeBytes > 44 + 24000 * 4);
    assert.equal(fake.calls[0].dialect, "beta");
    assert.ok(!JSON.stringify(result.report).includes(KEY) && !logs.join("\n").includes(KEY));

    // Strict egress: without the allowance the loopback endpoint is refused, naming it.
    await daemon.stop("next");
    daemon = new EvalDaemon(
      daemonSettings({}, {
        VOX_SERVER_URL: server.baseUrl,
        VOX_AGENT_TOKEN: token,
        VOX_AGENT_REGION: region,
        VOX_AGENT_NAME: "daemon-realtime",
        VOX_AGENT_ASSETS_DIR: assets,
        VOX_AGENT_GRACE_SECONDS: "5",
      }),
      () => {},
    );
    daemon.start();
    const refused = await call("POST", `/api/v1/workflows/${workflow.id}/run`, {
      evalSetId: evalSet.id,
      region,
    });
    await eventually(
      () => daemon!.delivered.some((d) => d.jobId === refused.id),
      "the failure acknowledged",
      60_000,
    );
    const [failed] = await sql`SELECT status, error FROM eval_jobs WHERE id = ${refused.id}`;
    assert.match(failed.error ?? "", /blocked destination 127\.0\.0\.1/);
  } finally {
    await daemon?.stop("test over");
    await server.stop();
    await fake.close();
    await db.close();
  }
});
