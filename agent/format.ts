/**
 * The voice-agent-tester YAML formats (SPEC §7) with Vox's additions, defined once: an
 * application file (a workflow's config: how to open and start the voice agent) and a
 * scenario file (an eval set's config: what to say and measure). The server validates API
 * input and builds the OpenAPI document from these schemas; the agent's loader
 * (`agent/config.ts`) validates the same files with them before a browser starts, so a config
 * the server stores is one the agent runs.
 *
 * Configs are untrusted input (any signed-up user writes them; docs/security.md). Unknown
 * top-level fields are kept (the tester reads some Vox does not), but a step's keys are checked
 * strictly, so a typo or a field Vox would not honour is refused with its name. Files are named
 * by plain name only (no folder, no `..`), and sizes, durations, counts and total sleep are
 * capped (`LIMITS`) so a stored config cannot ask for unbounded work. Pure: zod and yaml only,
 * no file access (audio files named here are resolved by the agent's loader).
 */
import { parse, stringify, YAMLParseError } from "yaml";
import { z } from "zod";

/**
 * What one config may ask for. The server refuses a config beyond these with a 400 naming the
 * field; the agent refuses it at load (same schema). A job's deadline (`jobDeadlineMs`) is
 * derived from the steps within these bounds and capped by the server's `jobs.max_runtime_seconds`.
 */
export const LIMITS = {
  /** The longest wait or pause one step may ask for, in ms (ten minutes). */
  stepMs: 600_000,
  /** All `sleep` and `pause` steps and click_with_retry delays of one file together, in ms (ten minutes). */
  totalSleepMs: 600_000,
  /** Steps in an application file. */
  applicationSteps: 200,
  /** Steps in a scenario file. */
  scenarioSteps: 500,
  /** Repetitions of one job. */
  repeat: 100,
  /** Retries of one click_with_retry step. */
  retries: 100,
  /** Bytes of one run's recording pulled from the page (stereo 16-bit: ~45 min at 48 kHz). */
  recordingBytes: 512 * 1024 * 1024,
  /** Calls to the page for one recording, whatever the page answers. */
  recordingCalls: 20_000,
} as const;

/** The longest wait or pause a step may ask for, in ms. */
export const MAX_STEP_MS = LIMITS.stepMs;

/**
 * A file a config names: a plain file name in the config's folder or its `assets/` (no folder,
 * no leading dot, so neither `/etc/hostname` nor `../x.wav` nor `.env`).
 */
export const FILE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;
const fileName = (what: string) =>
  z.string().min(1).max(200).regex(
    FILE_NAME,
    `${what} must be a plain file name (letters, digits, . _ -; no folder, no leading dot)`,
  );

const selector = z.string({ error: "needs a selector" }).min(1, "needs a selector").max(2000)
  .superRefine((sel, ctx) => {
    const problem = selectorProblem(sel);
    if (problem) ctx.addIssue({ code: "custom", message: `selector ${JSON.stringify(sel)}: ${problem}` });
  });
const waitMs = z.number().positive().max(MAX_STEP_MS);
const pauseMs = z.number().nonnegative().max(MAX_STEP_MS);
/** An audio file name, resolved by whoever runs the file (its folder or assets/ only). */
const audio = fileName("an audio file");
const noiseType = z.enum(["white", "pink", "brown"]);
/** `metrics: elapsed_time` or a list of metric names, reported per step. */
const metrics = z.union([z.string(), z.array(z.string())]).optional();

/** Vox: noise mixed into the microphone, from a file or generated, at an SNR or a level. */
const noiseSpec = z.strictObject({
  file: audio.optional(),
  type: noiseType.optional(),
  snr_db: z.number().optional(),
  level_db: z.number().optional(),
  seed: z.number().int().optional(),
}).describe("Vox: noise from a file or generated (white, pink, brown), at snr_db or level_db");
/** Noise mixed into the microphone (a speak step's `noise`, a scenario's `background`). */
export type NoiseSpec = z.infer<typeof noiseSpec>;

const step = <T extends z.ZodRawShape>(action: string, shape: T) =>
  z.strictObject({ action: z.literal(action), metrics, ...shape }, {
    error: (issue) =>
      issue.code === "unrecognized_keys"
        ? `unknown key${issue.keys.length > 1 ? "s" : ""} ${
          issue.keys.map((k) => `"${k}"`).join(", ")
        } in a ${action} step`
        : undefined,
  });

const speakShape = {
  file: audio.optional(),
  text: z.string().min(1).max(5000).optional(),
  voice: z.string().max(100).regex(
    /^(?:(?:espeak|flite|festival|openai):)?[A-Za-z0-9][A-Za-z0-9_+-]*$/,
    "a voice name (letters, digits, _ + -), optionally after an engine: espeak:, flite:, festival: or openai:",
  ).optional().describe(
    "Vox: the voice for text: an espeak-ng voice (en-us), or engine:voice (flite:slt, festival:cmu_us_slt_arctic_hts, openai:alloy)",
  ),
  gain_db: z.number().optional().describe("Vox: gain applied to the speech"),
  noise: noiseSpec.optional(),
};
const needsFileOrText = (s: { file?: string; text?: string }) => Boolean(s.file) !== Boolean(s.text);
const fileOrText = "needs exactly one of file or text";

const steps = [
  step("click", { selector, timeout: waitMs.optional() }),
  step("click_with_retry", {
    selector,
    retries: z.number().int().nonnegative().max(LIMITS.retries).optional().describe(
      "attempts in all (voice-agent-tester: 0 or absent means 2)",
    ),
    retryDelay: pauseMs.optional().describe("ms between attempts (3000)"),
    checkDelay: pauseMs.optional().describe("ms after a click before checking the call connected (4000)"),
    delay: pauseMs.optional().describe("Vox's earlier name for retryDelay"),
    timeout: waitMs.optional(),
  }),
  step("wait", { selector, timeout: waitMs.optional() }),
  step("wait_for_element", { selector, timeout: waitMs.optional() }),
  step("type", { selector, text: z.string().max(10_000) }),
  step("fill", { selector, text: z.union([z.string().max(10_000), z.number()]) }),
  step("select", {
    selector,
    value: z.string().max(1000).optional(),
    values: z.array(z.string().max(1000)).max(100).optional(),
    text: z.string().max(1000).optional(),
    checked: z.boolean().optional(),
  }),
  step("sleep", { time: pauseMs }),
  step("execute_javascript", {
    code: z.string().min(1, "needs code").max(100_000),
    timeout: waitMs.optional(),
  }).describe(
    "voice-agent-tester (unreleased versions): code evaluated in the page, like the page's own scripts",
  ),
  step("screenshot", {
    filename: fileName("a screenshot's filename").optional().describe(
      "Vox: a plain name; the file goes to the job's own output folder",
    ),
    outputDir: fileName("outputDir").optional().describe(
      "Vox: a plain folder name inside the job's own output folder",
    ),
  }),
  step("speak", speakShape).refine(needsFileOrText, fileOrText),
  step("wait_for_voice", { timeout: waitMs.optional() }),
  step("wait_for_silence", {
    timeout: waitMs.optional(),
    silence_ms: waitMs.optional().describe("Vox: the silence that ends the agent's turn (default 400 ms)"),
  }),
  step("listen", { evaluation: z.string().max(5000).optional(), timeout: waitMs.optional() }),
  step("barge_in", {
    ...speakShape,
    after_ms: pauseMs.optional(),
    stop_timeout_ms: waitMs.optional(),
    timeout: waitMs.optional(),
  }).refine(needsFileOrText, fileOrText).describe(
    "Vox: speech injected after_ms into the agent's reply; the agent must stop within stop_timeout_ms",
  ),
  step("noise", {
    file: audio.optional(),
    type: noiseType.optional(),
    duration_ms: waitMs,
    level_db: z.number().optional(),
    grace_ms: pauseMs.optional(),
  }).describe("Vox: noise alone; a reply within grace_ms, or the agent stopping, counts against it"),
  // Turn taking (issue 20; docs/agent.md "Turn taking").
  step("pause", { ms: waitMs }).describe(
    "Vox: the caller holds the turn for ms of silence after their last voiced sample; the agent talking in it is a takeover",
  ),
  step("backchannel", {
    ...speakShape,
    after: pauseMs.optional().describe("ms into the agent's reply (300); after_ms is the same"),
    after_ms: pauseMs.optional(),
    stop_window_ms: waitMs.optional().describe(
      "the agent stopping within this after the backchannel is a false stop (1500)",
    ),
    timeout: waitMs.optional(),
  }).refine(needsFileOrText, fileOrText).describe(
    "Vox: a short acknowledgement (mm-hmm) spoken into the agent's reply; the agent should keep talking",
  ),
  step("speech_nearby", {
    ...speakShape,
    grace_ms: pauseMs.optional().describe(
      "the agent replying or stopping within this after the speech counts against it (2000)",
    ),
  }).refine(needsFileOrText, fileOrText).describe(
    "Vox: speech not addressed to the agent (a bystander), at gain_db; it must neither trigger a reply nor stop the agent",
  ),
] as const;

/** Every step action: voice-agent-tester's, then Vox's additions (barge_in, noise, pause, backchannel, speech_nearby). */
export const STEP_ACTIONS: readonly string[] = steps.map((s) => s.shape.action.value);

/** One step: an `action` and its fields. */
export const stepSchema = z.discriminatedUnion("action", steps, {
  error: (issue) => {
    if (issue.code !== "invalid_union") return undefined;
    const action = (issue.input as { action?: unknown } | undefined)?.action;
    return typeof action === "string"
      ? `unknown action "${action}" (known: ${STEP_ACTIONS.join(", ")})`
      : `step has no "action"`;
  },
});

/** A step as the agent runs it: fields are read by action, unknown ones kept. */
export type Step = { action: string; [k: string]: unknown };

const tags = z.array(z.string().max(100)).max(50).optional();

/** The pause a step asks for outright (sleep, click_with_retry's delays), in ms. */
function pauseOf(step: Step): number {
  if (step.action === "sleep" && typeof step.time === "number") return step.time;
  if (step.action === "pause" && typeof step.ms === "number") return step.ms;
  if (step.action === "click_with_retry") {
    // Each attempt may wait checkDelay after its click and retryDelay before the next one.
    const retryDelay = typeof step.retryDelay === "number"
      ? step.retryDelay
      : typeof step.delay === "number"
      ? step.delay
      : 3000;
    const checkDelay = typeof step.checkDelay === "number" ? step.checkDelay : 4000;
    return clickAttempts(step) * (retryDelay + checkDelay);
  }
  return 0;
}

/** click_with_retry's attempts in all: `retries`, where 0 or absent means 2 (voice-agent-tester's rule). */
export function clickAttempts(step: Step): number {
  return typeof step.retries === "number" && step.retries > 0 ? step.retries : 2;
}

/** A file's steps, refusing more than `max` and pauses adding up to more than LIMITS.totalSleepMs. */
const stepList = (max: number) =>
  z.array(stepSchema).max(max).superRefine((list, ctx) => {
    let total = 0;
    for (const [i, st] of list.entries()) {
      total += pauseOf(st as Step);
      if (total > LIMITS.totalSleepMs) {
        ctx.addIssue({
          code: "custom",
          path: [i, st.action === "sleep" ? "time" : st.action === "pause" ? "ms" : "retryDelay"],
          message: `the file's sleeps and retry delays add up to more than ${LIMITS.totalSleepMs} ms`,
        });
        return;
      }
    }
  });

/** Vox: one direction's impairment, overriding the profile's values for that direction. */
const linkImpairment = z.strictObject({
  delay_ms: z.number().nonnegative().max(60_000).optional(),
  jitter_ms: z.number().nonnegative().max(60_000).optional(),
  loss_pct: z.number().min(0).max(100).optional(),
  rate_kbit: z.number().positive().optional(),
});

/**
 * Vox: an impaired-network profile, a preset by name or explicit values (both directions),
 * with optional `uplink` (from the caller's browser) and `downlink` (towards it) overrides.
 */
const networkProfile = z.strictObject({
  name: z.string().min(1).max(100),
  delay_ms: z.number().nonnegative().max(60_000).optional(),
  jitter_ms: z.number().nonnegative().max(60_000).optional(),
  loss_pct: z.number().min(0).max(100).optional(),
  rate_kbit: z.number().positive().optional(),
  uplink: linkImpairment.optional(),
  downlink: linkImpairment.optional(),
});
/** A network profile a scenario runs under (network resilience). */
export type NetworkProfile = z.infer<typeof networkProfile>;

/**
 * Vox: an OpenAI-Realtime-protocol WebSocket endpoint as the application (agent/realtime; no
 * browser). The API key comes from the workflow's sealed secrets, named by `auth.secret`.
 */
export const realtimeSchema = z.strictObject({
  url: z.url({ protocol: /^wss?$/ }).max(2000).describe(
    "ws:// or wss:// endpoint, e.g. …/v1/realtime?model=…",
  ),
  dialect: z.enum(["ga", "beta"]).default("ga").describe(
    "event and session names sent (both are accepted); beta adds OpenAI-Beta: realtime=v1",
  ),
  model: z.string().min(1).max(200).optional().describe("session.model (GA)"),
  auth: z.strictObject({
    secret: z.string().regex(/^[A-Za-z][A-Za-z0-9_.-]{0,63}$/, "a secret name of the workflow"),
    header: z.string().regex(/^[A-Za-z0-9-]{1,100}$/, "a header name").default("Authorization"),
    scheme: z.string().max(50).regex(/^[A-Za-z0-9-]*$/).default("Bearer").describe(
      "prefix before the key ('' for Azure's api-key header)",
    ),
  }).optional(),
  format: z.enum(["pcm16", "g711_ulaw", "g711_alaw"]).default("pcm16").describe(
    "caller and agent audio: PCM16 24 kHz or G.711 8 kHz",
  ),
  turn_detection: z.union([
    z.null(),
    z.looseObject({ type: z.enum(["server_vad", "semantic_vad"]) }),
  ]).optional().describe("sent in session.update; null: the caller commits and asks for each reply"),
  session: z.record(z.string(), z.unknown()).optional().describe("more session.update fields, sent as given"),
  jitter_buffer_ms: z.number().min(0).max(2000).default(0).describe(
    "playback starts this long after audio arrives",
  ),
  barge_in: z.enum(["faithful", "dumb_speaker"]).default("faithful").describe(
    "faithful: flush playback on speech_started (truncate, cancel); dumb_speaker: never flush",
  ),
});
/** A Realtime application's endpoint and session settings. */
export type RealtimeSpec = z.infer<typeof realtimeSchema>;

/** An application file: how to open and start the voice agent. */
export const applicationSchema = z.looseObject({
  url: z.url({ protocol: /^https?$/ }).max(2000).optional(),
  /** A page served from the file's folder instead of a URL. */
  html: z.string().min(1).max(200_000).optional(),
  /** Vox: an OpenAI-Realtime WebSocket endpoint instead of a page. */
  realtime: realtimeSchema.optional(),
  tags,
  steps: stepList(LIMITS.applicationSteps).default([]),
}).refine((a) => [a.url, a.html, a.realtime].filter(Boolean).length === 1, {
  message: "needs exactly one of url or html (or realtime)",
  path: ["url"],
}).refine((a) => !a.realtime || a.steps.length === 0, {
  message: "a realtime application has no page, so no steps",
  path: ["steps"],
});

/** A scenario file: what to say and measure. */
export const scenarioSchema = z.looseObject({
  tags,
  /** Background noise for the whole scenario: a file (voice-agent-tester) or a Vox noise spec. */
  background: z.union([audio, noiseSpec]).optional(),
  background_level_db: z.number().optional().describe("Vox: the level of a background file in dBFS (-35)"),
  background_snr_db: z.number().optional().describe(
    "Vox: the background's level under each utterance, in dB",
  ),
  network: z.array(networkProfile).max(20).optional().describe(
    "Vox: impaired-network profiles (a preset name or netem values) the scenario runs again under",
  ),
  silence_ms: waitMs.optional().describe("Vox: the silence that ends the agent's turn, for every step"),
  steps: stepList(LIMITS.scenarioSteps).min(1),
});

/** An application file as validated (unknown fields kept). */
export type Application = z.infer<typeof applicationSchema>;
/** A scenario file as validated (unknown fields kept). */
export type Scenario = z.infer<typeof scenarioSchema>;

/** A YAML text that is not a mapping, or does not parse; `line` is where parsing failed. */
export class YamlError extends Error {
  override name = "YamlError";
  constructor(message: string, readonly line?: number) {
    super(message);
  }
}

/** Parses YAML into a plain object, refusing alias bombs and documents that are not mappings. */
export function parseYaml(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = parse(text, { maxAliasCount: 50, prettyErrors: true });
  } catch (err) {
    const line = err instanceof YAMLParseError ? err.linePos?.[0].line : undefined;
    throw new YamlError(err instanceof Error ? err.message.split("\n")[0] : String(err), line);
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) {
    throw new YamlError("the document must be a mapping (url/html, steps, tags …)");
  }
  return value as Record<string, unknown>;
}

/** A config as YAML, as voice-agent-tester reads it. */
export function toYaml(config: unknown): string {
  return stringify(config, { lineWidth: 0 });
}

/** What the deadline of a job allows per run beyond its steps: opening the page, saving the recording. */
const RUN_OVERHEAD_MS = 90_000;
/** A speech step's allowance: playing its audio and the reply it waits for. */
const SPEECH_MS = 120_000;

/** The most one step can take, as the agent runs it (`stepMs`: the default wait timeout). */
function stepBudgetMs(step: Step, stepMs: number): number {
  const timeout = typeof step.timeout === "number" ? step.timeout : stepMs;
  switch (step.action) {
    case "sleep":
      return pauseOf(step);
    case "click_with_retry":
      // Waits for the selector (the timeout, then 5 s), a possible reload and its 2 s settle.
      return pauseOf(step) + clickAttempts(step) * (2 * timeout + 2000);
    case "speak":
      return SPEECH_MS;
    case "barge_in":
      return SPEECH_MS + timeout + (typeof step.stop_timeout_ms === "number" ? step.stop_timeout_ms : 0) +
        (typeof step.after_ms === "number" ? step.after_ms : 0);
    case "noise":
      return (step.duration_ms as number) + (typeof step.grace_ms === "number" ? step.grace_ms : 0) + 10_000;
    case "listen":
      return 2 * timeout;
    case "pause":
      return (step.ms as number) + 5_000;
    case "backchannel":
      return SPEECH_MS + timeout + (typeof step.stop_window_ms === "number" ? step.stop_window_ms : 1500) +
        (typeof step.after_ms === "number" ? step.after_ms : typeof step.after === "number" ? step.after : 0);
    case "speech_nearby":
      return SPEECH_MS + (typeof step.grace_ms === "number" ? step.grace_ms : 2000);
    default:
      return timeout + 5_000;
  }
}

/**
 * A job's hard deadline in ms: what its steps can take at most (every wait running to its
 * timeout), per repetition and network profile, plus a per-run allowance; capped at `capMs`
 * (the server's `jobs.max_runtime_seconds`). Past it the agent fails the job and frees its slot.
 */
export function jobDeadlineMs(
  app: { steps: readonly Step[] },
  scenario: { steps: readonly Step[]; network?: readonly unknown[] },
  repeat: number,
  capMs: number,
  stepMs = 30_000,
): number {
  const perRun = RUN_OVERHEAD_MS + stepMs +
    [...app.steps, ...scenario.steps].reduce((sum, st) => sum + stepBudgetMs(st, stepMs), 0);
  const runs = Math.max(1, repeat) * (1 + (scenario.network?.length ?? 0));
  return Math.min(capMs, perRun * runs);
}

/**
 * Why a selector cannot work, or null. Selectors go to puppeteer unchanged: CSS, its deep
 * combinators `>>>` (any shadow root below) and `>>>>` (the next shadow root), `::-p-text(…)`,
 * `::-p-aria(…)`, `::-p-xpath(…)`, and the prefixes `text=`/`text/`, `aria=`/`aria/`,
 * `pierce=`/`pierce/`, `xpath=`/`xpath/` (voice-agent-tester's files use `text=Call AI agent`
 * and `telnyx-ai-agent >>> button`). Only what no engine accepts is refused: an empty part
 * around a deep combinator, an empty prefixed query, unbalanced quotes or brackets.
 */
export function selectorProblem(sel: string): string | null {
  const prefixed = /^(aria|pierce|xpath|text)[=/]/.exec(sel);
  if (prefixed) return sel.length > prefixed[0].length ? null : `nothing after ${prefixed[0]}`;
  const parts = sel.split(/>>>>?/);
  if (parts.length > 1 && parts.some((p) => p.trim() === "")) {
    return "a >>> or >>>> combinator needs a selector on both sides";
  }
  const close: Record<string, string> = { "(": ")", "[": "]" };
  const stack: string[] = [];
  let quote: string | null = null;
  for (let i = 0; i < sel.length; i++) {
    const c = sel[i];
    if (c === "\\") {
      i++;
      continue;
    }
    if (quote) {
      if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === "(" || c === "[") stack.push(close[c]);
    else if (c === ")" || c === "]") {
      if (stack.pop() !== c) return `unbalanced ${c}`;
    }
  }
  if (quote) return `unclosed ${quote}`;
  if (stack.length) return `unclosed ${stack[stack.length - 1] === ")" ? "(" : "["}`;
  return null;
}

/** `{{key}}` placeholders, as voice-agent-tester's `--params` fills them (no spaces inside). */
const PLACEHOLDER = /\{\{([^{}\s]+)\}\}/g;

/** The placeholder names a text uses, each once, in order. */
export function templateKeys(text: string): string[] {
  return [...new Set([...text.matchAll(PLACEHOLDER)].map((m) => m[1]))];
}

/**
 * Fills `{{key}}` placeholders from `params`. Returns the text and the keys it needed but
 * `params` lacks (the text then still holds those placeholders; callers refuse it).
 */
export function fillTemplate(
  text: string,
  params: Record<string, string>,
): { text: string; missing: string[] } {
  const missing = templateKeys(text).filter((k) => !Object.hasOwn(params, k));
  return {
    text: text.replace(PLACEHOLDER, (all, k: string) => Object.hasOwn(params, k) ? params[k] : all),
    missing,
  };
}

/**
 * Parses `--params key=value,key2=value2` as voice-agent-tester does: split on commas, then on
 * the first `=`; keys and values trimmed; later keys win. A pair without `=` or with an empty
 * key is an error here (the tester dropped it silently).
 */
export function parseParams(inputs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of inputs.flatMap((s) => s.split(",")).map((s) => s.trim()).filter(Boolean)) {
    const eq = pair.indexOf("=");
    const key = eq < 0 ? "" : pair.slice(0, eq).trim();
    if (!key) throw new Error(`--params: "${pair}" is not key=value`);
    out[key] = pair.slice(eq + 1).trim();
  }
  return out;
}
