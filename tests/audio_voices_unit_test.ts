// Voices without a browser (issue 18): Festival's HTS voice (Debian's festival and
// festvox-us-slt-hts) synthesizes a WAV of plausible length, cached by (engine, voice, text);
// an unknown Festival voice and a missing Festival are clear errors. A replay speaks the audio
// it holds by key and synthesizes nothing; a text it does not hold is an error; a run-mode
// report's speech is read only by its hash names and verified.
import assert from "node:assert/strict";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { loadReplay, parseResultUrl, ReplayError } from "../agent/replay.ts";
import { parseVoice, speak, SpeechError, speechKey, type SpokenAudio } from "../agent/voices.ts";

const tmp = await Deno.makeTempDir({ prefix: "vox-voices-unit-" });
Deno.test.afterAll(() => Deno.remove(tmp, { recursive: true }));

/** Duration in ms of a PCM WAV, from its fmt and data chunks. */
function wavMs(wav: Uint8Array): number {
  const view = new DataView(wav.buffer, wav.byteOffset, wav.byteLength);
  assert.equal(new TextDecoder().decode(wav.subarray(0, 4)), "RIFF");
  let off = 12, byteRate = 0;
  while (off + 8 <= wav.length) {
    const id = new TextDecoder().decode(wav.subarray(off, off + 4));
    const size = view.getUint32(off + 4, true);
    if (id === "fmt ") byteRate = view.getUint32(off + 16, true);
    if (id === "data") return (Math.min(size, wav.length - off - 8) / byteRate) * 1000;
    off += 8 + size + (size & 1);
  }
  throw new Error("no data chunk");
}

const SLT = "festival:cmu_us_slt_arctic_hts";

Deno.test("Festival's HTS voice speaks a WAV of plausible length, synthesized once per (engine, voice, text)", async () => {
  assert.deepEqual(parseVoice(SLT), { engine: "festival", voice: "cmu_us_slt_arctic_hts" });
  const cacheDir = join(tmp, "cache");
  const spoken = new Map<string, SpokenAudio>();
  const text = "I would like to book a table for two on Friday evening.";
  const wav = await speak(text, SLT, { cacheDir, spoken });
  // Eleven words at a conversational 2–4 words a second.
  const ms = wavMs(wav);
  assert.ok(ms > 2000 && ms < 6000, `${ms} ms for eleven words`);
  const key = speechKey("festival", "cmu_us_slt_arctic_hts", text);
  assert.deepEqual([...Deno.readDirSync(cacheDir)].map((e) => e.name), [`tts-${key}.wav`]);
  assert.equal(spoken.get(key)?.engine, "festival");

  // The second time comes from the cache: a marker written into the cached file comes back.
  const marked = wav.slice();
  marked[marked.length - 1] ^= 0xff;
  await Deno.writeFile(join(cacheDir, `tts-${key}.wav`), marked);
  assert.deepEqual(await speak(text, SLT, { cacheDir }), marked);
  // Another text, another voice or another engine is another key.
  assert.notEqual(speechKey("festival", "cmu_us_slt_arctic_hts", text + "!"), key);
  assert.notEqual(speechKey("flite", "slt", text), key);
});

Deno.test("an unknown Festival voice, or no Festival at all, is a clear error, not another voice", async () => {
  await assert.rejects(
    speak("hello", "festival:kal_diphone_nosuch"),
    (err) =>
      err instanceof SpeechError &&
      /Festival has no such voice \(it has .*cmu_us_slt_arctic_hts/.test(err.message),
  );
  await assert.rejects(speak("hello", "festival:../x"), SpeechError);
  const old = Deno.env.get("FESTIVAL_PATH");
  Deno.env.set("FESTIVAL_PATH", join(tmp, "no-festival"));
  try {
    await assert.rejects(
      speak("hello", SLT),
      (err) =>
        err instanceof SpeechError &&
        /^voice festival:cmu_us_slt_arctic_hts: Festival is not installed .*apt-get install festival festvox-us-slt-hts$/
          .test(err.message),
    );
  } finally {
    if (old === undefined) Deno.env.delete("FESTIVAL_PATH");
    else Deno.env.set("FESTIVAL_PATH", old);
  }
});

Deno.test("a replay speaks the audio it holds by key and synthesizes nothing; a text it lacks is an error", async () => {
  const held = new Uint8Array([82, 73, 70, 70, 1, 2, 3]);
  const key = speechKey("espeak", "en-us", "Hello there");
  const replay = { of: "http://vox.test/api/v1/results/7", audio: new Map([[key, held]]) };
  const old = Deno.env.get("ESPEAK_PATH");
  // Were anything synthesized, it would fail: espeak-ng is not where this says.
  Deno.env.set("ESPEAK_PATH", join(tmp, "no-espeak"));
  try {
    const spoken = new Map<string, SpokenAudio>();
    assert.deepEqual(await speak("Hello there", undefined, { replay, spoken }), held);
    assert.equal(spoken.get(key)?.bytes, held.length);
    await assert.rejects(
      speak("Hello there!", undefined, { replay }),
      (err) =>
        err instanceof SpeechError &&
        err.message ===
          'replay of http://vox.test/api/v1/results/7: it holds no audio for espeak:en-us "Hello there!"; nothing was spoken',
    );
  } finally {
    if (old === undefined) Deno.env.delete("ESPEAK_PATH");
    else Deno.env.set("ESPEAK_PATH", old);
  }
});

Deno.test("--replay takes a result's API or console URL and nothing else", () => {
  assert.deepEqual(parseResultUrl("https://vox.example/api/v1/results/42"), {
    base: "https://vox.example",
    resultId: 42,
  });
  assert.deepEqual(parseResultUrl("http://127.0.0.1:8000/vox/console/results/9/"), {
    base: "http://127.0.0.1:8000/vox",
    resultId: 9,
  });
  for (
    const bad of [
      "42",
      "file:///etc/results/1",
      "https://vox.example/api/v1/jobs/4",
      "https://x/results/1?a=b",
    ]
  ) {
    assert.throws(() => parseResultUrl(bad), ReplayError, bad);
  }
});

Deno.test("--replay <report.json> reads only speech-<sha256>.wav beside the report or in recordings/, verified", async () => {
  const dir = join(tmp, "run");
  await Deno.mkdir(join(dir, "recordings"), { recursive: true });
  const audio = await speak("Yes, that works for me.", "festival:cmu_us_slt_arctic_hts");
  const sha256 = createHash("sha256").update(audio).digest("hex");
  const key = speechKey("festival", "cmu_us_slt_arctic_hts", "Yes, that works for me.");
  const report = join(dir, "report.json");
  const listed = {
    key,
    engine: "festival",
    voice: "cmu_us_slt_arctic_hts",
    text: "Yes, that works for me.",
    sha256,
    bytes: audio.length,
    artifact: `speech-${sha256}.wav`,
  };
  await Deno.writeTextFile(report, JSON.stringify({ speech: [listed] }));
  const opts = { apiKey: undefined, cacheDir: join(tmp, "unused") };
  await assert.rejects(
    loadReplay(report, opts),
    (err) => err instanceof ReplayError && /no speech-.* beside/.test(err.message),
  );

  await Deno.writeFile(join(dir, "recordings", `speech-${sha256}.wav`), audio);
  const got = await loadReplay(report, opts);
  assert.deepEqual(got.audio.audio.get(key), audio);
  assert.deepEqual(got.info, {
    of: report,
    result_id: null,
    job_id: null,
    utterances: 1,
    fetched: 0,
    cached: 1,
  });

  // Other bytes under that name are refused, not spoken.
  await Deno.writeFile(join(dir, "recordings", `speech-${sha256}.wav`), audio.subarray(0, 1000));
  await assert.rejects(
    loadReplay(report, opts),
    (err) => err instanceof ReplayError && /refused$/.test(err.message),
  );
  // The listed artifact is never a path that is opened: only the hash's name is looked up.
  await Deno.writeTextFile(report, JSON.stringify({ speech: [{ ...listed, sha256: "../../etc/passwd" }] }));
  await assert.rejects(
    loadReplay(report, opts),
    (err) => err instanceof ReplayError && /not a Vox report/.test(err.message),
  );
});
