import assert from "node:assert/strict";
import { summarize } from "../agent/stats.ts";
import { expandPaths, loadConfig, resolveAudio } from "../agent/config.ts";
import { noiseReduction, type Turn } from "../agent/report.ts";
import { naturalnessScore } from "../agent/naturalness.ts";
import { netemArgs } from "../agent/network.ts";

Deno.test("summarize() gives median, sample sd, interpolated p90 and n; nulls for no values", () => {
  assert.deepEqual(summarize([]), { median: null, sd: null, p90: null, n: 0 });
  assert.deepEqual(summarize([500]), { median: 500, sd: 0, p90: 500, n: 1 });
  const s = summarize([100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]);
  assert.equal(s.median, 550);
  assert.equal(s.p90, 910);
  assert.equal(s.sd, 302.77);
  assert.equal(s.n, 10);
});

Deno.test("audio files resolve against the YAML folder, then assets/ beside it", async () => {
  const config = await loadConfig("tests/fixtures/vat/response.yaml", "scenario");
  assert.match((await resolveAudio(config, "hello.wav"))!, /vat\/assets\/hello\.wav$/);
  assert.match((await resolveAudio(config, "response.yaml"))!, /vat\/response\.yaml$/);
  assert.equal(await resolveAudio(config, "nope.wav"), null);
});

Deno.test("folders expand to their YAML files, sorted", async () => {
  const files = await expandPaths(["tests/fixtures/vat"]);
  assert.ok(files.length >= 5);
  assert.deepEqual(files, [...files].sort());
  assert.ok(files.every((f) => f.endsWith(".yaml")));
});

Deno.test("an application without url or html is refused", async () => {
  await assert.rejects(
    () => loadConfig("tests/fixtures/vat/response.yaml", "application"),
    /response\.yaml: invalid application config at url: needs exactly one of url or html/,
  );
});

Deno.test("noise reduction scores noisy turns against the clean median and noise-only segments by replies", () => {
  const t = (latency: number, noisy: boolean, ok = true): Turn => ({
    kind: "response",
    latency_ms: latency,
    ok,
    noisy,
    run: 1,
    file: "s.yaml",
    step: 1,
  });
  assert.equal(noiseReduction([t(500, false)], []), null);
  assert.equal(noiseReduction([t(500, false), t(1000, true)], []), 50);
  const checks = [{ run: 1, file: "s.yaml", step: 2, triggered: true }, {
    run: 1,
    file: "s.yaml",
    step: 3,
    triggered: false,
  }];
  assert.equal(noiseReduction([t(500, false), t(500, true)], checks), 66.7);
});

Deno.test("naturalness is null without speech and lower for a flat tone than for a moving one", () => {
  const rate = 16000;
  assert.equal(naturalnessScore(new Float32Array(rate * 2), rate), null);
  const tone = (glide: number) => {
    const x = new Float32Array(rate * 3);
    let phase = 0;
    for (let i = 0; i < x.length; i++) {
      const t = i / rate;
      const f = 150 * Math.pow(2, (glide * Math.sin(2 * Math.PI * 0.7 * t)) / 12);
      phase += (2 * Math.PI * f) / rate;
      const gate = Math.floor(t / 0.6) % 3 === 2 && t % 0.6 < 0.2 ? 0 : 1;
      x[i] = 0.3 * Math.sin(phase) * gate * (0.6 + 0.4 * Math.sin(2 * Math.PI * 1.3 * t));
    }
    return x;
  };
  const flat = naturalnessScore(tone(0), rate)!;
  const moving = naturalnessScore(tone(4), rate)!;
  assert.ok(moving > flat, `moving ${moving} > flat ${flat}`);
});

Deno.test("network presets become tc netem arguments; explicit fields override the preset", () => {
  assert.deepEqual(netemArgs({ name: "lossy" }), [
    "netem",
    "delay",
    "40ms",
    "10ms",
    "distribution",
    "normal",
    "loss",
    "5%",
  ]);
  assert.deepEqual(netemArgs({ name: "x", delay_ms: 100, rate_kbit: 500 }), [
    "netem",
    "delay",
    "100ms",
    "rate",
    "500kbit",
  ]);
});
