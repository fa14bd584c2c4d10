// The server and the agent agree on the voice-agent-tester formats: the same application and
// scenario files go to the API (create a workflow / an eval set, as YAML and as JSON config)
// and to `deno task agent validate` (the checks `run` makes before starting a browser), and
// both accept or both refuse each one. What the server stores is also fed back to the agent,
// since that is what a daemon job carries.
//
// Left out on purpose: audio files that do not exist. The server cannot know an agent's
// assets, so it stores the name; the agent refuses the file at load and the job fails as an
// invalid config (not retried).
import assert from "node:assert/strict";
import { join } from "node:path";
import { parseYaml } from "../agent/format.ts";
import { createTestApp } from "./_app.ts";
import { withApiKey } from "./_auth.ts";
import { createTestDatabase } from "./_db.ts";

const db = await createTestDatabase();
Deno.test.afterAll(() => db.close());
const sql = db.sql;
const { app } = await createTestApp(sql);
const me = await withApiKey(sql);

type Kind = "application" | "scenario";
interface Case {
  name: string;
  kind: Kind;
  valid: boolean;
  yaml: string;
}

const PAGE = `url: "https://agent.example.test/demo"\n`;
const app_ = (name: string, valid: boolean, yaml: string): Case => ({
  name,
  kind: "application",
  valid,
  yaml,
});
const scenario = (name: string, valid: boolean, yaml: string): Case => ({
  name,
  kind: "scenario",
  valid,
  yaml,
});

const CASES: Case[] = [
  app_(
    "app_dom_steps",
    true,
    `${PAGE}tags: [default]
steps:
  - action: wait_for_element
    selector: "#start"
    timeout: 15000
  - action: fill
    selector: "#name"
    text: "Ada"
  - action: select
    selector: "#lang"
    value: fr
  - action: type
    selector: "#note"
    text: hello
  - action: click_with_retry
    selector: "#start"
    retries: 3
    delay: 500
  - action: click_with_retry
    selector: "#start"
    retryDelay: 500
    checkDelay: 0
  - action: wait
    selector: "#ready"
  - action: sleep
    time: 1000
  - action: screenshot
    filename: started.png
  - action: click
    selector: "#start"
    metrics: [elapsed_time]
`,
  ),
  app_("app_html", true, `html: "<!doctype html><p>hi</p>"\nsteps: []\n`),
  app_("app_url_only", true, PAGE),
  app_(
    "app_unknown_top_level_fields_kept",
    true,
    `${PAGE}description: notes for people\nsteps:\n  - action: click\n    selector: "#go"\n`,
  ),
  // Steps are strict: a key Vox would not honour is refused, not silently ignored.
  app_(
    "app_step_unknown_key",
    false,
    `${PAGE}steps:\n  - action: click\n    selector: "#go"\n    comment: read by people\n`,
  ),
  app_(
    "app_screenshot_dir_in_name",
    false,
    `${PAGE}steps:\n  - action: screenshot\n    filename: shots/a.png\n`,
  ),
  app_(
    "app_screenshot_dotdot",
    false,
    `${PAGE}steps:\n  - action: screenshot\n    filename: ../../a.png\n`,
  ),
  app_(
    "app_screenshot_output_dir_path",
    false,
    `${PAGE}steps:\n  - action: screenshot\n    outputDir: /tmp\n`,
  ),
  app_(
    "app_sleeps_add_up",
    false,
    `${PAGE}steps:\n${"  - action: sleep\n    time: 300000\n".repeat(3)}`,
  ),
  app_(
    "app_select_text_checkbox",
    true,
    `${PAGE}steps:\n  - action: select\n    selector: "#lang"\n    text: French\n  - action: select\n    selector: "#ok"\n    checked: true\n`,
  ),
  app_("app_fill_number", true, `${PAGE}steps:\n  - action: fill\n    selector: "#age"\n    text: 42\n`),
  app_("app_neither_url_nor_html", false, `steps: []\n`),
  app_("app_url_and_html", false, `${PAGE}html: "<p>hi</p>"\n`),
  app_("app_url_file_scheme", false, `url: "file:///etc/passwd"\n`),
  app_("app_url_not_a_url", false, `url: "not a url"\n`),
  app_("app_step_without_action", false, `${PAGE}steps:\n  - selector: "#x"\n`),
  app_("app_unknown_action", false, `${PAGE}steps:\n  - action: teleport\n`),
  app_("app_click_without_selector", false, `${PAGE}steps:\n  - action: click\n`),
  app_("app_click_empty_selector", false, `${PAGE}steps:\n  - action: click\n    selector: ""\n`),
  app_("app_wait_without_selector", false, `${PAGE}steps:\n  - action: wait\n    time: 500\n`),
  app_("app_type_without_selector", false, `${PAGE}steps:\n  - action: type\n    text: hi\n`),
  app_("app_fill_value_only", false, `${PAGE}steps:\n  - action: fill\n    selector: "#n"\n    value: Ada\n`),
  app_(
    "app_timeout_zero",
    false,
    `${PAGE}steps:\n  - action: wait_for_element\n    selector: b\n    timeout: 0\n`,
  ),
  // voice-agent-tester: `retries: 0` means its default (2 attempts).
  app_(
    "app_retries_zero",
    true,
    `${PAGE}steps:\n  - action: click_with_retry\n    selector: b\n    retries: 0\n`,
  ),
  app_(
    "app_tester_forms",
    true,
    `url: "https://portal.example.test/#/demo?assistantId={{assistantId}}&shareKey={{shareKey}}"
steps:
  - action: wait_for_element
    selector: "telnyx-ai-agent"
  - action: click_with_retry
    selector: "telnyx-ai-agent >>> button"
    retries: 5
    checkDelay: 4000
    retryDelay: 5000
  - action: click
    selector: "text=Call AI agent"
  - action: execute_javascript
    code: |
      const agent = document.querySelector('telnyx-ai-agent');
      if (!agent) throw new Error('telnyx-ai-agent not found');
  - action: wait
    selector: "button[aria-label=\\"Talk to Vapi\\"]"
  - action: speak
    text: "Hello, what can you do?"
`,
  ),
  app_("app_execute_javascript_without_code", false, `${PAGE}steps:\n  - action: execute_javascript\n`),
  app_(
    "app_selector_unbalanced",
    false,
    `${PAGE}steps:\n  - action: click\n    selector: "button[aria-label='x'"\n`,
  ),
  app_(
    "app_selector_empty_shadow_side",
    false,
    `${PAGE}steps:\n  - action: click\n    selector: "my-widget >>>"\n`,
  ),
  app_("app_selector_empty_text", false, `${PAGE}steps:\n  - action: click\n    selector: "text="\n`),
  app_("app_sleep_without_time", false, `${PAGE}steps:\n  - action: sleep\n`),
  app_("app_steps_not_a_list", false, `${PAGE}steps: click\n`),
  app_("app_step_not_a_mapping", false, `${PAGE}steps:\n  - click\n`),
  app_(
    "app_metrics_map",
    false,
    `${PAGE}steps:\n  - action: click\n    selector: b\n    metrics: { elapsed_time: true }\n`,
  ),
  app_("app_tags_not_a_list", false, `${PAGE}tags: default\n`),
  app_("app_malformed_yaml", false, `url: [unclosed\n`),
  app_("app_not_a_mapping", false, `- a\n- b\n`),
  app_("app_only_a_comment", false, `# nothing here\n`),

  scenario(
    "sc_turns",
    true,
    `tags: [default]
steps:
  - action: wait_for_voice
  - action: wait_for_silence
  - action: speak
    file: hello.wav
  - action: wait_for_voice
    metrics: elapsed_time
  - action: listen
    evaluation: "Does the agent offer a time?"
    timeout: 20000
`,
  ),
  scenario(
    "sc_speak_text",
    true,
    `steps:
  - action: speak
    text: "Hello, a table for two."
    voice: en-us
    gain_db: -3
  - action: wait_for_voice
    timeout: 15000
  - action: wait_for_silence
    silence_ms: 600
`,
  ),
  scenario(
    "sc_barge_in",
    true,
    `steps:
  - action: speak
    file: hello.wav
  - action: wait_for_voice
  - action: barge_in
    text: "Sorry, one more question."
    after_ms: 400
    stop_timeout_ms: 1500
`,
  ),
  scenario(
    "sc_noise",
    true,
    `steps:
  - action: speak
    file: hello.wav
    noise: { type: pink, snr_db: 10 }
  - action: noise
    type: pink
    duration_ms: 1500
    level_db: -30
    grace_ms: 1500
`,
  ),
  scenario(
    "sc_background_spec",
    true,
    `background: { type: pink, snr_db: 15 }\nsteps:\n  - action: wait_for_voice\n`,
  ),
  scenario(
    "sc_background_file",
    true,
    `background: hello.wav\nbackground_level_db: -30\nsteps:\n  - action: wait_for_voice\n`,
  ),
  scenario(
    "sc_network",
    true,
    `network:\n  - name: 3g\n  - name: custom\n    delay_ms: 120\n    loss_pct: 2\nsilence_ms: 600\nsteps:\n  - action: wait_for_voice\n`,
  ),
  scenario(
    "sc_tester_listen_background",
    true,
    `background: white_noise.mp3\ntags: [default]\nsteps:\n  - action: speak\n    file: hello.wav\n  - action: listen\n    evaluation: "It asks for a date"\n    metrics: score\n`,
  ),
  scenario("sc_no_steps", false, `tags: [default]\n`),
  scenario("sc_empty_steps", false, `steps: []\n`),
  scenario("sc_speak_neither_file_nor_text", false, `steps:\n  - action: speak\n`),
  scenario("sc_speak_file_and_text", false, `steps:\n  - action: speak\n    file: hello.wav\n    text: hi\n`),
  scenario("sc_barge_in_neither", false, `steps:\n  - action: barge_in\n    after_ms: 300\n`),
  // The forms the server used to accept and the agent had no way to run.
  scenario(
    "sc_noise_without_duration",
    false,
    `steps:\n  - action: noise\n    file: hello.wav\n    snr_db: 5\n`,
  ),
  scenario("sc_network_step", false, `steps:\n  - action: network\n    profile: 3g\n`),
  scenario(
    "sc_noise_spec_unknown_key",
    false,
    `steps:\n  - action: speak\n    file: hello.wav\n    noise: { type: pink, volume: 3 }\n`,
  ),
  scenario("sc_noise_bad_type", false, `steps:\n  - action: noise\n    type: purple\n    duration_ms: 500\n`),
  scenario(
    "sc_network_profile_without_name",
    false,
    `network:\n  - delay_ms: 100\nsteps:\n  - action: wait_for_voice\n`,
  ),
  scenario(
    "sc_network_loss_over_100",
    false,
    `network:\n  - name: x\n    loss_pct: 150\nsteps:\n  - action: wait_for_voice\n`,
  ),
  scenario(
    "sc_network_per_direction",
    true,
    `network:
  - name: asym
    delay_ms: 50
    uplink: { loss_pct: 5 }
    downlink: { rate_kbit: 500, jitter_ms: 10 }
steps:
  - action: wait_for_voice
`,
  ),
  scenario(
    "sc_network_direction_unknown_key",
    false,
    `network:
  - name: x
    uplink: { latency: 5 }
steps:
  - action: wait_for_voice
`,
  ),
  scenario("sc_background_number", false, `background: 5\nsteps:\n  - action: wait_for_voice\n`),
  scenario("sc_negative_timeout", false, `steps:\n  - action: wait_for_silence\n    timeout: -1\n`),
  scenario("sc_sleep_over_an_hour", false, `steps:\n  - action: sleep\n    time: 4000000\n`),
  // Audio by plain file name only: no absolute path, no folder, no `..`, no hidden file.
  scenario("sc_speak_absolute_path", false, `steps:\n  - action: speak\n    file: /etc/hostname\n`),
  scenario("sc_speak_dotdot", false, `steps:\n  - action: speak\n    file: ../x.wav\n`),
  scenario("sc_speak_in_folder", false, `steps:\n  - action: speak\n    file: assets/hello.wav\n`),
  scenario(
    "sc_noise_hidden_file",
    false,
    `steps:\n  - action: noise\n    file: .env\n    duration_ms: 500\n`,
  ),
  scenario(
    "sc_background_path",
    false,
    `background: /proc/self/environ\nsteps:\n  - action: wait_for_voice\n`,
  ),
  scenario(
    "sc_speak_unknown_key",
    false,
    `steps:\n  - action: speak\n    file: hello.wav\n    volume: 3\n`,
  ),
  scenario("sc_voice_option", false, `steps:\n  - action: speak\n    text: hi\n    voice: "-f/etc/passwd"\n`),
];

async function call(method: string, path: string, body?: unknown) {
  const res = await app.request(path, {
    method,
    headers: { ...me.headers, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, data: await res.json() };
}

/** Whether the API accepts `input` (yaml or config) for `kind`; the stored config when it does. */
async function apiVerdict(
  kind: Kind,
  input: { yaml: string } | { config: unknown },
): Promise<{ accepted: boolean; message?: string; stored?: unknown }> {
  const path = kind === "application" ? "/api/v1/workflows" : "/api/v1/eval-sets";
  const r = await call("POST", path, {
    projectId: me.defaultProjectId,
    name: "format agreement",
    ...(kind === "application" ? { provider: { name: "Format agreement", sku: 0 } } : {}),
    ...input,
  });
  if (r.status === 400) {
    assert.equal(r.data.error.code, "invalid_input");
    return { accepted: false, message: r.data.error.message };
  }
  assert.equal(r.status, 201, JSON.stringify(r.data));
  assert.equal((await call("DELETE", `${path}/${r.data.id}`)).status, 200);
  return { accepted: true, stored: r.data.config };
}

/** `deno task agent validate` over files of one folder: file name → accepted, or its error. */
async function agentVerdicts(dir: string, files: { file: string; kind: Kind }[]) {
  const paths = (kind: Kind) => files.filter((f) => f.kind === kind).map((f) => join(dir, f.file));
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "agent/main.ts",
      "validate",
      "--app",
      paths("application").join(","),
      "--suite",
      paths("scenario").join(","),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout).split("\n");
  const stderr = new TextDecoder().decode(out.stderr).split("\n");
  const verdicts = new Map<string, { accepted: boolean; message?: string }>();
  for (const { file } of files) {
    const ok = stdout.some((l) => l.startsWith("ok ") && l.endsWith(`/${file}`));
    const refused = stderr.find((l) => l.startsWith("✗ ") && l.includes(`/${file}`));
    assert.ok(ok !== !!refused, `one verdict for ${file}:\n${stdout.join("\n")}\n${stderr.join("\n")}`);
    verdicts.set(file, { accepted: ok, message: refused });
  }
  assert.equal(out.code, [...verdicts.values()].every((v) => v.accepted) ? 0 : 1);
  return verdicts;
}

Deno.test("the API and `deno task agent validate` accept and refuse the same configs", async () => {
  await checkAgreement();
});

async function checkAgreement() {
  const dir = await Deno.makeTempDir({ prefix: "vox-format-" });
  await Deno.mkdir(join(dir, "assets"));
  await Deno.copyFile("tests/fixtures/vat/assets/hello.wav", join(dir, "assets", "hello.wav"));

  const files: { file: string; kind: Kind }[] = [];
  const api = new Map<string, Awaited<ReturnType<typeof apiVerdict>>>();
  for (const c of CASES) {
    const asYaml = await apiVerdict(c.kind, { yaml: c.yaml });
    let parsed: unknown = null;
    try {
      parsed = parseYaml(c.yaml);
    } catch { /* only the yaml form applies */ }
    if (parsed) {
      const asJson = await apiVerdict(c.kind, { config: parsed });
      assert.equal(asJson.accepted, asYaml.accepted, `${c.name}: yaml and config agree`);
    }
    api.set(c.name, asYaml);
    await Deno.writeTextFile(join(dir, `${c.name}.yaml`), c.yaml);
    files.push({ file: `${c.name}.yaml`, kind: c.kind });
    if (asYaml.stored) {
      // JSON is YAML: what a daemon job carries goes through the same loader.
      await Deno.writeTextFile(join(dir, `${c.name}.stored.yaml`), JSON.stringify(asYaml.stored));
      files.push({ file: `${c.name}.stored.yaml`, kind: c.kind });
    }
  }
  const agent = await agentVerdicts(dir, files);

  const disagreements: string[] = [];
  for (const c of CASES) {
    const server = api.get(c.name)!;
    const local = agent.get(`${c.name}.yaml`)!;
    if (server.accepted !== c.valid || local.accepted !== c.valid) {
      disagreements.push(
        `${c.name} (expected ${c.valid ? "valid" : "invalid"}): API ${
          server.accepted ? "accepts" : `refuses (${server.message})`
        }, agent ${local.accepted ? "accepts" : `refuses (${local.message})`}`,
      );
    }
    const stored = agent.get(`${c.name}.stored.yaml`);
    if (stored && !stored.accepted) {
      disagreements.push(`${c.name}: the stored config is refused: ${stored.message}`);
    }
  }
  assert.deepEqual(disagreements, []);
  assert.ok(CASES.some((c) => c.valid) && CASES.some((c) => !c.valid));
  await Deno.remove(dir, { recursive: true });
}

Deno.test("the API's 400 names the field: a path as audio, an unknown step key, a screenshot folder", async () => {
  const post = (config: unknown) =>
    call("POST", "/api/v1/eval-sets", { projectId: me.defaultProjectId, name: "refused", config });
  const cases: [unknown, RegExp][] = [
    [{ steps: [{ action: "speak", file: "/etc/hostname" }] }, /^config\.steps\.0\.file: .*plain file name/],
    [{ steps: [{ action: "speak", file: "../x.wav" }] }, /^config\.steps\.0\.file: .*plain file name/],
    [
      { steps: [{ action: "wait_for_voice", timeout: 1000, outputDir: "/tmp" }] },
      /^config\.steps\.0: unknown key "outputDir"/,
    ],
    [{ background: "/etc/hostname", steps: [{ action: "wait_for_voice" }] }, /^config\.background/],
    [
      { steps: [{ action: "sleep", time: 400_000 }, { action: "sleep", time: 400_000 }] },
      /^config\.steps\.1\.time: .*add up/,
    ],
  ];
  for (const [config, message] of cases) {
    const r = await post(config);
    assert.equal(r.status, 400, JSON.stringify(config));
    assert.equal(r.data.error.code, "invalid_input");
    assert.match(r.data.error.message, message);
  }
  const shot = await call("POST", "/api/v1/workflows", {
    projectId: me.defaultProjectId,
    name: "refused",
    provider: { name: "Format agreement", sku: 0 },
    config: { url: "https://agent.example.test/", steps: [{ action: "screenshot", filename: "../a.png" }] },
  });
  assert.equal(shot.status, 400);
  assert.match(shot.data.error.message, /^config\.steps\.0\.filename: .*plain file name/);
});
