// Caller audio uploads (issue 18): each accepted format made with espeak-ng and sox in the test,
// the refusals (a renamed text file, a truncated mp3, a 2-minute clip, an 11 MB file), names,
// content addressing, the eval-set check naming step and clip, and the 409 for a clip in use.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { audioNamesOf, LIBRARY, offerClips } from "../lib/audio.ts";
import { createTestApp } from "./_app.ts";
import { apiKeyFor, createUser } from "./_auth.ts";
import { createTestDatabase } from "./_db.ts";

const db = await createTestDatabase();
const sql = db.sql;
const { app } = await createTestApp(sql);
const dir = await Deno.makeTempDir({ prefix: "vox-audio-test-" });
Deno.test.afterAll(async () => {
  await db.close();
  await Deno.remove(dir, { recursive: true });
});

async function run(cmd: string, ...args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  assert.ok(out.success, `${cmd} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`);
  return new TextDecoder().decode(out.stdout);
}

const u = await createUser(sql);
const key = { authorization: `Bearer ${await apiKeyFor(sql, u.id)}` };
const project = u.defaultProjectId;
const other = await createUser(sql);
const otherKey = { authorization: `Bearer ${await apiKeyFor(sql, other.id)}` };

async function upload(
  bytes: Uint8Array,
  filename: string,
  name?: string,
  headers = key,
  projectId = project,
) {
  const form = new FormData();
  form.append("file", new File([bytes as BlobPart], filename));
  if (name) form.append("name", name);
  const res = await app.request(`/api/v1/projects/${projectId}/audio`, {
    method: "POST",
    headers,
    body: form,
  });
  return { status: res.status, data: await res.json() };
}

async function json(method: string, path: string, body?: unknown, headers = key) {
  const res = await app.request(path, {
    method,
    headers: body === undefined ? headers : { ...headers, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const type = res.headers.get("content-type") ?? "";
  return { status: res.status, data: type.includes("json") ? await res.json() : await res.bytes() };
}

// The source: espeak-ng's speech at its own rate; each format is made from it by sox.
const wav = join(dir, "hello.wav");
await run("espeak-ng", "-w", wav, "Hello, I would like to book an appointment for Tuesday.");
const seconds = Number((await run("soxi", "-D", wav)).trim());

Deno.test("each accepted format uploads with its duration, rate, channels and hash", async () => {
  const made: Record<string, string[]> = {
    wav: [],
    mp3: [],
    ogg: [],
    flac: ["-r", "48000", "-c", "2"],
  };
  for (const [fmt, opts] of Object.entries(made)) {
    const path = join(dir, `clip.${fmt}`);
    await run("sox", wav, ...opts, path);
    const bytes = await Deno.readFile(path);
    // Named without an extension that would give it away: the content decides.
    const res = await upload(bytes, `caller-${fmt}.bin`, `hello-${fmt}`);
    assert.equal(res.status, 201, `${fmt}: ${JSON.stringify(res.data)}`);
    assert.equal(res.data.name, `hello-${fmt}`);
    assert.equal(res.data.sha256, createHash("sha256").update(bytes).digest("hex"));
    assert.equal(res.data.bytes, bytes.length);
    assert.equal(res.data.sampleRate, fmt === "flac" ? 48000 : 22050, fmt);
    assert.equal(res.data.channels, fmt === "flac" ? 2 : 1, fmt);
    // mp3 adds an encoder delay and pads its last frame (tens of ms).
    assert.ok(
      Math.abs(res.data.durationMs - seconds * 1000) < (fmt === "mp3" ? 80 : 5),
      `${fmt} ${res.data.durationMs}`,
    );
    const got = await json("GET", `/api/v1/projects/${project}/audio/hello-${fmt}`);
    assert.equal(got.status, 200);
    assert.deepEqual(got.data, bytes);
  }
  const list = await json("GET", `/api/v1/projects/${project}/audio`);
  assert.deepEqual(list.data.clips.map((c: { name: string }) => c.name), [
    "hello-flac",
    "hello-mp3",
    "hello-ogg",
    "hello-wav",
  ]);
  // Without a name the upload's own file name is used.
  const named = await upload(await Deno.readFile(wav), "My Greeting.wav");
  assert.equal(named.status, 201);
  assert.equal(named.data.name, "My_Greeting.wav");
});

Deno.test("a renamed text file, a truncated mp3, a 2-minute clip and an 11 MB file get the right 4xx", async () => {
  const text = await upload(
    new TextEncoder().encode("this is not audio\n".repeat(50)),
    "notes.wav",
    "notes.wav",
  );
  assert.equal(text.status, 400);
  assert.equal(text.data.error.code, "unsupported_audio");
  assert.match(text.data.error.message, /^file: .*none of wav, mp3, ogg or flac/);

  const mp3 = join(dir, "t.mp3");
  await run("sox", wav, mp3);
  const whole = await Deno.readFile(mp3);
  const cut = await upload(whole.subarray(0, Math.floor(whole.length / 2) + 7), "cut.mp3");
  assert.equal(cut.status, 400, JSON.stringify(cut.data));
  assert.equal(cut.data.error.code, "corrupt_audio");
  assert.match(cut.data.error.message, /truncated mp3.*cut short/);

  const cutWav = await upload((await Deno.readFile(wav)).subarray(0, 20_000), "cut.wav");
  assert.equal(cutWav.status, 400);
  assert.equal(cutWav.data.error.code, "corrupt_audio");

  const long = join(dir, "long.ogg");
  await run("sox", "-n", "-r", "8000", "-c", "1", long, "synth", "120", "sine", "300");
  const tooLong = await upload(await Deno.readFile(long), "long.ogg");
  assert.equal(tooLong.status, 400);
  assert.equal(tooLong.data.error.code, "audio_too_long");
  assert.match(tooLong.data.error.message, /120\.0 s long, over the 60 s limit/);

  const big = new Uint8Array(11 * 1024 * 1024);
  big.set(await Deno.readFile(wav));
  const tooBig = await upload(big, "big.wav");
  assert.equal(tooBig.status, 413);
  assert.equal(tooBig.data.error.code, "payload_too_large");
  assert.match(tooBig.data.error.message, /limit for an audio clip \(VOX_AUDIO_MAX_BYTES\)/);

  const bad = await upload(await Deno.readFile(wav), "x.wav", "../x.wav");
  assert.equal(bad.status, 400);
  assert.match(bad.data.error.message, /^name: a plain file name/);
  const lib = await upload(await Deno.readFile(wav), "x.wav", "v1-yes.ogg");
  assert.equal(lib.status, 409);
  // Nothing of the refused uploads was stored.
  const names = (await json("GET", `/api/v1/projects/${project}/audio`)).data.clips.map((
    c: { name: string },
  ) => c.name);
  assert.ok(!names.some((n: string) => /notes|cut|long|big|x\.wav/.test(n)), names.join());
});

Deno.test("names are unique per project; the same bytes are stored once; other users see nothing", async () => {
  const bytes = await Deno.readFile(wav);
  const a = await upload(bytes, "a.wav", "same-a.wav");
  const b = await upload(bytes, "b.wav", "same-b.wav");
  assert.equal(a.status, 201);
  assert.equal(b.status, 201);
  const again = await upload(bytes, "a.wav", "same-a.wav");
  assert.equal(again.status, 409);
  const sha = a.data.sha256;
  const [{ n }] = await sql`SELECT count(*)::int AS n FROM audio_blobs WHERE sha256 = ${sha}`;
  assert.equal(n, 1);
  assert.equal((await json("GET", `/api/v1/projects/${project}/audio`, undefined, otherKey)).status, 404);
  assert.equal(
    (await json("GET", `/api/v1/projects/${project}/audio/same-a.wav`, undefined, otherKey)).status,
    404,
  );
  assert.equal((await upload(bytes, "a.wav", "x.wav", otherKey)).status, 404);
  assert.equal(
    (await json("DELETE", `/api/v1/projects/${project}/audio/same-a.wav`, undefined, otherKey)).status,
    404,
  );
  // Deleting one name keeps the bytes for the other; deleting both removes them.
  assert.equal((await json("DELETE", `/api/v1/projects/${project}/audio/same-a.wav`)).status, 200);
  assert.equal((await sql`SELECT 1 FROM audio_blobs WHERE sha256 = ${sha}`).length, 1);
  const renamed = await json("PATCH", `/api/v1/projects/${project}/audio/same-b.wav`, {
    name: "renamed.wav",
  });
  assert.equal(renamed.status, 200);
  assert.equal(renamed.data.name, "renamed.wav");
  assert.equal((await json("DELETE", `/api/v1/projects/${project}/audio/renamed.wav`)).status, 200);
  // hello-wav (the first test) has the same bytes as the source wav, so they stay.
  const left =
    await sql`SELECT 1 FROM project_audio pa JOIN audio_blobs b ON b.id = pa.blob_id WHERE b.sha256 = ${sha}`;
  assert.equal((await sql`SELECT 1 FROM audio_blobs WHERE sha256 = ${sha}`).length, left.length ? 1 : 0);
});

Deno.test("an eval set naming a missing clip is a 400 naming step and clip; a clip in use cannot go", async () => {
  await upload(await Deno.readFile(wav), "x.wav", "in-use.wav");
  const steps = (file: string) => [
    { action: "speak", text: "hi" },
    { action: "wait_for_voice" },
    { action: "speak", file },
    { action: "wait_for_voice" },
  ];
  const missing = await json("POST", "/api/v1/eval-sets", {
    projectId: project,
    name: "missing",
    config: { steps: steps("hello_make_an_appointment.mp3") },
  });
  assert.equal(missing.status, 400);
  assert.equal(missing.data.error.code, "invalid_input");
  assert.match(
    missing.data.error.message,
    /^config\.steps\.2\.file: step 3 \(speak\) names audio "hello_make_an_appointment\.mp3", which is not a clip/,
  );
  // A clip of another project is not this project's.
  const elsewhere = await json("POST", "/api/v1/eval-sets", {
    projectId: other.defaultProjectId,
    name: "elsewhere",
    config: { steps: steps("in-use.wav") },
  }, otherKey);
  assert.equal(elsewhere.status, 400);
  const noise = await json("POST", "/api/v1/eval-sets", {
    projectId: project,
    name: "noise",
    config: { steps: [{ action: "speak", text: "hi", noise: { file: "nope.wav", snr_db: 10 } }] },
  });
  assert.equal(noise.status, 400);
  assert.match(noise.data.error.message, /^config\.steps\.0\.noise\.file: .*"nope\.wav"/);

  const ok = await json("POST", "/api/v1/eval-sets", {
    projectId: project,
    name: "uses a clip",
    config: { steps: [...steps("in-use.wav"), { action: "speak", file: "v1-yes.ogg" }] },
  });
  assert.equal(ok.status, 201, JSON.stringify(ok.data));
  // A declared agent asset (the demo agent's) is accepted too.
  const declared = await json("POST", "/api/v1/eval-sets", {
    projectId: project,
    name: "agent asset",
    config: { steps: steps("hello.wav") },
  });
  assert.equal(declared.status, 201);
  // Changing the config to a missing clip is refused the same way.
  const patched = await json("PATCH", `/api/v1/eval-sets/${ok.data.id}`, {
    config: { steps: steps("gone.wav") },
  });
  assert.equal(patched.status, 400);
  assert.match(patched.data.error.message, /step 3 \(speak\) names audio "gone\.wav"/);

  const list = await json("GET", `/api/v1/projects/${project}/audio`);
  const clip = list.data.clips.find((c: { name: string }) => c.name === "in-use.wav");
  assert.deepEqual(clip.usedBy, [{ id: ok.data.id, name: "uses a clip" }]);
  const del = await json("DELETE", `/api/v1/projects/${project}/audio/in-use.wav`);
  assert.equal(del.status, 409);
  assert.equal(del.data.error.code, "clip_in_use");
  assert.match(del.data.error.message, new RegExp(`eval set ${ok.data.id} \\(uses a clip\\) uses it`));
  assert.equal(
    (await json("PATCH", `/api/v1/projects/${project}/audio/in-use.wav`, { name: "x.wav" })).status,
    409,
  );
  assert.equal((await json("DELETE", `/api/v1/eval-sets/${ok.data.id}`)).status, 200);
  assert.equal((await json("DELETE", `/api/v1/projects/${project}/audio/in-use.wav`)).status, 200);
});

Deno.test("the shipped library lists its clips and serves bytes matching the manifest", async () => {
  const list = await json("GET", "/api/v1/audio/library");
  assert.equal(list.status, 200);
  const names = list.data.clips.map((c: { name: string }) => c.name);
  for (
    const n of ["v1-greeting.ogg", "v1-yes.ogg", "v1-interruption.ogg", "v1-mm_hmm.ogg", "v1-silence_3s.ogg"]
  ) {
    assert.ok(names.includes(n), n);
  }
  for (const clip of LIBRARY.values()) {
    const got = await json("GET", `/api/v1/audio/library/${clip.name}`);
    assert.equal(got.status, 200);
    assert.equal(createHash("sha256").update(got.data as Uint8Array).digest("hex"), clip.sha256, clip.name);
  }
  assert.equal((await json("GET", "/api/v1/audio/library/nope.ogg")).status, 404);
});

Deno.test("the shipped turn-taking eval set is accepted as pasted, and every sound in it is a library clip", async () => {
  const yaml = await Deno.readTextFile(new URL("../assets/eval_sets/turn_taking.yaml", import.meta.url));
  const res = await app.request("/api/v1/eval-sets", {
    method: "POST",
    headers: { ...key, "content-type": "application/json" },
    body: JSON.stringify({ projectId: project, name: "turn taking v1", yaml }),
  });
  assert.equal(res.status, 201);
  assert.match(res.headers.get("content-type") ?? "", /json/);
  const created = await res.json();
  const [row] = await sql<{ config: Record<string, unknown> }[]>`
    SELECT config FROM eval_sets WHERE id = ${created.id}`;
  // No synthesized speech: the same bytes on every agent, by name and hash.
  const steps = row.config.steps as { action: string; text?: string }[];
  assert.deepEqual(steps.filter((s) => s.text !== undefined), []);
  const names = audioNamesOf(row.config).map((u) => u.name);
  assert.ok(names.length >= 10, JSON.stringify(names));
  assert.deepEqual(names.filter((n) => !LIBRARY.has(n)), []);
  assert.deepEqual(
    offerClips([], row.config).map((c) => c.sha256).sort(),
    [...new Set(names)].map((n) => LIBRARY.get(n)!.sha256).sort(),
  );
  assert.equal((await json("DELETE", `/api/v1/eval-sets/${created.id}`)).status, 200);
});
