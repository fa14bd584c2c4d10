import assert from "node:assert/strict";
import { launchChromium } from "../agent/browser.ts";
import { loadConfig } from "../agent/config.ts";
import { runJob } from "../agent/job.ts";
import {
  appFile,
  collectTruth,
  pairTurns,
  serveReferenceAgent,
  type TruthRecord,
} from "../bench/reference_agent.ts";
import { TARGETS } from "../bench/scoring.ts";

const server = serveReferenceAgent();
const chromium = await launchChromium();
const outDir = await Deno.makeTempDir({ prefix: "vox-agent-test-" });
Deno.test.afterAll(async () => {
  await chromium.close();
  await server.close();
  await Deno.remove(outDir, { recursive: true });
});
const suite = await loadConfig("tests/fixtures/vat/barge_in.yaml", "scenario");

// Issue 5 targets: |error| of response / interrupt latency per output path (the benches' own).
const targets = TARGETS;

/** A WAV file that is stereo with speech on both sides: the caller left, the agent right. */
async function assertStereoSpeech(path: string) {
  const bytes = await Deno.readFile(path);
  const v = new DataView(bytes.buffer);
  assert.equal(new TextDecoder().decode(bytes.subarray(0, 4)), "RIFF");
  assert.equal(v.getUint16(22, true), 2);
  let left = 0;
  let right = 0;
  for (let o = 44; o + 4 <= bytes.length; o += 4) {
    left = Math.max(left, Math.abs(v.getInt16(o, true)));
    right = Math.max(right, Math.abs(v.getInt16(o + 2, true)));
  }
  assert.ok(left > 3000 && right > 3000, `both sides carry speech (left ${left}, right ${right})`);
}

for (const [out, target] of Object.entries(targets)) {
  Deno.test(
    `response and interrupt latency match the reference agent's truth on ${out} output; the run is one stereo WAV`,
    async () => {
      const app = await loadConfig(
        await appFile(`${server.url}agent/index.html?out=${out}&delay=900&stop=350`),
        "application",
      );
      const { report, recordings } = await runJob(app, suite, {
        browser: chromium.browser,
        outDir,
        collect: collectTruth,
      });
      assert.equal(report.ok, true, JSON.stringify(report.errors));
      const pairs = pairTurns(report.turns, report.runs[0].collected as TruthRecord[]);
      assert.deepEqual(pairs.map((p) => p.kind), ["response", "response", "interrupt"]);
      for (const p of pairs) {
        assert.ok(p.error != null, `${p.kind} turn measured ${p.measured}, truth ${p.truth}`);
        // An element's stop that fell just before a word has no single true end (see agent.js).
        if (p.ambiguous) continue;
        const limit = target[p.kind as "response" | "interrupt"];
        assert.ok(
          p.error <= limit,
          `${out} ${p.kind}: measured ${p.measured} ms, truth ${p.truth} ms, limit ${limit}`,
        );
      }
      assert.ok(report.turns.every((t) => t.ok));
      assert.equal(report.metrics.response_latency.n, 2);
      assert.equal(report.metrics.interrupt_latency.n, 1);
      assert.equal(recordings.length, 1);
      await assertStereoSpeech(recordings[0]);
    },
  );
}

Deno.test(
  "an agent that does not stop is a failed interruption, reported with a null latency",
  async () => {
    const app = await loadConfig(
      await appFile(`${server.url}agent/index.html?out=webaudio&delay=600&stop=never`),
      "application",
    );
    const stopSuite = await loadConfig("tests/fixtures/vat/barge_in_timeout.yaml", "scenario");
    const { report } = await runJob(app, stopSuite, { browser: chromium.browser, outDir });
    const interrupt = report.turns.find((t) => t.kind === "interrupt");
    assert.ok(interrupt);
    assert.equal(interrupt.ok, false);
    assert.equal(interrupt.latency_ms, null);
    assert.match(interrupt.note ?? "", /did not stop within 1000 ms/);
    assert.equal(report.metrics.interrupt_latency.n, 0);
  },
);
