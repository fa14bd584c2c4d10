// vox_eval_agentd's pure parts: settings, reconnect backoff, the result frame. No server, no
// browser (those are in agent_daemon_test.ts).
import assert from "node:assert/strict";
import { backoffDelay } from "../agent/connection.ts";
import { resultReport } from "../agent/daemon.ts";
import { daemonSettings, DaemonSettingsError } from "../agent/daemon_settings.ts";

Deno.test("daemon settings come from flags over env, with errors naming each variable", () => {
  const token = "vox_agent_" + "a".repeat(40);
  const s = daemonSettings({ concurrency: "3" }, {
    VOX_SERVER_URL: "https://vox.example",
    VOX_AGENT_TOKEN: token,
    VOX_AGENT_REGION: "eu-west",
    VOX_AGENT_CONCURRENCY: "2",
  });
  assert.equal(s.concurrency, 3);
  assert.equal(s.region, "eu-west");
  assert.equal(s.graceSeconds, 60);
  assert.equal(s.headless, true);
  assert.match(s.name, /^[A-Za-z0-9._-]+$/);
  assert.throws(
    () =>
      daemonSettings({}, { VOX_SERVER_URL: "ftp://x", VOX_AGENT_TOKEN: "nope", VOX_AGENT_CONCURRENCY: "0" }),
    (err: Error) => {
      assert.ok(err instanceof DaemonSettingsError);
      assert.match(err.message, /VOX_SERVER_URL \(--server\): must be an http/);
      assert.match(err.message, /VOX_AGENT_TOKEN \(--token\): must be an eval agent token/);
      assert.match(err.message, /VOX_AGENT_REGION \(--region\): is missing/);
      assert.match(err.message, /VOX_AGENT_CONCURRENCY \(--concurrency\)/);
      return true;
    },
  );
});

Deno.test("a daemon's egress policy is strict unless opened; its allow list is checked up front", () => {
  const env = {
    VOX_SERVER_URL: "https://vox.example",
    VOX_AGENT_TOKEN: "vox_agent_" + "a".repeat(40),
    VOX_AGENT_REGION: "eu-west",
  };
  const s = daemonSettings({}, env);
  assert.equal(s.egress, "strict");
  assert.deepEqual(s.egressAllow, []);
  const allowed = daemonSettings({ allow: "10.0.0.0/8,http://127.0.0.1:8000/demo/" }, env);
  assert.deepEqual(allowed.egressAllow.map((a) => a.text), ["10.0.0.0/8", "http://127.0.0.1:8000/demo/"]);
  assert.equal(daemonSettings({}, { ...env, VOX_AGENT_EGRESS: "open" }).egress, "open");
  assert.throws(
    () => daemonSettings({}, { ...env, VOX_AGENT_EGRESS: "off", VOX_AGENT_EGRESS_ALLOW: "not a host!" }),
    (err: Error) => {
      assert.match(err.message, /VOX_AGENT_EGRESS \(--egress\): must be strict or open/);
      assert.match(err.message, /VOX_AGENT_EGRESS_ALLOW \(--allow\): allow: not a host/);
      return true;
    },
  );
});

Deno.test("reconnect backoff grows exponentially with jitter and is capped", () => {
  assert.equal(backoffDelay(0, 500, 30_000, () => 0), 500);
  assert.equal(backoffDelay(3, 500, 30_000, () => 1), 4000);
  assert.equal(backoffDelay(20, 500, 30_000, () => 1), 30_000);
  const spread = new Set(Array.from({ length: 20 }, () => backoffDelay(4, 500, 30_000)));
  assert.ok(spread.size > 1, "jittered");
});

Deno.test("a result too large for one frame loses per-step detail, never its metrics", () => {
  const turn = { kind: "response" as const, latency_ms: 700, ok: true, run: 1, file: "s", step: 3 };
  const report = {
    metrics: {
      response_latency: { median: 700, sd: 0, p90: 700, n: 1 },
      interrupt_latency: { median: null, sd: null, p90: null, n: 0 },
      network_resilience: null,
      noise_reduction: null,
      naturalness: 50,
    },
    turns: [turn],
    methods: {},
    notes: {},
    ok: true,
    errors: [],
    noise_checks: [],
    runs: [{
      run: 1,
      app: "/tmp/a.yaml",
      suite: "/tmp/s.yaml",
      repetition: 1,
      ok: true,
      error: null,
      steps: Array.from({ length: 5000 }, (_, i) => ({
        file: "x".repeat(60),
        step: i,
        action: "sleep",
        ok: true,
        elapsed_ms: 1,
      })),
      recording: "/tmp/job/out/run-1.wav",
      sample_rate: 48000,
      naturalness: 50,
    }],
    started_at: "",
    finished_at: "",
    version: 1 as const,
  };
  const out = resultReport(report, ["/tmp/job/out/run-1.wav"]) as unknown as typeof report;
  assert.ok(JSON.stringify(out).length < 256 * 1024);
  assert.deepEqual(out.metrics, report.metrics);
  assert.equal(out.runs[0].recording, "recording-1.wav");
  assert.equal(out.runs[0].app, undefined, "no local paths");
});
