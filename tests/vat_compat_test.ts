// voice-agent-tester compatibility on a folder in the tester's own layout (applications/,
// scenarios/, assets/ side by side), built from Vox's fixtures: URL templates filled from
// --params, execute_javascript, `>>>` and `text=` selectors, click_with_retry's checkDelay.
// The dry run checks it without a browser; the API stores the same files; one run (two
// applications, one of them failing) checks the CSV report and --retries.
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseYaml } from "../agent/format.ts";
import { audioNamesOf } from "../lib/audio.ts";
import { serveReferenceAgent } from "../bench/reference_agent.ts";
import { createTestApp } from "./_app.ts";
import { withApiKey } from "./_auth.ts";
import { createTestDatabase, setSetting } from "./_db.ts";

const server = serveReferenceAgent();
const db = await createTestDatabase();
Deno.test.afterAll(async () => {
  await server.close();
  await db.close();
});

async function agent(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "agent/main.ts", "run", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

// The reference agent greets after #start is clicked; `greet` comes from --params.
const URL_TEMPLATE = `${server.url}agent/index.html?autostart=0&greet={{greet}}&out=srcobject&delay=900`;

/** The widget application: a shadow-DOM call button added by execute_javascript, clicked through `>>>`. */
const WIDGET = `url: "${URL_TEMPLATE}"
tags: [widget]
steps:
  - action: execute_javascript
    code: |
      const host = document.createElement('vox-widget');
      const button = host.attachShadow({ mode: 'open' }).appendChild(document.createElement('button'));
      button.textContent = 'Call AI agent';
      button.addEventListener('click', () => document.querySelector('#start').click());
      document.body.appendChild(host);
      ({ shadow_buttons: host.shadowRoot.querySelectorAll('button').length })
    metrics: shadow_buttons
  - action: wait_for_element
    selector: "text=Call AI agent"
  - action: click_with_retry
    selector: "vox-widget >>> button"
    retries: 2
    checkDelay: 1000
    retryDelay: 500
    metrics: elapsed_time
`;

/** An application that cannot start: its script never settles (the step times out). */
const BROKEN = `url: "${URL_TEMPLATE}"
tags: [broken]
steps:
  - action: execute_javascript
    code: "new Promise(() => {})"
    timeout: 1000
`;

/** The tester's layout: applications/, scenarios/, assets/ side by side. */
async function testerLayout(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "vox-vat-" });
  for (const d of ["applications", "scenarios", "assets"]) await Deno.mkdir(join(root, d));
  await Deno.writeTextFile(join(root, "applications", "widget.yaml"), WIDGET);
  await Deno.writeTextFile(join(root, "applications", "broken.yaml"), BROKEN);
  // Scenarios copied from the fixtures, without their audio: it lives in ../assets.
  await Deno.copyFile("tests/fixtures/vat/greeting.yaml", join(root, "scenarios", "greeting.yaml"));
  await Deno.copyFile("tests/fixtures/vat/appointment.yaml", join(root, "scenarios", "appointment.yaml"));
  for (const f of ["hello.wav", "tuesday.mp3", "tuesday.ogg"]) {
    await Deno.copyFile(join("tests/fixtures/vat/assets", f), join(root, "assets", f));
  }
  return root;
}

Deno.test("--dry-run: exit 0 with --params, 1 without, naming the missing param and the file", async () => {
  const root = await testerLayout();
  const args = ["-a", join(root, "applications"), "-s", join(root, "scenarios"), "--dry-run"];
  const ok = await agent([...args, "--params", "greet=1,unused=x"]);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  const pairs = ok.stdout.split("\n").filter((l) => l.startsWith("ok "));
  assert.equal(pairs.length, 4, ok.stdout);
  assert.match(ok.stdout, /dry run: 4 pair\(s\) runnable/);

  const missing = await agent(args);
  assert.equal(missing.code, 1, missing.stdout + missing.stderr);
  const problems = missing.stderr.split("\n").filter((l) => l.startsWith("✗ "));
  assert.equal(problems.length, 2, missing.stderr);
  for (const app of ["broken.yaml", "widget.yaml"]) {
    assert.ok(
      problems.some((l) => l.includes(join(root, "applications", app)) && l.includes("{{greet}}")),
      `${app} is named with the missing param:\n${missing.stderr}`,
    );
  }
  assert.doesNotMatch(missing.stdout, /^ok /m);

  // A missing audio file and a bad selector are one line each: file, step, reason.
  await Deno.remove(join(root, "assets", "tuesday.ogg"));
  await Deno.writeTextFile(
    join(root, "applications", "widget.yaml"),
    WIDGET.replace(`"vox-widget >>> button"`, `"vox-widget >>>"`),
  );
  const bad = await agent([...args, "--params", "greet=1"]);
  assert.equal(bad.code, 1);
  const lines = bad.stderr.split("\n").filter((l) => l.startsWith("✗ "));
  assert.equal(lines.length, 2, bad.stderr);
  assert.ok(
    lines.some((l) => /appointment\.yaml step 6 \(speak\): audio file not found: tuesday\.ogg/.test(l)),
  );
  assert.ok(lines.some((l) => /widget\.yaml step 3 \(click_with_retry\): .*>>>/.test(l)));
  await Deno.remove(root, { recursive: true });
});

Deno.test("--assets adds a folder audio is found in; paths in audio names are refused", async () => {
  const root = await testerLayout();
  const elsewhere = await Deno.makeTempDir({ prefix: "vox-vat-assets-" });
  await Deno.rename(join(root, "assets", "hello.wav"), join(elsewhere, "hello.wav"));
  const args = [
    "-a",
    join(root, "applications", "widget.yaml"),
    "-s",
    join(root, "scenarios", "greeting.yaml"),
  ];
  const without = await agent([...args, "--params", "greet=1", "--dry-run"]);
  assert.equal(without.code, 1);
  assert.match(without.stderr, /greeting\.yaml step 3 \(speak\): audio file not found: hello\.wav/);
  const withAssets = await agent([...args, "--params", "greet=1", "--assets", elsewhere, "--dry-run"]);
  assert.equal(withAssets.code, 0, withAssets.stderr);

  // A name with a folder in it never leaves the asset folders, even when the file exists.
  await Deno.writeTextFile(
    join(root, "scenarios", "escape.yaml"),
    `steps:\n  - action: speak\n    file: ../assets/tuesday.mp3\n`,
  );
  const escape = await agent([
    "-a",
    join(root, "applications", "widget.yaml"),
    "-s",
    join(root, "scenarios", "escape.yaml"),
    "--params",
    "greet=1",
    "--dry-run",
  ]);
  assert.equal(escape.code, 1);
  assert.match(escape.stderr, /escape\.yaml step 1 \(speak\): .*must be a plain file name/);
  // A link inside assets/ that points out of it is refused, not followed.
  await Deno.symlink(join(elsewhere, "hello.wav"), join(root, "assets", "hello.wav"));
  const linked = await agent([...args, "--params", "greet=1", "--dry-run"]);
  assert.equal(linked.code, 1);
  assert.match(linked.stderr, /greeting\.yaml step 3 \(speak\): hello\.wav leads outside assets\/ .*refused/);
  await Deno.remove(root, { recursive: true });
  await Deno.remove(elsewhere, { recursive: true });
});

/** tests/fixtures/vat_tester copied with assets/ beside it holding the audio its scenarios name. */
async function fixtureLayout(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "vox-vat-fixture-" });
  for (const d of ["applications", "scenarios"]) {
    await Deno.mkdir(join(root, d));
    for await (const e of Deno.readDir(join("tests/fixtures/vat_tester", d))) {
      await Deno.copyFile(join("tests/fixtures/vat_tester", d, e.name), join(root, d, e.name));
    }
  }
  await Deno.mkdir(join(root, "assets"));
  for (const name of ["hello_make_an_appointment.mp3", "appointment_data.mp3"]) {
    await Deno.copyFile("tests/fixtures/vat/assets/tuesday.mp3", join(root, "assets", name));
  }
  return root;
}

Deno.test("every construct of the tester's files passes the dry run once its params are given", async () => {
  const root = await fixtureLayout();
  const args = ["-a", join(root, "applications"), "-s", join(root, "scenarios"), "--dry-run"];
  const ok = await agent([...args, "-p", "assistantId=as-1,shareKey=sk-1,branchId=br-1"]);
  assert.equal(ok.code, 0, ok.stdout + ok.stderr);
  assert.match(ok.stdout, /dry run: 10 pair\(s\) runnable/);
  // The background the tester never played, naming a file that never existed: said, not fatal.
  assert.match(ok.stdout, /appointment_with_listen\.yaml: background audio file not found: white_noise\.mp3/);
  const without = await agent([...args, "-p", "assistantId=as-1"]);
  assert.equal(without.code, 1);
  const problems = without.stderr.split("\n").filter((l) => l.startsWith("✗ "));
  assert.equal(problems.length, 2, without.stderr);
  assert.ok(problems.some((l) => /talk_to\.yaml: .*missing \{\{branchId\}\}/.test(l)), without.stderr);
  assert.ok(problems.some((l) => /share_key\.yaml: .*missing \{\{shareKey\}\}/.test(l)), without.stderr);
  await Deno.remove(root, { recursive: true });
});

Deno.test("tag filters select the pairs whose files carry one of the tags", async () => {
  const root = await testerLayout();
  await Deno.writeTextFile(
    join(root, "scenarios", "greeting.yaml"),
    `tags: [short]\n${await Deno.readTextFile("tests/fixtures/vat/greeting.yaml")}`,
  );
  const base = [
    "-a",
    join(root, "applications"),
    "-s",
    join(root, "scenarios"),
    "-p",
    "greet=1",
    "--dry-run",
  ];
  const pairs = async (...extra: string[]) => {
    const r = await agent([...base, ...extra]);
    return {
      code: r.code,
      stderr: r.stderr,
      pairs: r.stdout.split("\n").filter((l) => l.startsWith("ok ")).map((l) =>
        l.replace(/^ok /, "").replaceAll(root + "/", "")
      ),
    };
  };
  assert.deepEqual((await pairs("--application-tags", "widget")).pairs, [
    "applications/widget.yaml × scenarios/appointment.yaml",
    "applications/widget.yaml × scenarios/greeting.yaml",
  ]);
  assert.deepEqual((await pairs("--application-tags", "broken, widget", "--scenario-tags", "short")).pairs, [
    "applications/broken.yaml × scenarios/greeting.yaml",
    "applications/widget.yaml × scenarios/greeting.yaml",
  ]);
  const none = await pairs("--scenario-tags", "nightly");
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no scenario has one of the tags nightly/);
  await Deno.remove(root, { recursive: true });
});

Deno.test("the tester-layout files are accepted as YAML by POST /api/v1/workflows and /eval-sets", async () => {
  const root = await testerLayout();
  const { app } = await createTestApp(db.sql);
  const me = await withApiKey(db.sql);
  const post = async (path: string, yaml: string, extra: Record<string, unknown> = {}) => {
    const res = await app.request(path, {
      method: "POST",
      headers: { ...me.headers, "content-type": "application/json" },
      body: JSON.stringify({ projectId: me.defaultProjectId, name: "tester layout", yaml, ...extra }),
    });
    return { status: res.status, body: await res.json() };
  };
  for (const f of ["widget.yaml", "broken.yaml"]) {
    const r = await post("/api/v1/workflows", await Deno.readTextFile(join(root, "applications", f)), {
      provider: { name: "Tester layout", sku: 0 },
    });
    assert.equal(r.status, 201, `${f}: ${JSON.stringify(r.body)}`);
    // The template is stored as written: params are a run's input.
    assert.equal(r.body.config.url, URL_TEMPLATE);
  }
  const stored = await post("/api/v1/workflows", WIDGET, { provider: { name: "Tester layout", sku: 0 } });
  assert.deepEqual(
    stored.body.config.steps.map((s: { action: string }) => s.action),
    ["execute_javascript", "wait_for_element", "click_with_retry"],
  );
  assert.equal(stored.body.config.steps[2].checkDelay, 1000);
  // Audio the tester's scenarios name must exist where an agent will get it (issue 18): until the
  // operator declares the files their agents carry, the server refuses, naming the step and file.
  const undeclared = await post(
    "/api/v1/eval-sets",
    await Deno.readTextFile(join(root, "scenarios", "appointment.yaml")),
  );
  assert.equal(undeclared.status, 400);
  assert.match(undeclared.body.error.message, /^config\.steps\.\d+\.file: step \d+ \(speak\) names audio "/);
  const fixtures = await fixtureLayout();
  const names = new Set<string>();
  for (const dir of [join(root, "scenarios"), join(fixtures, "scenarios")]) {
    for await (const e of Deno.readDir(dir)) {
      for (const u of audioNamesOf(parseYaml(await Deno.readTextFile(join(dir, e.name))))) names.add(u.name);
    }
  }
  await setSetting(db.sql, "audio.agent_assets", [...names]);
  for (const f of ["greeting.yaml", "appointment.yaml"]) {
    const r = await post("/api/v1/eval-sets", await Deno.readTextFile(join(root, "scenarios", f)));
    assert.equal(r.status, 201, `${f}: ${JSON.stringify(r.body)}`);
  }
  for (
    const [dir, path, extra] of [
      ["applications", "/api/v1/workflows", { provider: { name: "Tester layout", sku: 0 } }],
      ["scenarios", "/api/v1/eval-sets", {}],
    ] as const
  ) {
    for await (const e of Deno.readDir(join(fixtures, dir))) {
      const r = await post(path, await Deno.readTextFile(join(fixtures, dir, e.name)), extra);
      assert.equal(r.status, 201, `${dir}/${e.name}: ${JSON.stringify(r.body)}`);
    }
  }
  await Deno.remove(fixtures, { recursive: true });
  // What the agent refuses, the API refuses too (one schema).
  const refused = await post("/api/v1/workflows", WIDGET.replace("execute_javascript", "execute_python"), {
    provider: { name: "Tester layout", sku: 0 },
  });
  assert.equal(refused.status, 400);
  assert.match(refused.body.error.message, /unknown action "execute_python" \(known: .*execute_javascript/);
  await Deno.remove(root, { recursive: true });
});

Deno.test("a run with -r out.csv writes the tester's columns; --retries 1 reruns a failed run once", async () => {
  const root = await testerLayout();
  const csv = join(root, "out.csv");
  const r = await agent([
    "-a",
    join(root, "applications"),
    "-s",
    join(root, "scenarios", "greeting.yaml"),
    "--params",
    "greet=1",
    "--retries",
    "1",
    "-r",
    csv,
  ]);
  // broken.yaml fails (twice), so the run fails; widget.yaml passes.
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /run 1 failed \(the code did not finish within 1000 ms\); retry 1\/1/);
  const text = await Deno.readTextFile(csv);
  assert.ok(text.endsWith("\n"));
  const [header, ...rows] = text.trimEnd().split("\n").map((l) => l.split(", "));
  assert.deepEqual(header, [
    "app",
    "scenario",
    "repetition",
    "success",
    "duration",
    // widget: 3 application steps, then greeting's step 4 (wait_for_voice) is step 7.
    "step_1_execute_javascript_shadow_buttons",
    "step_3_click_with_retry_elapsed_time",
    "step_7_wait_for_voice_elapsed_time",
    "vox_run",
    "vox_attempt",
    "vox_response_latency_median_ms",
    "vox_interrupt_latency_median_ms",
    "vox_turns",
    "vox_turns_failed",
    "vox_naturalness",
  ]);
  const col = (row: string[], name: string) => row[header.indexOf(name)];
  assert.deepEqual(rows.map((row) => [row[0], row[1], row[2], row[3], col(row, "vox_attempt")]), [
    ["broken", "greeting", "0", "0", "1"],
    ["broken", "greeting", "0", "0", "2"],
    ["widget", "greeting", "0", "1", "1"],
  ]);
  const widget = rows[2];
  assert.equal(col(widget, "step_1_execute_javascript_shadow_buttons"), "1");
  // click_with_retry waited its checkDelay (1000 ms) after the click.
  assert.ok(Number(col(widget, "step_3_click_with_retry_elapsed_time")) >= 1000);
  assert.match(col(widget, "step_7_wait_for_voice_elapsed_time"), /^\d+$/);
  assert.match(col(widget, "duration"), /^\d+$/);
  assert.equal(col(widget, "vox_turns"), "1");
  assert.match(col(widget, "vox_response_latency_median_ms"), /^\d+(\.\d+)?$/);
  for (const failed of rows.slice(0, 2)) {
    assert.equal(col(failed, "step_1_execute_javascript_shadow_buttons"), "");
  }
  await Deno.remove(root, { recursive: true });
});

async function hasFfmpeg(): Promise<boolean> {
  try {
    return (await new Deno.Command("ffmpeg", { args: ["-version"], stdout: "null", stderr: "null" }).output())
      .success;
  } catch {
    return false;
  }
}
const ffmpeg = await hasFfmpeg();

Deno.test({
  name: "--record without ffmpeg stops before a browser starts and says why",
  ignore: ffmpeg,
  fn: async () => {
    const root = await testerLayout();
    const r = await agent([
      "-a",
      join(root, "applications", "widget.yaml"),
      "-s",
      join(root, "scenarios", "greeting.yaml"),
      "-p",
      "greet=1",
      "--record",
    ]);
    assert.equal(r.code, 2, r.stdout + r.stderr);
    assert.match(r.stderr, /--record needs ffmpeg on PATH/);
    assert.doesNotMatch(r.stdout, /run 1\//);
    await Deno.remove(root, { recursive: true });
  },
});

Deno.test("--audio-url that cannot be read and a bad --audio-volume stop before a browser starts", async () => {
  const root = await testerLayout();
  const args = [
    "-a",
    join(root, "applications", "widget.yaml"),
    "-s",
    join(root, "scenarios", "greeting.yaml"),
  ];
  const missing = await agent([...args, "-p", "greet=1", "--audio-url", join(root, "assets", "nope.wav")]);
  assert.equal(missing.code, 1, missing.stdout + missing.stderr);
  assert.match(missing.stderr, /✗ --audio-url: cannot read .*nope\.wav \(No such file or directory/);
  assert.doesNotMatch(missing.stdout, /run 1\//);
  const volume = await agent([...args, "-p", "greet=1", "--audio-volume", "0"]);
  assert.equal(volume.code, 2);
  assert.match(volume.stderr, /--audio-volume must be a gain above 0/);
  await Deno.remove(root, { recursive: true });
});
