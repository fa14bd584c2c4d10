// Turn taking (issue 20) against the reference agent's known behaviour, in real Chromium:
// its turn-end silence (`endpoint`) against the caller's pause, its minimum sustained speech
// before yielding (`yield_ms`) against a backchannel and a real barge-in, and its voice
// threshold (`vad_db`) against a bystander's speech. Accuracy targets are the Web Audio ones of
// docs/agent.md (response 5 ms, interrupt 10 ms).
import assert from "node:assert/strict";
import { join } from "node:path";
import { launchChromium } from "../agent/browser.ts";
import { loadConfig } from "../agent/config.ts";
import { runJob } from "../agent/job.ts";
import type { Report, Turn } from "../agent/report.ts";
import { appFile, collectTruth, serveReferenceAgent } from "../bench/reference_agent.ts";

const server = serveReferenceAgent();
const chromium = await launchChromium();
const outDir = await Deno.makeTempDir({ prefix: "vox-turns-test-" });
Deno.test.afterAll(async () => {
  await chromium.close();
  await server.close();
  await Deno.remove(outDir, { recursive: true });
});

const agent = (query: string) =>
  appFile(`${server.url}agent/index.html?out=webaudio&${query}`).then((p) => loadConfig(p, "application"));

/** A fixture scenario with its placeholders filled, written beside a copy. */
async function scenario(name: string, fill: Record<string, string | number> = {}) {
  let text = await Deno.readTextFile(`tests/fixtures/turns/${name}.yaml`);
  for (const [k, v] of Object.entries(fill)) text = text.replaceAll(k, String(v));
  const dir = await Deno.makeTempDir({ dir: outDir });
  const path = join(dir, `${name}.yaml`);
  await Deno.writeTextFile(path, text);
  return await loadConfig(path, "scenario");
}

type Truth = {
  kind: string;
  latency_ms?: number | null;
  caller_end_frame?: number;
  voice_start_frame?: number;
  caller_start_frame?: number;
  voice_end_frame?: number;
};

async function run(query: string, suite: Awaited<ReturnType<typeof scenario>>) {
  const { report } = await runJob(await agent(query), suite, {
    browser: chromium.browser,
    outDir,
    collect: collectTruth,
  });
  assert.equal(report.ok, true, JSON.stringify(report.errors));
  return { report, truth: report.runs[0].collected as Truth[] };
}

const ofKind = (r: Report, kind: Turn["kind"]) => r.turns.filter((t) => t.kind === kind);

/** Prints a measured figure beside its truth (for the record; the assertions bound them). */
const figure = (what: string, measured: number, truth: number) =>
  console.log(
    `figure ${what}: measured ${measured} ms, truth ${truth.toFixed(2)} ms, |err| ${
      Math.abs(measured - truth).toFixed(2)
    } ms`,
  );

Deno.test("an agent whose turn-end silence is shorter than the pause takes over (rate 1)", async () => {
  const { report, truth } = await run("endpoint=250&delay=400", await scenario("pause", { PAUSE_MS: 1500 }));
  const [p] = ofKind(report, "pause");
  assert.equal(p.took_over, true, JSON.stringify(p));
  assert.equal(report.metrics.turn_taking?.pause_takeover_rate, 1);
  assert.equal(report.metrics.turn_taking?.n_pause, 1);
  assert.equal(report.methods.turn_taking, "vox-turntaking/1");
  // The agent's first reply is its takeover: 400 ms after the caller's last voiced sample.
  const reply = truth.find((t) => t.kind === "response")!;
  assert.equal(p.caller_voiced_end_frame, reply.caller_end_frame);
  figure("takeover", p.takeover_ms!, reply.latency_ms!);
  assert.ok(
    Math.abs(p.takeover_ms! - reply.latency_ms!) <= 5,
    `takeover ${p.takeover_ms}, truth ${reply.latency_ms}`,
  );
  // The caller resumed exactly at the end of the pause.
  assert.ok(Math.abs(p.pause_heard_ms! - 1500) <= 1, `pause heard ${p.pause_heard_ms}`);
  assert.ok(report.metrics.turn_taking!.penalty_ms! >= 1000, JSON.stringify(report.metrics.turn_taking));
});

Deno.test(
  "an agent whose turn-end silence is longer than the pause waits (rate 0) and its reply is timed exactly",
  async () => {
    const { report, truth } = await run(
      "endpoint=2000&delay=2300",
      await scenario("pause", { PAUSE_MS: 800 }),
    );
    const [p] = ofKind(report, "pause");
    assert.equal(p.took_over, false, JSON.stringify(p));
    assert.equal(p.takeover_ms, null);
    assert.ok(Math.abs(p.pause_heard_ms! - 800) <= 1, `pause heard ${p.pause_heard_ms}`);
    assert.equal(report.metrics.turn_taking?.pause_takeover_rate, 0);
    // One reply, after the resumed speech; measured against the agent's own clock.
    const responses = ofKind(report, "response");
    const real = truth.filter((t) => t.kind === "response");
    assert.equal(responses.length, 1, JSON.stringify(report.turns));
    assert.equal(real.length, 1, JSON.stringify(truth));
    assert.equal(responses[0].caller_voiced_end_frame, real[0].caller_end_frame);
    const err = Math.abs(responses[0].latency_ms! - real[0].latency_ms!);
    figure("response after a held pause", responses[0].latency_ms!, real[0].latency_ms!);
    assert.ok(err <= 5, `measured ${responses[0].latency_ms}, truth ${real[0].latency_ms}`);
    assert.equal(ofKind(report, "interrupt").length, 0);
  },
);

Deno.test("an agent that yields to any voice stops for a backchannel (rate 1), timed like an interruption", async () => {
  const { report, truth } = await run("endpoint=250&delay=400&stop=300", await scenario("backchannel"));
  const [b] = ofKind(report, "backchannel");
  assert.equal(b.stopped, true, JSON.stringify(b));
  assert.equal(report.metrics.turn_taking?.backchannel_stop_rate, 1);
  assert.equal(report.metrics.turn_taking?.n_backchannel, 1);
  const real = truth.filter((t) => t.kind === "interrupt");
  const first = real.find((t) => t.caller_start_frame === b.caller_voiced_start_frame);
  assert.ok(first, `no truth for the backchannel at ${b.caller_voiced_start_frame}: ${JSON.stringify(real)}`);
  figure("backchannel stop", b.stop_latency_ms!, first.latency_ms!);
  assert.ok(
    Math.abs(b.stop_latency_ms! - first.latency_ms!) <= 10,
    `stop ${b.stop_latency_ms}, truth ${first.latency_ms}`,
  );
});

Deno.test(
  "an agent that needs sustained speech keeps talking through a backchannel (rate 0) but stops for a barge-in",
  async () => {
    const { report, truth } = await run(
      "endpoint=250&delay=400&stop=300&yield_ms=900",
      await scenario("backchannel"),
    );
    const [b] = ofKind(report, "backchannel");
    assert.equal(b.stopped, false, JSON.stringify(b));
    assert.equal(report.metrics.turn_taking?.backchannel_stop_rate, 0);
    assert.ok(truth.some((t) => t.kind === "backchannel_ignored"), JSON.stringify(truth));
    const [i] = ofKind(report, "interrupt");
    assert.equal(i?.ok, true, JSON.stringify(report.turns));
    const real = truth.find((t) =>
      t.kind === "interrupt" && t.caller_start_frame === i.caller_voiced_start_frame
    );
    assert.ok(real, JSON.stringify(truth));
    figure("barge-in through yield_ms", i.latency_ms!, real.latency_ms!);
    assert.ok(
      Math.abs(i.latency_ms! - real.latency_ms!) <= 10,
      `measured ${i.latency_ms}, truth ${real.latency_ms}`,
    );
    assert.equal(report.metrics.interrupt_latency.n, 1);
  },
);

Deno.test("a bystander below the agent's voice threshold never triggers it; a loud one does", async () => {
  const quiet = await run(
    "endpoint=250&delay=400&stop=300&vad_db=-30",
    await scenario("nearby", { GAIN_DB: -35 }),
  );
  const turns = ofKind(quiet.report, "background");
  assert.equal(turns.length, 2);
  assert.deepEqual(turns.map((t) => [t.triggered, t.stopped_agent]), [[false, false], [false, false]]);
  assert.equal(quiet.report.metrics.turn_taking?.background_false_trigger_rate, 0);
  assert.equal(quiet.report.metrics.turn_taking?.n_background, 2);
  // The agent's truth agrees: it heard one caller turn and nothing else.
  assert.equal(quiet.truth.filter((t) => t.kind === "caller_end").length, 1, JSON.stringify(quiet.truth));

  const loud = await run("endpoint=250&delay=400&stop=300&vad_db=-30", await scenario("nearby_loud"));
  const [t] = ofKind(loud.report, "background");
  assert.equal(t.triggered, true, JSON.stringify(t));
  assert.equal(loud.report.metrics.turn_taking?.background_false_trigger_rate, 1);
});

Deno.test("the shipped turn-taking eval set gives the reference agent's known answers", async () => {
  const suite = await loadConfig("assets/eval_sets/turn_taking.yaml", "scenario");
  // Takes the turn after 1500 ms of silence, needs 900 ms of speech to yield, hears above -20 dBFS:
  // the 1200 ms pause is held, the 2000 and 3000 ms ones are taken over; neither backchannel
  // (the library's "Uh-huh." and "Okay.", about 0.2 and 0.5 s above -20 dBFS) stops it; the
  // bystander (library clips peak near -3 dBFS, so near -23 at its -20 dB) is never heard.
  const { report, truth } = await run("endpoint=1500&delay=500&stop=300&yield_ms=900&vad_db=-20", suite);
  assert.deepEqual(
    ofKind(report, "pause").map((t) => t.took_over),
    [false, true, true],
    JSON.stringify(report.turns),
  );
  assert.deepEqual(ofKind(report, "backchannel").map((t) => t.stopped), [false, false]);
  assert.deepEqual(ofKind(report, "background").map((t) => t.triggered || t.stopped_agent), [false, false]);
  const tt = report.metrics.turn_taking!;
  assert.deepEqual(
    [tt.pause_takeover_rate, tt.backchannel_stop_rate, tt.background_false_trigger_rate],
    [0.6667, 0, 0],
  );
  assert.deepEqual([tt.n_pause, tt.n_backchannel, tt.n_background], [3, 2, 2]);
  // Every pause was heard at its length, and each takeover is the agent's own reply to the first
  // half (its detector, at -20 dBFS, ends the caller's speech a little earlier than Vox's -40).
  assert.deepEqual(ofKind(report, "pause").map((t) => Math.round(t.pause_heard_ms!)), [1200, 2000, 3000]);
  for (const p of ofKind(report, "pause").filter((t) => t.took_over)) {
    const sr = p.sample_rate!;
    const from = p.caller_voiced_end_frame!;
    const real = truth.find((t) =>
      t.kind === "response" && t.voice_start_frame! > from &&
      t.voice_start_frame! < from + (p.pause_ms! * sr) / 1000
    );
    assert.ok(real, `no truth for the takeover after ${from}: ${JSON.stringify(truth)}`);
    const err = (Math.abs(p.agent_frame! - real.voice_start_frame!) / sr) * 1000;
    assert.ok(err <= 5, `takeover at ${p.agent_frame}, truth ${real.voice_start_frame}`);
  }
  assert.ok(truth.filter((t) => t.kind === "backchannel_ignored").length === 2, JSON.stringify(truth));
});
