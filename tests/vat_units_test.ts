// voice-agent-tester compatibility, the pure parts: selectors' syntax, --params, url
// templates, the loader's unknown-action error, and the CSV report's columns and order.
import assert from "node:assert/strict";
import { join } from "node:path";
import { ConfigError, loadConfig } from "../agent/config.ts";
import { reportCsv } from "../agent/csv_report.ts";
import { fillTemplate, parseParams, selectorProblem, templateKeys } from "../agent/format.ts";
import { buildReport, type RunRecord } from "../agent/report.ts";

Deno.test("selectorProblem() passes puppeteer's forms and names what no engine accepts", () => {
  for (
    const ok of [
      "#start",
      "input[type='password']",
      'button[aria-label="Talk to Vapi"]',
      "telnyx-ai-agent >>> button",
      "a >>>> b",
      "text=Call AI agent",
      "text/Agree",
      'aria/Submit[role="button"]',
      "div::-p-text(Call (now))",
      "button[data-x='a]b']",
      "a\\[b",
    ]
  ) assert.equal(selectorProblem(ok), null, ok);
  assert.match(selectorProblem("my-widget >>>")!, /both sides/);
  assert.match(selectorProblem(">>> button")!, /both sides/);
  assert.match(selectorProblem("text=")!, /nothing after text=/);
  assert.match(selectorProblem("button[aria-label='x'")!, /unclosed \[/);
  assert.match(selectorProblem("div::-p-text(x")!, /unclosed \(/);
  assert.match(selectorProblem("a]")!, /unbalanced \]/);
  assert.match(selectorProblem('input[value="x]')!, /unclosed "/);
});

Deno.test("parseParams() reads key=value,… as the tester; fillTemplate() reports what is missing", () => {
  assert.deepEqual(parseParams(["assistantId=a1, shareKey = s=2 ", "assistantId=a2"]), {
    assistantId: "a2",
    shareKey: "s=2",
  });
  assert.throws(() => parseParams(["novalue"]), /"novalue" is not key=value/);
  assert.throws(() => parseParams(["=x"]), /is not key=value/);
  const url = "https://x.test/?a={{assistantId}}&s={{shareKey}}&again={{assistantId}}#{{ spaced }}";
  assert.deepEqual(templateKeys(url), ["assistantId", "shareKey"]);
  assert.deepEqual(fillTemplate(url, { assistantId: "A", shareKey: "S" }), {
    text: "https://x.test/?a=A&s=S&again=A#{{ spaced }}",
    missing: [],
  });
  assert.deepEqual(fillTemplate(url, { assistantId: "$&" }).missing, ["shareKey"]);
  assert.equal(fillTemplate("{{k}}", { k: "$&$1" }).text, "$&$1");
});

Deno.test("the loader fills url params, refuses a missing one, and names unknown actions with the known ones", async () => {
  const dir = await Deno.makeTempDir({ prefix: "vox-vat-units-" });
  const app = join(dir, "telnyx.yaml");
  await Deno.writeTextFile(app, `url: "https://portal.example.test/#/demo?assistantId={{assistantId}}"\n`);
  assert.equal(
    (await loadConfig(app, "application", { params: { assistantId: "as-1" } })).url,
    "https://portal.example.test/#/demo?assistantId=as-1",
  );
  await assert.rejects(
    () => loadConfig(app, "application", { params: { other: "x" } }),
    (err: ConfigError) =>
      err.file === app && /needs --params assistantId=… \(missing \{\{assistantId\}\}\)/.test(err.message),
  );
  assert.equal(
    (await loadConfig(app, "application", { formatOnly: true })).url?.includes("{{assistantId}}"),
    true,
  );
  // Values go in as written, as the tester's String.replace put them (without its $& patterns).
  await Deno.writeTextFile(app, `url: "https://x.test/{{path}}"\n`);
  assert.equal((await loadConfig(app, "application", { params: { path: "a b" } })).url, "https://x.test/a b");
  await Deno.writeTextFile(
    app,
    `url: "https://x.test/"\nsteps:\n  - action: sleep\n    time: 5\n  - action: click_slowly\n`,
  );
  await assert.rejects(
    () => loadConfig(app, "application"),
    (err: ConfigError) =>
      err.file === app && err.step === 2 &&
      /unknown action "click_slowly" \(known: click, click_with_retry, .*execute_javascript/.test(
        err.message,
      ),
  );
  await Deno.remove(dir, { recursive: true });
});

const run = (over: Partial<RunRecord>): RunRecord => ({
  run: 1,
  app: "/x/applications/telnyx.yaml",
  suite: "/x/scenarios/appointment.yaml",
  repetition: 1,
  ok: true,
  error: null,
  steps: [],
  turns: [],
  noise_checks: [],
  recording: null,
  sample_rate: null,
  naturalness: null,
  duration_ms: 1000,
  attempt: 1,
  ...over,
});

Deno.test("reportCsv(): the tester's columns, then Vox's; a row per attempt in run order", () => {
  const step = (index: number, action: string, metrics: Record<string, number>) => ({
    file: "f",
    step: index,
    index,
    action,
    ok: true,
    elapsed_ms: 1,
    metrics,
  });
  const first = run({
    run: 1,
    steps: [
      step(2, "wait_for_voice", { elapsed_time: 812.6 }),
      step(5, "listen", { score: 0.5, elapsed_time: 3 }),
    ],
    turns: [{ kind: "response", latency_ms: 700, ok: true, run: 1, file: "f", step: 2 }],
  });
  const second = run({
    run: 2,
    app: "/x/applications/vapi.yml",
    repetition: 2,
    ok: false,
    error: { message: "x", file: "f", step: 1, action: "click" },
    duration_ms: 40,
    attempt: 2,
    steps: [step(10, "wait_for_voice", { elapsed_time: 5 })],
  });
  const report = buildReport([first, second], new Date());
  const { turns: _t, noise_checks: _n, ...retried } = run({
    run: 2,
    app: "/x/applications/vapi.yml",
    ok: false,
  });
  report.retried = [retried];
  const lines = reportCsv(report).split("\n");
  assert.equal(lines.at(-1), "");
  assert.equal(
    lines[0],
    "app, scenario, repetition, success, duration, step_2_wait_for_voice_elapsed_time, step_5_listen_elapsed_time, " +
      "step_5_listen_score, step_10_wait_for_voice_elapsed_time, vox_run, vox_attempt, vox_response_latency_median_ms, " +
      "vox_interrupt_latency_median_ms, vox_turns, vox_turns_failed, vox_naturalness",
  );
  assert.deepEqual(lines.slice(1, -1), [
    "telnyx, appointment, 0, 1, 1000, 813, 3, 0.5, , 1, 1, 700, , 1, 0, ",
    "vapi, appointment, 0, 0, 1000, , , , , 2, 1, , , , , ",
    "vapi, appointment, 1, 0, 40, , , , 5, 2, 2, , , 0, 0, ",
  ]);
});
