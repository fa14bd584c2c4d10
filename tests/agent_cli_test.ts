import assert from "node:assert/strict";
import { join } from "node:path";
import { serveReferenceAgent } from "../bench/reference_agent.ts";

const server = serveReferenceAgent();
Deno.test.afterAll(() => server.close());

async function runCli(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "agent/main.ts", "run", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test(
  "a voice-agent-tester application + scenario pair runs unchanged and writes the SPEC §7 report",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "vox-cli-" });
    const app = join(dir, "reference.yaml");
    // The application file uses voice-agent-tester's actions: fill, select, click.
    await Deno.writeTextFile(
      app,
      `url: "${server.url}agent/index.html?autostart=0&greet=1&out=srcobject&delay=900"
tags:
  - default
steps:
  - action: fill
    selector: "#name"
    text: "Ada"
  - action: select
    selector: "#lang"
    value: "fr"
  - action: click
    selector: "#start"
`,
    );
    const report = join(dir, "report.json");
    const r = await runCli([
      "--app",
      app,
      "--suite",
      "tests/fixtures/vat/appointment.yaml",
      "--report",
      report,
    ]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /response latency\s+median/);
    const json = JSON.parse(await Deno.readTextFile(report));
    assert.deepEqual(Object.keys(json.metrics).sort(), [
      "interrupt_latency",
      "naturalness",
      "network_resilience",
      "noise_reduction",
      "response_latency",
      "turn_taking",
    ]);
    // No pause, backchannel or bystander steps: every turn-taking rate is null, not 0.
    assert.equal(json.metrics.turn_taking.pause_takeover_rate, null);
    assert.equal(json.metrics.turn_taking.n_pause, 0);
    assert.deepEqual(Object.keys(json.metrics.response_latency).sort(), ["median", "n", "p90", "sd"]);
    assert.equal(json.metrics.response_latency.n, 2);
    assert.deepEqual(json.metrics.interrupt_latency, { median: null, sd: null, p90: null, n: 0 });
    for (const t of json.turns) {
      assert.equal(t.kind, "response");
      assert.equal(typeof t.latency_ms, "number");
      assert.equal(t.ok, true);
    }
    const timed = json.runs[0].steps.filter((s: { metrics?: { elapsed_time?: number } }) =>
      s.metrics?.elapsed_time
    );
    assert.equal(timed.length, 2, "metrics: elapsed_time is reported per step");
    assert.equal(json.methods.response_latency, "vox-audioclock-response/1");
    const wav = json.runs[0].recording;
    assert.ok((await Deno.stat(wav)).size > 44);
    await Deno.remove(dir, { recursive: true });
  },
);

Deno.test(
  "an unreachable URL fails with exit code 1 and a partial report naming the app file",
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "vox-cli-" });
    const report = join(dir, "report.json");
    const r = await runCli([
      "-a",
      "tests/fixtures/bad/unreachable_app.yaml",
      "-s",
      "tests/fixtures/vat/response.yaml",
      "--report",
      report,
      "--step-timeout",
      "5000",
    ]);
    assert.equal(r.code, 1);
    const json = JSON.parse(await Deno.readTextFile(report));
    assert.equal(json.ok, false);
    assert.match(json.errors[0].file, /unreachable_app\.yaml$/);
    assert.equal(json.errors[0].action, "open");
    assert.match(json.errors[0].message, /ERR_CONNECTION_REFUSED|cannot open/);
    assert.equal(json.metrics.response_latency.n, 0);
    await Deno.remove(dir, { recursive: true });
  },
);

for (
  const [file, pattern] of [
    ["malformed.yaml", /malformed\.yaml: malformed YAML at line \d+/],
    ["missing_audio.yaml", /missing_audio\.yaml step 1 \(speak\): audio file not found: does_not_exist\.wav/],
    ["unknown_action.yaml", /unknown_action\.yaml step 1 \(dance\): unknown action "dance"/],
  ] as const
) {
  Deno.test(
    `bad input ${file} is refused before a browser starts, naming the file and step`,
    async () => {
      const dir = await Deno.makeTempDir({ prefix: "vox-cli-" });
      const report = join(dir, "report.json");
      const r = await runCli([
        "--app",
        "tests/fixtures/bad/unreachable_app.yaml",
        "--suite",
        `tests/fixtures/bad/${file}`,
        "--report",
        report,
      ]);
      assert.equal(r.code, 1);
      assert.match(r.stderr, pattern);
      const json = JSON.parse(await Deno.readTextFile(report));
      assert.equal(json.ok, false);
      assert.match(json.errors[0].message, pattern);
      assert.deepEqual(json.turns, []);
      await Deno.remove(dir, { recursive: true });
    },
  );
}

Deno.test("folders make a matrix, --repeat and --concurrency multiply runs, tags filter", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vox-cli-" });
  const report = join(dir, "report.json");
  const r = await runCli([
    "-a",
    "tests/fixtures/vat/html_app.yaml",
    "-s",
    "tests/fixtures/matrix",
    "--repeat",
    "2",
    "--concurrency",
    "2",
    "--report",
    report,
  ]);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const json = JSON.parse(await Deno.readTextFile(report));
  assert.equal(json.runs.length, 4);
  assert.deepEqual(json.runs.map((x: { run: number }) => x.run), [1, 2, 3, 4]);
  assert.ok(json.runs.every((x: { ok: boolean }) => x.ok));
  // Screenshots land in the output folder under a name Vox makes from the file name, run and step.
  const shots = [...Deno.readDirSync(join(dir, "recordings"))].map((e) => e.name).filter((n) =>
    n.endsWith(".png")
  );
  assert.ok(shots.length > 0 && shots.every((n) => /^matrix_run\d+_step2\.png$/.test(n)), shots.join());
  const tagged = await runCli([
    "-a",
    "tests/fixtures/vat/html_app.yaml",
    "-s",
    "tests/fixtures/matrix",
    "--scenario-tags",
    "smoke",
    "--report",
    report,
  ]);
  assert.equal(tagged.code, 0, tagged.stdout + tagged.stderr);
  const one = JSON.parse(await Deno.readTextFile(report));
  assert.equal(one.runs.length, 1);
  assert.match(one.runs[0].suite, /a_sleep\.yaml$/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("usage errors exit with code 2", async () => {
  const r = await runCli(["--app", "x.yaml"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--app and --suite are required/);
});
