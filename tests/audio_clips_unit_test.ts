// The agent's clip fetcher (agent/clips.ts) against a local fake of the server's audio route:
// the token is sent, bytes that do not hash to the offer's SHA-256 are refused, a clip bigger
// than announced is cut off, names that are not plain are refused, and the cache is used.
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { ClipError, provideClips } from "../agent/clips.ts";

const good = new TextEncoder().encode("RIFF-pretend-audio-bytes");
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
let served: Uint8Array = good;
const requests: { path: string; auth: string | null }[] = [];
const fake = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
  requests.push({ path: new URL(req.url).pathname, auth: req.headers.get("authorization") });
  return new Response(served as BodyInit);
});
const tmp = await Deno.makeTempDir();
Deno.test.afterAll(async () => {
  await fake.shutdown();
  await Deno.remove(tmp, { recursive: true });
});
const source = {
  serverUrl: `ws://127.0.0.1:${fake.addr.port}`,
  token: "vox_agent_" + "x".repeat(32),
  cacheDir: join(tmp, "cache"),
};
const clip = { name: "hello.wav", sha256: sha(good), bytes: good.length };

Deno.test("a clip is fetched once with the token, verified, cached by hash and reused", async () => {
  const first = await provideClips(source, 7, [clip], join(tmp, "job1"));
  assert.deepEqual(first, { fetched: ["hello.wav"], cached: [] });
  assert.deepEqual(requests, [{
    path: `/api/agent/jobs/7/audio/${clip.sha256}`,
    auth: `Bearer ${source.token}`,
  }]);
  assert.deepEqual(await Deno.readFile(join(tmp, "job1", "hello.wav")), good);
  const second = await provideClips(source, 8, [clip], join(tmp, "job2"));
  assert.deepEqual(second, { fetched: [], cached: ["hello.wav"] });
  assert.equal(requests.length, 1);
});

Deno.test("bytes that do not hash to the offer's SHA-256, or more bytes than announced, are refused", async () => {
  served = new TextEncoder().encode("RIFF-other-bytes-entirely");
  const wrong = {
    name: "x.wav",
    sha256: sha(new TextEncoder().encode("something else")),
    bytes: served.length,
  };
  await assert.rejects(
    provideClips(source, 9, [wrong], join(tmp, "job3")),
    (err) => err instanceof ClipError && /hash to .*, not .*; refused/.test(err.message),
  );
  assert.equal(
    (await Array.fromAsync(Deno.readDir(join(tmp, "job3")))).length,
    0,
    "nothing given to the job",
  );
  const small = { name: "y.wav", sha256: sha(served), bytes: 4 };
  await assert.rejects(
    provideClips(source, 9, [small], join(tmp, "job4")),
    (err) => err instanceof ClipError && /more than its 4 bytes/.test(err.message),
  );
});

Deno.test("an offer naming a path instead of a plain name is refused before any fetch", async () => {
  const before = requests.length;
  for (const name of ["../x.wav", "/etc/hostname", ".env", "a/b.wav"]) {
    await assert.rejects(
      provideClips(source, 10, [{ ...clip, name }], join(tmp, "job5")),
      (err) => err instanceof ClipError && /refuses/.test(err.message),
    );
  }
  assert.equal(requests.length, before);
});

Deno.test("run mode finds the shipped library by name; a daemon job only its clips/ and assets/", async () => {
  const { findAudio } = await import("../agent/config.ts");
  const found = await findAudio({ dir: tmp }, "v1-yes.ogg");
  assert.ok("path" in found && found.path.endsWith("assets/library/v1/v1-yes.ogg"), JSON.stringify(found));
  const daemon = await findAudio({ dir: tmp, assetsOnly: true }, "v1-yes.ogg");
  assert.ok("missing" in daemon && daemon.missing, JSON.stringify(daemon));
});
