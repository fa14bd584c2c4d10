import assert from "node:assert/strict";
import { join } from "node:path";
import { launchChromium } from "../agent/browser.ts";
import { loadConfig, parseConfig } from "../agent/config.ts";
import { runJob } from "../agent/job.ts";
import type { StepProgress } from "../agent/runner.ts";
import {
  appFile,
  collectTruth,
  pairTurns,
  serveReferenceAgent,
  type TruthRecord,
} from "../bench/reference_agent.ts";

const server = serveReferenceAgent();
const chromium = await launchChromium();
const outDir = await Deno.makeTempDir({ prefix: "vox-agent-test-" });
Deno.test.afterAll(async () => {
  await chromium.close();
  await server.close();
  await Deno.remove(outDir, { recursive: true });
});
const agent = (query: string) =>
  appFile(`${server.url}agent/index.html?${query}`).then((p) => loadConfig(p, "application"));

Deno.test(
  "noise alone does not count as a reply from a robust agent; noisy speech is answered",
  async () => {
    const suite = await loadConfig("tests/fixtures/vat/noise.yaml", "scenario");
    const { report } = await runJob(
      await agent("out=webaudio&delay=700&vad_db=-20&min_speech_ms=300"),
      suite,
      {
        browser: chromium.browser,
        outDir,
      },
    );
    assert.equal(report.ok, true, JSON.stringify(report.errors));
    assert.equal(report.turns.length, 1);
    assert.equal(report.turns[0].noisy, true);
    assert.equal(report.turns[0].ok, true);
    assert.deepEqual(report.noise_checks.map((c) => c.triggered), [false]);
    assert.equal(report.metrics.noise_reduction, 100);
  },
);

Deno.test(
  "scenario background noise given as an SNR sits 15 dB under the caller in the recording",
  async () => {
    const suite = await loadConfig("tests/fixtures/vat/background_snr.yaml", "scenario");
    const { report } = await runJob(
      await agent("out=webaudio&delay=700&vad_db=-20&min_speech_ms=300"),
      suite,
      {
        browser: chromium.browser,
        outDir,
      },
    );
    assert.equal(report.ok, true, JSON.stringify(report.errors));
    const [turn] = report.turns;
    assert.equal(turn.noisy, true);
    const run = report.runs[0];
    const bytes = await Deno.readFile(run.recording!);
    const v = new DataView(bytes.buffer);
    const left = (frame: number) => v.getInt16(44 + (frame - run.recording_first_frame!) * 4, true) / 32768;
    const rms = (from: number, to: number) => {
      let s = 0;
      for (let f = from; f < to; f++) s += left(f) ** 2;
      return Math.sqrt(s / (to - from));
    };
    const sr = turn.sample_rate!;
    // Noise alone: the 300 ms of trailing silence in the prompt, after the last voiced sample.
    const noise = rms(turn.caller_voiced_end_frame! + sr * 0.05, turn.caller_voiced_end_frame! + sr * 0.25);
    const mixed = rms(turn.caller_voiced_start_frame!, turn.caller_voiced_end_frame!);
    const snr = 20 * Math.log10(Math.sqrt(Math.max(1e-12, mixed ** 2 - noise ** 2)) / noise);
    assert.ok(Math.abs(snr - 15) <= 1.5, `SNR ${snr.toFixed(2)} dB`);
  },
);

Deno.test("a noise-sensitive agent that answers noise is caught and scored down", async () => {
  const suite = await loadConfig("tests/fixtures/vat/noise.yaml", "scenario");
  const { report } = await runJob(await agent("out=webaudio&delay=700&vad_db=-55&min_speech_ms=100"), suite, {
    browser: chromium.browser,
    outDir,
  });
  assert.deepEqual(report.noise_checks.map((c) => c.triggered), [true]);
  assert.ok(report.metrics.noise_reduction != null && report.metrics.noise_reduction <= 50);
});

Deno.test(
  "a page that speaks first (greeting) is waited for, then the reply is timed exactly",
  async () => {
    const suite = await loadConfig("tests/fixtures/vat/greeting.yaml", "scenario");
    const { report } = await runJob(await agent("out=webaudio&delay=1100&greet=1"), suite, {
      browser: chromium.browser,
      outDir,
      collect: collectTruth,
    });
    assert.equal(report.ok, true, JSON.stringify(report.errors));
    const pairs = pairTurns(report.turns, report.runs[0].collected as TruthRecord[]);
    assert.equal(pairs.length, 1);
    assert.ok(pairs[0].error != null && pairs[0].error <= 5, JSON.stringify(pairs));
    const step = report.runs[0].steps.find((s) => s.metrics?.elapsed_time != null);
    assert.ok(step, "metrics: elapsed_time is still reported");
  },
);

Deno.test(
  "noise while the agent talks: a robust agent keeps talking, a sensitive one stops",
  async () => {
    const suite = await loadConfig("tests/fixtures/vat/noise_during_reply.yaml", "scenario");
    const robust = await runJob(await agent("out=webaudio&delay=500&vad_db=-20&min_speech_ms=300"), suite, {
      browser: chromium.browser,
      outDir,
    });
    assert.equal(robust.report.ok, true, JSON.stringify(robust.report.errors));
    assert.deepEqual(robust.report.noise_checks.map((c) => [c.triggered, c.stopped_agent]), [[false, false]]);
    const sensitive = await runJob(await agent("out=webaudio&delay=500&vad_db=-55&stop=200"), suite, {
      browser: chromium.browser,
      outDir,
    });
    assert.equal(sensitive.report.noise_checks[0].stopped_agent, true);
    assert.equal(sensitive.report.metrics.noise_reduction, 0);
  },
);

Deno.test("speak: { text } is synthesized and reaches the microphone", async () => {
  const suite = await loadConfig("tests/fixtures/vat/speak_text.yaml", "scenario");
  // Web Audio output, whose truth is exact: an <audio src> page's truth (a wall-clock play()) drifts
  // ~25 ms under the suite's parallel load, which is agent_accuracy_test's subject (run alone), not this one's.
  const { report } = await runJob(await agent("out=webaudio&delay=800"), suite, {
    browser: chromium.browser,
    outDir,
    collect: collectTruth,
  });
  assert.equal(report.ok, true, JSON.stringify(report.errors));
  const pairs = pairTurns(report.turns, report.runs[0].collected as TruthRecord[]);
  assert.equal(pairs.length, 1);
  assert.ok(pairs[0].error != null && pairs[0].error <= 10, JSON.stringify(pairs));
});

Deno.test(
  "a failing selector stops the run with an error naming the file and step; turns so far are kept",
  async () => {
    const suite = await loadConfig("tests/fixtures/bad/bad_selector.yaml", "scenario");
    const { report } = await runJob(await agent("out=webaudio&delay=600"), suite, {
      browser: chromium.browser,
      outDir,
    });
    assert.equal(report.ok, false);
    assert.equal(report.errors.length, 1);
    assert.match(report.errors[0].file, /bad_selector\.yaml$/);
    assert.equal(report.errors[0].step, 4);
    assert.equal(report.errors[0].action, "click");
    assert.match(report.errors[0].message, /#no-such-button/);
    assert.equal(report.turns.length, 1);
    assert.equal(report.metrics.response_latency.n, 1);
  },
);

Deno.test("a corrupt audio file fails its speak step with a decoding error", async () => {
  const suite = await loadConfig("tests/fixtures/bad/corrupt_audio.yaml", "scenario");
  const { report } = await runJob(await agent("out=webaudio"), suite, { browser: chromium.browser, outDir });
  assert.equal(report.ok, false);
  assert.equal(report.errors[0].step, 2);
  assert.equal(report.errors[0].action, "speak");
  assert.match(report.errors[0].message, /could not be decoded/);
});

Deno.test(
  "network profiles run on a host without netem through the relay method; resilience is a number",
  async () => {
    const suite = await loadConfig("tests/fixtures/vat/network.yaml", "scenario");
    const { report } = await runJob(await agent("out=webaudio&delay=600"), suite, {
      browser: chromium.browser,
      outDir,
    });
    assert.equal(report.ok, true, JSON.stringify(report.errors));
    assert.match(report.notes.network_resilience, /3g, custom/);
    assert.equal(report.metrics.response_latency.n, 1);
    assert.deepEqual(report.network?.map((p) => p.profile), ["3g", "custom"]);
    // An agent that runs entirely in the page loses nothing to the network.
    assert.equal(typeof report.metrics.network_resilience, "number");
    for (const p of report.network!) assert.equal(p.turns_failed, 0, JSON.stringify(p));
  },
);

Deno.test("a reply that starts while the caller is still talking is recorded, not lost", async () => {
  const suite = await loadConfig("tests/fixtures/vat/speak_text.yaml", "scenario");
  // An impatient agent: it takes the comma in the caller's sentence for the end of the turn.
  const { report } = await runJob(await agent("out=webaudio&delay=300&endpoint=60&min_speech_ms=50"), suite, {
    browser: chromium.browser,
    outDir,
    collect: collectTruth,
  });
  assert.equal(report.ok, true, JSON.stringify(report.errors));
  const [turn] = report.turns;
  assert.equal(turn.ok, false);
  assert.match(turn.note ?? "", /before the caller had finished/);
  const truth = (report.runs[0].collected as { kind: string; voice_start_frame?: number }[])
    .find((t) => t.kind === "response")!;
  const expected = ((truth.voice_start_frame! - turn.caller_voiced_end_frame!) / turn.sample_rate!) * 1000;
  assert.ok(expected < 0);
  assert.ok(Math.abs(turn.latency_ms! - expected) <= 5, `measured ${turn.latency_ms}, truth ${expected}`);
  assert.equal(report.metrics.response_latency.n, 0);
});

Deno.test(
  "an html application: constraints are honoured and a detached new Audio() greeting is heard",
  async () => {
    const app = await loadConfig("tests/fixtures/vat/html_app.yaml", "application");
    const suite = await loadConfig("tests/fixtures/vat/greeting.yaml", "scenario");
    const trimmed = { ...suite, steps: suite.steps.slice(0, 2) };
    const { report } = await runJob(app, trimmed, { browser: chromium.browser, outDir });
    assert.equal(report.ok, true, JSON.stringify(report.errors));
    assert.ok(report.runs[0].steps.every((s) => s.ok));
  },
);

Deno.test(
  "runJob() takes configs as JSON (as a daemon job carries them) and reports step progress",
  async () => {
    const meta = (name: string) => ({ path: `job:${name}`, name, dir: outDir });
    const app = await parseConfig(
      { url: `${server.url}agent/index.html?out=webaudio&delay=700` },
      meta("app"),
      "application",
    );
    const suite = await parseConfig(
      {
        steps: [
          { action: "wait_for_element", selector: "body[data-ready='1']" },
          { action: "speak", text: "I would like a window seat." },
          { action: "wait_for_voice" },
        ],
      },
      meta("suite"),
      "scenario",
    );
    const seen: StepProgress[] = [];
    const { report, recordings } = await runJob(app, suite, {
      browser: chromium.browser,
      outDir,
      onStep: (p) => seen.push(p),
    });
    assert.equal(report.ok, true, JSON.stringify(report.errors));
    assert.deepEqual(seen.filter((p) => !p.turn).map((p) => [p.step, p.totalSteps]), [[1, 3], [2, 3], [
      3,
      3,
    ]]);
    const turn = seen.find((p) => p.turn)?.turn;
    assert.equal(turn?.kind, "response");
    assert.equal(recordings.length, 1);
    await assert.rejects(
      () => parseConfig({ steps: [{ action: "speak" }] }, meta("bad"), "scenario"),
      /job:bad step 1 \(speak\): needs exactly one of file or text/,
    );
  },
);

Deno.test(
  "an aborted job stops at its current wait and fails as cancelled, keeping its report",
  async () => {
    const suite = await loadConfig("tests/fixtures/vat/speak_text.yaml", "scenario");
    const abort = new AbortController();
    // This agent never answers; the job is cancelled once the caller has spoken.
    const { report } = await runJob(await agent("out=webaudio&min_speech_ms=100000"), suite, {
      browser: chromium.browser,
      outDir,
      signal: abort.signal,
      onStep: (p) => p.step === 3 && setTimeout(() => abort.abort(), 500),
    });
    assert.equal(report.ok, false);
    assert.equal(report.errors[0].step, 3);
    assert.match(report.errors[0].message, /cancelled while waiting for the agent's reply/);
    assert.equal(report.runs[0].steps.filter((s) => s.ok).length, 2);
  },
);

Deno.test("an autoplaying <audio> in a shadow root is heard without any play() call", async () => {
  const app = await loadConfig("tests/fixtures/vat/html_autoplay.yaml", "application");
  const suite = await loadConfig("tests/fixtures/vat/greeting.yaml", "scenario");
  const { report } = await runJob(app, { ...suite, steps: suite.steps.slice(0, 2) }, {
    browser: chromium.browser,
    outDir,
    stepTimeoutMs: 10_000,
  });
  assert.equal(report.ok, true, JSON.stringify(report.errors));
});

Deno.test("a voice widget inside a cross-site iframe is hooked, spoken to and measured", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vox-iframe-" });
  const port = new URL(server.url).port;
  const appPath = `${dir}/widget_host.yaml`;
  await Deno.writeTextFile(
    appPath,
    `html: |\n  <iframe src="http://localhost:${port}/agent/index.html?out=webaudio&delay=900" allow="microphone; autoplay"></iframe>\n`,
  );
  const app = await loadConfig(appPath, "application");
  const suite = await loadConfig("tests/fixtures/vat/iframe_turn.yaml", "scenario");
  const { report } = await runJob(app, suite, {
    browser: chromium.browser,
    outDir,
    collect: (page) =>
      page.frames().find((f) => f.url().includes("/agent/index.html"))!.evaluate(() =>
        (globalThis as unknown as { __truth: unknown }).__truth
      ),
  });
  assert.equal(report.ok, true, JSON.stringify(report.errors));
  const pairs = pairTurns(report.turns, report.runs[0].collected as TruthRecord[]);
  assert.equal(pairs.length, 1);
  assert.ok(pairs[0].error != null && pairs[0].error <= 5, JSON.stringify(pairs));
  assert.ok(report.runs[0].recording);
  await Deno.remove(dir, { recursive: true });
});

Deno.test(
  "a page answering the recording pull with {chunks: 1, total: 1e12} cannot hold the run",
  async () => {
    const meta = (name: string) => ({ path: `job:${name}`, name, dir: outDir });
    const app = await parseConfig(
      { url: `${server.url}agent/index.html?out=webaudio&delay=700` },
      meta("app"),
      "application",
    );
    const suite = await parseConfig(
      {
        steps: [
          { action: "wait_for_element", selector: "body[data-ready='1']" },
          { action: "speak", file: "hello.wav" },
          { action: "wait_for_voice" },
          { action: "sleep", time: 1000 },
        ],
      },
      { ...meta("suite"), dir: new URL("./fixtures/vat", import.meta.url).pathname },
      "scenario",
    );
    // The page's own script, once the turn is measured: every pull answers one more tiny chunk
    // of a recording it claims is a terabyte long. (Where the page cannot reach Vox's hooks at
    // all, the override changes nothing and the recording is the real one.)
    const pages: import("puppeteer-core").Page[] = [];
    const onTarget = async (t: import("puppeteer-core").Target) => {
      const p = await t.page().catch(() => null);
      if (p) pages.push(p);
    };
    chromium.browser.on("targetcreated", onTarget);
    let forged: Promise<unknown> = Promise.resolve();
    const run = runJob(app, suite, {
      browser: chromium.browser,
      outDir,
      onStep: (p) => {
        if (p.turn || p.step !== 4) return;
        forged = Promise.all(pages.map((page) =>
          page.evaluate(() => {
            // deno-lint-ignore no-explicit-any
            const vox = (globalThis as any).__vox;
            if (vox) {
              vox.recording = () => ({
                sampleRate: 48000,
                firstFrame: 0,
                chunks: 1,
                total: 1e12,
                b64: "AAAAAA==",
              });
            }
          }).catch(() => {})
        ));
      },
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const hung = new Promise<"hung">((r) => timer = setTimeout(() => r("hung"), 120_000));
    const out = await Promise.race([run, hung]);
    clearTimeout(timer);
    chromium.browser.off("targetcreated", onTarget);
    await forged;
    assert.notEqual(out, "hung", "the run ended");
    const { report } = out as Awaited<typeof run>;
    assert.equal(report.ok, true, JSON.stringify(report.errors));
    assert.equal(report.metrics.response_latency.n, 1, "the turn measured before the forgery stands");
  },
);

Deno.test("an html application's page gets files of its folder and assets/, not a link leading out", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vox-html-links-" });
  try {
    await Deno.mkdir(join(dir, "assets"));
    await Deno.writeTextFile(join(dir, "assets", "ok.txt"), "ok");
    await Deno.symlink("/etc/hostname", join(dir, "leak.txt"));
    const html = `<!doctype html><body><script>
      Promise.all(["assets/ok.txt", "leak.txt"].map((u) => fetch(u).then((r) => r.status)))
        .then(([ok, leak]) => { document.body.dataset.ok = ok; document.body.dataset.leak = leak; });
    </script></body>`;
    const meta = (name: string) => ({ path: join(dir, `${name}.yaml`), name, dir });
    const app = await parseConfig({ html }, meta("app"), "application");
    const suite = await parseConfig(
      {
        steps: [{
          action: "wait_for_element",
          selector: "body[data-ok='200'][data-leak='403']",
          timeout: 10_000,
        }],
      },
      meta("suite"),
      "scenario",
    );
    const { report } = await runJob(app, suite, { browser: chromium.browser, outDir });
    assert.equal(report.ok, true, JSON.stringify(report.errors));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
