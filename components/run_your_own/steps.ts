// The steps of a voice-agent-tester document as the /run-your-own guided editor holds them,
// and the trip between those steps and YAML. Which YAML is valid is the API's to judge; this
// only decides whether the guided form can show a document.
import { parse, stringify } from "yaml";

/** The step actions the guided editor offers; anything else is edited as YAML. */
export const GUIDED_ACTIONS = {
  click: { label: "Click", fields: ["selector"] },
  wait_for_element: { label: "Wait for element", fields: ["selector", "timeout"] },
  speak: { label: "Speak", fields: ["say"] },
  wait_for_voice: { label: "Wait for voice", fields: ["measure", "timeout"] },
  wait_for_silence: { label: "Wait for silence", fields: ["timeout"] },
  barge_in: { label: "Barge in", fields: ["say", "after_ms"] },
  sleep: { label: "Pause", fields: ["time"] },
} as const;
export type GuidedAction = keyof typeof GUIDED_ACTIONS;
const STEP_KEYS = new Set([
  "action",
  "selector",
  "timeout",
  "text",
  "voice",
  "file",
  "metrics",
  "after_ms",
  "time",
]);

/** One step as the guided editor holds it (voice-agent-tester field names). */
export interface GuidedStep {
  action: GuidedAction;
  selector?: string;
  timeout?: number;
  text?: string;
  /** Vox: the voice `text` is spoken in (agent/voices.ts). */
  voice?: string;
  file?: string;
  metrics?: string;
  after_ms?: number;
  time?: number;
}

/**
 * What a speak step may name, offered beside its fields (the console's eval sets): the
 * project's clips, the shipped library's clips and the voices.
 */
export interface AudioChoices {
  clips: string[];
  library: string[];
  voices: string[];
}

/** What a simple page needs to be ready: its body. */
export const DEFAULT_LAUNCH: GuidedStep[] = [{
  action: "wait_for_element",
  selector: "body",
  timeout: 15000,
}];
/** One response turn and one interruption. */
export const DEFAULT_EVAL: GuidedStep[] = [
  { action: "speak", text: "Hi! What can you help me with today?" },
  { action: "wait_for_voice", metrics: "elapsed_time", timeout: 15000 },
  { action: "barge_in", text: "Sorry, one more question.", after_ms: 800 },
  { action: "wait_for_silence", timeout: 20000 },
];

/** The steps as a voice-agent-tester document (`steps:` …). */
export function stepsToYaml(steps: GuidedStep[]): string {
  return stringify({ steps: steps.map(clean) }, { lineWidth: 0 });
}

/**
 * The steps of a YAML document when the guided editor can show every one of them, else a
 * sentence saying why it cannot (the YAML itself is still the API's to judge).
 */
export function yamlToSteps(text: string): GuidedStep[] | string {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch {
    return "The YAML does not parse; fix it here first.";
  }
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) return "The YAML is not a mapping with steps.";
  const keys = Object.keys(doc);
  if (keys.some((k) => k !== "steps")) {
    return `The guided form has no place for ${
      keys.filter((k) => k !== "steps").join(", ")
    }; keep it in YAML.`;
  }
  const steps = (doc as { steps?: unknown }).steps ?? [];
  if (!Array.isArray(steps)) return "steps must be a list.";
  const out: GuidedStep[] = [];
  for (const s of steps) {
    if (!s || typeof s !== "object" || !((s as { action?: string }).action! in GUIDED_ACTIONS)) {
      return `The guided form has no "${(s as { action?: string })?.action ?? "?"}" step; keep it in YAML.`;
    }
    if (Object.keys(s).some((k) => !STEP_KEYS.has(k))) return "Some steps have options only YAML can hold.";
    out.push(s as GuidedStep);
  }
  return out;
}

function clean(s: GuidedStep): Record<string, unknown> {
  return Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined && v !== ""));
}

/** One steps editor's state: the guided list or the YAML text, whichever is shown. */
export interface Editor {
  mode: "guided" | "yaml";
  steps: GuidedStep[];
  yaml: string;
  /** Why switching to the guided form was refused. */
  note: string | null;
}

/** A guided editor showing `steps`. */
export const editorOf = (steps: GuidedStep[]): Editor => ({
  mode: "guided",
  steps,
  yaml: stepsToYaml(steps),
  note: null,
});

/** The YAML an editor stands for, in whichever mode it is. */
export const editorYaml = (e: Editor) => e.mode === "guided" ? stepsToYaml(e.steps) : e.yaml;

/** An editor for a stored document: guided when the form can show it, else its YAML. */
export function editorFromYaml(text: string): Editor {
  const steps = yamlToSteps(text);
  return typeof steps === "string" ? { mode: "yaml", steps: [], yaml: text, note: null } : editorOf(steps);
}
