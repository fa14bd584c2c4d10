/**
 * Application and scenario configs in voice-agent-tester's YAML format, plus Vox's additions.
 * Loading validates every step up front so a bad file fails before a browser starts, with an
 * error naming the file and the step.
 */
import { parse as parseYaml, YAMLParseError } from "yaml";
import { z } from "zod";
import { basename, dirname, extname, join, resolve } from "node:path";

/** A run error that names the config file and, when known, the step (1-based) and action. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    message: string,
    readonly step?: number,
    readonly action?: string,
  ) {
    super(`${file}${step ? ` step ${step}${action ? ` (${action})` : ""}` : ""}: ${message}`);
    this.name = "ConfigError";
  }
}

const noiseSpec = z.object({
  file: z.string().optional(),
  type: z.enum(["white", "pink", "brown"]).optional(),
  snr_db: z.number().optional(),
  level_db: z.number().optional(),
  seed: z.number().int().optional(),
}).strict();
export type NoiseSpec = z.infer<typeof noiseSpec>;

const selector = z.string().min(1, "needs a selector");
const speakFields = {
  file: z.string().optional(),
  text: z.string().optional(),
  voice: z.string().optional(),
  gain_db: z.number().optional(),
  noise: noiseSpec.optional(),
};
const common = { action: z.string(), metrics: z.union([z.string(), z.array(z.string())]).optional() };
const timeout = z.number().positive().optional();

const stepSchemas: Record<string, z.ZodType> = {
  click: z.object({ ...common, selector, timeout }).passthrough(),
  click_with_retry: z.object({
    ...common,
    selector,
    retries: z.number().int().positive().optional(),
    delay: z.number().nonnegative().optional(),
    timeout,
  }).passthrough(),
  wait: z.object({ ...common, selector, timeout }).passthrough(),
  wait_for_element: z.object({ ...common, selector, timeout }).passthrough(),
  type: z.object({ ...common, selector, text: z.string() }).passthrough(),
  fill: z.object({ ...common, selector, text: z.union([z.string(), z.number()]) }).passthrough(),
  select: z.object({
    ...common,
    selector,
    value: z.string().optional(),
    values: z.array(z.string()).optional(),
    text: z.string().optional(),
    checked: z.boolean().optional(),
  }).passthrough(),
  sleep: z.object({ ...common, time: z.number().nonnegative() }).passthrough(),
  screenshot: z.object({ ...common, filename: z.string().optional(), outputDir: z.string().optional() })
    .passthrough(),
  speak: z.object({ ...common, ...speakFields }).passthrough(),
  wait_for_voice: z.object({ ...common, timeout }).passthrough(),
  wait_for_silence: z.object({ ...common, timeout, silence_ms: z.number().positive().optional() })
    .passthrough(),
  listen: z.object({ ...common, evaluation: z.string().optional(), timeout }).passthrough(),
  // Vox additions.
  barge_in: z.object({
    ...common,
    ...speakFields,
    after_ms: z.number().nonnegative().optional(),
    stop_timeout_ms: z.number().positive().optional(),
    timeout,
  }).passthrough(),
  noise: z.object({
    ...common,
    file: z.string().optional(),
    type: z.enum(["white", "pink", "brown"]).optional(),
    duration_ms: z.number().positive(),
    level_db: z.number().optional(),
    grace_ms: z.number().nonnegative().optional(),
  }).passthrough(),
};

export type Step = { action: string; [k: string]: unknown };

const networkProfile = z.object({
  name: z.string(),
  delay_ms: z.number().nonnegative().optional(),
  jitter_ms: z.number().nonnegative().optional(),
  loss_pct: z.number().min(0).max(100).optional(),
  rate_kbit: z.number().positive().optional(),
}).strict();
export type NetworkProfile = z.infer<typeof networkProfile>;

const fileSchema = z.object({
  url: z.string().optional(),
  html: z.string().optional(),
  steps: z.array(z.record(z.string(), z.unknown())).optional(),
  tags: z.array(z.string()).optional(),
  background: z.union([z.string(), noiseSpec]).optional(),
  background_level_db: z.number().optional(),
  background_snr_db: z.number().optional(),
  network: z.array(networkProfile).optional(),
  silence_ms: z.number().positive().optional(),
}).passthrough();

/** A loaded application (url/html + setup steps) or scenario (steps) file. */
export interface LoadedConfig {
  name: string;
  path: string;
  dir: string;
  url?: string;
  html?: string;
  steps: Step[];
  tags: string[];
  background?: NoiseSpec;
  network?: NetworkProfile[];
  silenceMs?: number;
}

/** Resolves an audio file named in `config` against its folder, then an `assets/` folder beside it. */
export async function resolveAudio(config: Pick<LoadedConfig, "dir">, name: string): Promise<string | null> {
  for (const candidate of [resolve(config.dir, name), resolve(config.dir, "assets", name)]) {
    try {
      if ((await Deno.stat(candidate)).isFile) return candidate;
    } catch { /* try the next */ }
  }
  return null;
}

/** Parses one YAML config; `kind` decides whether `url`/`html` is required. */
export async function loadConfig(path: string, kind: "application" | "scenario"): Promise<LoadedConfig> {
  const abs = resolve(path);
  let text: string;
  try {
    text = await Deno.readTextFile(abs);
  } catch (err) {
    throw new ConfigError(path, `cannot read the file (${(err as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text, { prettyErrors: true }) ?? {};
  } catch (err) {
    const where = err instanceof YAMLParseError && err.linePos ? ` at line ${err.linePos[0].line}` : "";
    throw new ConfigError(path, `malformed YAML${where}: ${(err as Error).message.split("\n")[0]}`);
  }
  return await parseConfig(raw, { path: abs, name: basename(abs, extname(abs)), dir: dirname(abs) }, kind);
}

/**
 * Validates a config that is already parsed (a daemon job carries the YAML as JSON). `path`
 * names it in errors; audio files resolve against `dir`, then `dir/assets`.
 */
export async function parseConfig(
  raw: unknown,
  meta: { path: string; name: string; dir: string },
  kind: "application" | "scenario",
): Promise<LoadedConfig> {
  const path = meta.path;
  const parsed = fileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(
      path,
      `invalid ${kind} config at ${issue.path.join(".") || "top level"}: ${issue.message}`,
    );
  }
  const c = parsed.data;
  if (kind === "application" && !c.url && !c.html) {
    throw new ConfigError(path, `application config must contain "url" or "html"`);
  }
  const config: LoadedConfig = {
    name: meta.name,
    path,
    dir: meta.dir,
    url: c.url,
    html: c.html,
    steps: [],
    tags: c.tags ?? [],
    network: c.network,
    silenceMs: c.silence_ms,
  };
  if (c.background) {
    config.background = typeof c.background === "string"
      ? { file: c.background, level_db: c.background_level_db, snr_db: c.background_snr_db }
      : c.background;
  }
  const steps = c.steps ?? [];
  for (let i = 0; i < steps.length; i++) {
    config.steps.push(await validateStep(config, steps[i], i + 1));
  }
  if (config.background?.file && !(await resolveAudio(config, config.background.file))) {
    throw new ConfigError(path, `background noise file not found: ${config.background.file}`);
  }
  return config;
}

async function validateStep(config: LoadedConfig, raw: Record<string, unknown>, n: number): Promise<Step> {
  const action = typeof raw.action === "string" ? raw.action : undefined;
  if (!action) throw new ConfigError(config.path, `step has no "action"`, n);
  const schema = stepSchemas[action];
  if (!schema) {
    throw new ConfigError(
      config.path,
      `unknown action "${action}" (known: ${Object.keys(stepSchemas).join(", ")})`,
      n,
      action,
    );
  }
  const r = schema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new ConfigError(config.path, `${issue.path.join(".") || "step"}: ${issue.message}`, n, action);
  }
  const step = r.data as Step;
  if (action === "speak" || action === "barge_in") {
    if (!step.file === !step.text) {
      throw new ConfigError(config.path, `needs exactly one of "file" or "text"`, n, action);
    }
  }
  for (const f of audioFilesOf(step)) {
    if (!(await resolveAudio(config, f))) {
      throw new ConfigError(
        config.path,
        `audio file not found: ${f} (looked in ${config.dir} and ${join(config.dir, "assets")})`,
        n,
        action,
      );
    }
  }
  return step;
}

/** Audio files a step names (speech and noise). */
export function audioFilesOf(step: Step): string[] {
  const out: string[] = [];
  if (typeof step.file === "string") out.push(step.file);
  const noise = step.noise as NoiseSpec | undefined;
  if (noise?.file) out.push(noise.file);
  return out;
}

/** Expands comma-separated paths and folders (their *.yaml / *.yml files, sorted). */
export async function expandPaths(input: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const item of input.flatMap((s) => s.split(",")).map((s) => s.trim()).filter(Boolean)) {
    let stat: Deno.FileInfo;
    try {
      stat = await Deno.stat(item);
    } catch {
      throw new ConfigError(item, "path not found");
    }
    if (stat.isDirectory) {
      const files: string[] = [];
      for await (const e of Deno.readDir(item)) {
        if (e.isFile && /\.ya?ml$/.test(e.name)) files.push(join(item, e.name));
      }
      if (files.length === 0) throw new ConfigError(item, "folder holds no .yaml files");
      out.push(...files.sort());
    } else out.push(item);
  }
  return out;
}
