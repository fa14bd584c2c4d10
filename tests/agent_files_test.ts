// The agent's file rules against untrusted configs: audio only by plain name from the config's
// folder or assets/ (a symlink leading out is refused), daemon jobs only from assets/, and
// speech text that can never become an espeak-ng option. No server, no browser.
import assert from "node:assert/strict";
import { join } from "node:path";
import { synthesize } from "../agent/audio.ts";
import { ConfigError, findAudio, parseConfig } from "../agent/config.ts";

const HELLO = new URL("./fixtures/vat/assets/hello.wav", import.meta.url).pathname;

/** A config folder with assets/hello.wav, a secret beside it and links pointing out. */
async function configDir() {
  const root = await Deno.makeTempDir({ prefix: "vox-files-" });
  const dir = join(root, "config");
  await Deno.mkdir(join(dir, "assets"), { recursive: true });
  await Deno.copyFile(HELLO, join(dir, "assets", "hello.wav"));
  await Deno.writeTextFile(join(root, "secret.wav"), "not for configs");
  await Deno.symlink(join(root, "secret.wav"), join(dir, "assets", "out.wav"));
  await Deno.symlink("/etc/hostname", join(dir, "host.wav"));
  await Deno.writeTextFile(join(dir, "beside.wav"), "RIFF");
  return { root, dir };
}

const meta = (dir: string, assetsOnly = false) => ({ path: join(dir, "s.yaml"), name: "s", dir, assetsOnly });

Deno.test("audio is found by plain name in the folder or assets/, and a link leading out is refused", async () => {
  const { root, dir } = await configDir();
  try {
    assert.deepEqual(await findAudio({ dir }, "hello.wav"), {
      path: await Deno.realPath(join(dir, "assets", "hello.wav")),
    });
    assert.ok("path" in await findAudio({ dir }, "beside.wav"));
    for (const name of ["out.wav", "host.wav"]) {
      const found = await findAudio({ dir }, name);
      assert.ok(
        "problem" in found && /leads outside/.test(found.problem),
        `${name}: ${JSON.stringify(found)}`,
      );
    }
    for (const name of ["/etc/hostname", "../secret.wav", "assets/hello.wav", ".hidden"]) {
      const found = await findAudio({ dir }, name);
      assert.ok("problem" in found && /plain file name/.test(found.problem), name);
    }
    // A daemon job reads only assets/: a file beside the config is not found.
    assert.ok("problem" in await findAudio({ dir, assetsOnly: true }, "beside.wav"));
    assert.ok("path" in await findAudio({ dir, assetsOnly: true }, "hello.wav"));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a config naming a link out of assets/ fails at load as an invalid config, naming the step", async () => {
  const { root, dir } = await configDir();
  try {
    const steps = [{ action: "wait_for_voice" }, { action: "speak", file: "out.wav" }];
    await assert.rejects(
      () => parseConfig({ steps }, meta(dir, true), "scenario"),
      (err) =>
        err instanceof ConfigError && err.step === 2 && /out\.wav leads outside assets\//.test(err.message),
    );
    await assert.rejects(
      () =>
        parseConfig({ background: "host.wav", steps: [{ action: "wait_for_voice" }] }, meta(dir), "scenario"),
      (err) => err instanceof ConfigError && /background noise: host\.wav leads outside/.test(err.message),
    );
    const ok = await parseConfig(
      { steps: [{ action: "speak", file: "hello.wav" }] },
      meta(dir, true),
      "scenario",
    );
    assert.equal(ok.steps.length, 1);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("espeak-ng gets the text on stdin, never as an argument (a fake espeak records its argv)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vox-espeak-" });
  const fake = join(dir, "espeak-ng");
  // Records argv (one per line) and stdin, then answers with a real WAV.
  await Deno.writeTextFile(
    fake,
    `#!/bin/sh\nfor a in "$@"; do printf '%s\\n' "$a"; done > ${dir}/argv\ncat > ${dir}/stdin\ncat ${HELLO}\n`,
    { mode: 0o755 },
  );
  const before = Deno.env.get("ESPEAK_PATH");
  Deno.env.set("ESPEAK_PATH", fake);
  try {
    for (const text of ["-f/etc/passwd", "-w/tmp/vox-owned.wav hello", "--version"]) {
      const wav = await synthesize(text, "en-us");
      assert.equal(new TextDecoder().decode(wav.subarray(0, 4)), "RIFF");
      const argv = (await Deno.readTextFile(join(dir, "argv"))).trimEnd().split("\n");
      assert.deepEqual(argv, ["-v", "en-us", "--stdout", "--stdin"]);
      assert.equal(await Deno.readTextFile(join(dir, "stdin")), text);
    }
    await assert.rejects(() => synthesize("hi", "-f/etc/passwd"), /not a voice name/);
  } finally {
    if (before === undefined) Deno.env.delete("ESPEAK_PATH");
    else Deno.env.set("ESPEAK_PATH", before);
    await Deno.remove(dir, { recursive: true });
  }
});
