// The voice-agent-tester YAML formats (SPEC §7) as zod schemas: a workflow's config is an
// application file, an eval set's config is a scenario file. Files written for
// voice-agent-tester validate unchanged; unknown fields are kept (the tester and Vox's agent
// read them), only what would make a file unrunnable is refused. Vox's additions are marked.
import { parse, stringify } from "yaml";
import { z } from "zod";

const selector = z.string().min(1).max(2000);
const ms = z.number().int().min(0).max(3_600_000);
const audio = z.string().min(1).max(500);
/** `metrics: elapsed_time`, a list of names, or a map of options. */
const metrics = z.union([z.string(), z.array(z.string()), z.record(z.string(), z.unknown())]).optional();

const step = <T extends z.ZodRawShape>(action: string, shape: T) =>
  z.looseObject({ action: z.literal(action), metrics, ...shape });

const speakShape = {
  file: audio.optional(),
  text: z.string().min(1).max(5000).optional(),
};
const needsFileOrText = (s: { file?: string; text?: string }) => Boolean(s.file) !== Boolean(s.text);
const fileOrText = "needs exactly one of file or text";

/** Every step action: voice-agent-tester's, then Vox's additions. */
export const stepSchema = z.discriminatedUnion("action", [
  step("click", { selector }),
  step("click_with_retry", {
    selector,
    retries: z.number().int().min(0).max(100).optional(),
    delay: ms.optional(),
  }),
  step("wait", { selector: selector.optional(), time: ms.optional(), timeout: ms.optional() }),
  step("wait_for_element", { selector, timeout: ms.optional() }),
  step("type", { selector: selector.optional(), text: z.string().max(10_000) }),
  step("fill", {
    selector,
    text: z.string().max(10_000).optional(),
    value: z.string().max(10_000).optional(),
  }),
  step("select", { selector, value: z.string().max(1000) }),
  step("sleep", { time: ms }),
  step("screenshot", { path: z.string().max(500).optional(), name: z.string().max(200).optional() }),
  step("speak", speakShape).refine(needsFileOrText, fileOrText),
  step("wait_for_voice", { timeout: ms.optional() }),
  step("wait_for_silence", { timeout: ms.optional(), duration: ms.optional() }),
  step("listen", { evaluation: z.string().max(5000).optional(), timeout: ms.optional() }),
  // Vox: speech injected while the agent talks, timed for interrupt latency.
  step("barge_in", { ...speakShape, after: ms.optional(), timeout: ms.optional() }).refine(
    needsFileOrText,
    fileOrText,
  ),
  // Vox: background noise mixed into the microphone at a signal-to-noise ratio.
  step("noise", { file: audio, snr_db: z.number().min(-20).max(60), duration: ms.optional() }),
  // Vox: an impaired network profile for the following steps (OS-level when permitted).
  step("network", {
    profile: z.enum(["clean", "3g", "lossy", "high_latency", "flaky"]).optional(),
    latency_ms: ms.optional(),
    jitter_ms: ms.optional(),
    loss_pct: z.number().min(0).max(100).optional(),
  }),
]);

/** An application file: how to open and start the voice agent. */
export const applicationSchema = z.looseObject({
  url: z.url({ protocol: /^https?$/ }).optional(),
  html: z.string().min(1).max(200_000).optional(),
  tags: z.array(z.string().max(100)).max(50).optional(),
  steps: z.array(stepSchema).max(200).default([]),
}).refine((a) => Boolean(a.url) !== Boolean(a.html), {
  message: "needs exactly one of url or html",
  path: ["url"],
});

/** A scenario file: what to say and measure. */
export const scenarioSchema = z.looseObject({
  tags: z.array(z.string().max(100)).max(50).optional(),
  /** voice-agent-tester: background noise file for the whole scenario. */
  background: audio.optional(),
  steps: z.array(stepSchema).min(1).max(500),
});

export type Application = z.infer<typeof applicationSchema>;
export type Scenario = z.infer<typeof scenarioSchema>;

/** A YAML text that is not a mapping, or does not parse; the message names the line. */
export class YamlError extends Error {
  override name = "YamlError";
}

/** Parses YAML into a plain object (refusing aliases bombs and non-mappings). */
export function parseYaml(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = parse(text, { maxAliasCount: 50, prettyErrors: true });
  } catch (err) {
    throw new YamlError(err instanceof Error ? err.message.split("\n")[0] : String(err));
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) {
    throw new YamlError("the document must be a mapping (url/html, steps, tags …)");
  }
  return value as Record<string, unknown>;
}

/** The stored config as YAML, as voice-agent-tester reads it. */
export function toYaml(config: unknown): string {
  return stringify(config, { lineWidth: 0 });
}
