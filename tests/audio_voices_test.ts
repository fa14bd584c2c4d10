// Voices (issue 18): `speak: { text, voice }` through pluggable engines. A cloud voice
// (openai:alloy) against a local fake of OpenAI's speech API: two runs speak the text once
// (the cache by engine, voice and text), and a missing or wrong key fails the job with a clear
// error and no espeak fallback. flite and espeak-ng voices synthesize locally.
import assert from "node:assert/strict";
import { join } from "node:path";
import { launchChromium } from "../agent/browser.ts";
import { loadConfig, parseConfig } from "../agent/config.ts";
import { runJob } from "../agent/job.ts";
import { parseVoice, prepareSpeech, speak, SpeechError } from "../agent/voices.ts";
import { appFile, serveReferenceAgent } from "../bench/reference_agent.ts";
import { serveFakeTts } from "./fixtures/fake_tts.ts";

const KEY = "sk-test-" + "k".repeat(40);
const fake = serveFakeTts(KEY);
const server = serveReferenceAgent();
const chromium = await launchChromium();
const tmp = await Deno.makeTempDir({ prefix: "vox-voices-" });
Deno.test.afterAll(async () => {
  await chromium.close();
  await server.close();
  await fake.close();
  await Deno.remove(tmp, { recursive: true });
});

const TEXT = "I'd like to move my appointment to Thursday afternoon.";
async function scenario(speech: Parameters<typeof speak>[2]) {
  const suite = await parseConfig(
    {
      steps: [
        { action: "wait_for_element", selector: "body[data-ready='1']" },
        { action: "speak", text: TEXT, voice: "openai:alloy" },
        { action: "wait_for_voice", metrics: "elapsed_time" },
      ],
    },
    { path: join(tmp, "cloud.yaml"), name: "cloud", dir: tmp },
    "scenario",
  );
  suite.speech = speech;
  return suite;
}
const app = () =>
  appFile(`${server.url}agent/index.html?out=webaudio&delay=700`).then((p) => loadConfig(p, "application"));

Deno.test("a cloud voice speaks through the fake once for two runs; both runs hold the accuracy target", async () => {
  const cacheDir = join(tmp, "cache");
  const suite = await scenario({ secrets: { OPENAI_API_KEY: KEY }, cacheDir, openaiUrl: fake.url });
  const { report } = await runJob(await app(), suite, { browser: chromium.browser, outDir: tmp, repeat: 2 });
  assert.equal(report.ok, true, JSON.stringify(report.errors));
  assert.deepEqual(fake.requests, [{
    input: TEXT,
    voice: "alloy",
    model: "gpt-4o-mini-tts",
    accepted: true,
  }]);
  assert.equal(report.turns.length, 2);
  for (const t of report.turns) {
    assert.ok(t.ok && Math.abs(t.latency_ms! - 700) <= 5, `measured ${t.latency_ms} ms for a 700 ms reply`);
  }
  // The spoken audio is kept by its key: the same bytes serve a replay.
  const cached = [...Deno.readDirSync(cacheDir)].map((e) => e.name);
  assert.equal(cached.length, 1);
  assert.match(cached[0], /^tts-[0-9a-f]{64}\.wav$/);
});

Deno.test("a missing or wrong key fails the job with a clear error and nothing is spoken by espeak instead", async () => {
  const before = fake.requests.length;
  const missing = await runJob(await app(), await scenario({ openaiUrl: fake.url }), {
    browser: chromium.browser,
    outDir: tmp,
  });
  assert.equal(missing.report.ok, false);
  assert.match(JSON.stringify(missing.report.errors), /voice openai:alloy needs the secret OPENAI_API_KEY/);
  assert.equal(missing.report.turns.filter((t) => t.ok).length, 0, "no turn was measured with another voice");
  assert.equal(fake.requests.length, before, "no request without a key");

  const wrongKey = "sk-wrong-" + "w".repeat(40);
  const wrong = await runJob(
    await app(),
    await scenario({ secrets: { OPENAI_API_KEY: wrongKey }, openaiUrl: fake.url }),
    { browser: chromium.browser, outDir: tmp },
  );
  assert.equal(wrong.report.ok, false);
  const errors = JSON.stringify(wrong.report.errors);
  assert.match(
    errors,
    /the OpenAI speech API refused the key \(HTTP 401 invalid_api_key\); nothing was spoken/,
  );
  assert.ok(!errors.includes(wrongKey.slice(-4)), "no part of the key in the error");
  assert.equal(wrong.report.turns.filter((t) => t.ok).length, 0);
  assert.equal(fake.requests.at(-1)!.accepted, false);

  // The daemon checks every text before a browser starts (agent/daemon.ts): same errors, by step.
  await assert.rejects(
    prepareSpeech([await scenario({ secrets: { OPENAI_API_KEY: wrongKey }, openaiUrl: fake.url })]),
    (err) =>
      err instanceof SpeechError &&
      /^step 2 \(speak\): voice openai:alloy: .*refused the key/.test(err.message),
  );
});

Deno.test("espeak-ng and flite voices synthesize locally; voices parse by engine", async () => {
  assert.deepEqual(parseVoice(undefined), { engine: "espeak", voice: "en-us" });
  assert.deepEqual(parseVoice("en-gb"), { engine: "espeak", voice: "en-gb" });
  assert.deepEqual(parseVoice("flite:slt"), { engine: "flite", voice: "slt" });
  assert.deepEqual(parseVoice("openai:alloy"), { engine: "openai", voice: "alloy" });
  for (const voice of ["en-us", "espeak:en-gb", "flite:slt", "flite:rms"]) {
    const wav = await speak("-f/etc/passwd is spoken, not read", voice);
    assert.equal(new TextDecoder().decode(wav.subarray(0, 4)), "RIFF", voice);
    assert.ok(wav.length > 10_000, `${voice}: ${wav.length} bytes`);
  }
  await assert.rejects(speak("hi", "flite:nosuchvoice"), SpeechError);
});
