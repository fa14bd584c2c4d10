// /run-your-own's YAML editor and error placement, without a server or a browser
// (run_your_own_test.ts has those).
import assert from "node:assert/strict";
import { applicationSchema, parseYaml, scenarioSchema } from "../agent/format.ts";
import { fieldOf } from "../components/run_your_own/api.ts";
import { DEFAULT_EVAL, DEFAULT_LAUNCH, stepsToYaml, yamlToSteps } from "../components/run_your_own/steps.ts";

Deno.test("the default steps are valid voice-agent-tester files and survive the YAML editor", () => {
  const app = parseYaml(`${stepsToYaml(DEFAULT_LAUNCH)}url: "https://example.com/agent"\n`);
  assert.ok(applicationSchema.safeParse(app).success);
  assert.ok(scenarioSchema.safeParse(parseYaml(stepsToYaml(DEFAULT_EVAL))).success);
  assert.deepEqual(yamlToSteps(stepsToYaml(DEFAULT_EVAL)), DEFAULT_EVAL);
  assert.match(yamlToSteps("steps:\n  - action: noise\n    file: a.wav\n    snr_db: 5\n") as string, /noise/);
  assert.match(yamlToSteps("background: cafe.ogg\nsteps: []\n") as string, /background/);
  assert.match(yamlToSteps("steps: [") as string, /does not parse/);
});

Deno.test("an API message is put at the field it names", () => {
  assert.equal(fieldOf("workflow", "yaml.url: Invalid URL"), "link");
  assert.equal(fieldOf("workflow", "yaml.url: needs exactly one of url or html"), "link");
  assert.equal(fieldOf("workflow", "yaml.steps.0.selector: Too small"), "launch");
  assert.equal(fieldOf("workflow", "yaml: Unexpected flow-seq-end at line 2"), "launch");
  assert.equal(fieldOf("workflow", "provider: Invalid input"), "product");
  assert.equal(fieldOf("workflow", "projectId: No project 9"), "project");
  assert.equal(fieldOf("evalSet", "yaml.steps: Too small"), "eval");
  assert.equal(fieldOf("run", "region: lowercase letters, digits and dashes, at most 40"), "region");
  assert.equal(fieldOf("run", "Workflow limit reached"), "form");
});
