/**
 * The agent's loader for application and scenario files. The formats themselves are defined
 * once in `format.ts` (shared with the server); loading validates a file against them up front
 * and resolves the audio files it names, so a bad file fails before a browser starts, with an
 * error naming the file and the step.
 */
import { basename, dirname, extname, join, resolve } from "node:path";
import type { z } from "zod";
import {
  type Application,
  applicationSchema,
  type NetworkProfile,
  type NoiseSpec,
  parseYaml,
  type Scenario,
  scenarioSchema,
  type Step,
  YamlError,
} from "./format.ts";

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

/** Reads and validates one YAML config; `kind` picks the format (application or scenario). */
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
    raw = parseYaml(text);
  } catch (err) {
    if (!(err instanceof YamlError)) throw err;
    throw new ConfigError(
      path,
      err.line ? `malformed YAML at line ${err.line}: ${err.message}` : err.message,
    );
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
  const parsed = (kind === "application" ? applicationSchema : scenarioSchema).safeParse(raw);
  if (!parsed.success) throw configErrorOf(path, kind, raw, parsed.error.issues[0]);
  const config: LoadedConfig = {
    name: meta.name,
    path,
    dir: meta.dir,
    steps: parsed.data.steps as Step[],
    tags: parsed.data.tags ?? [],
  };
  if (kind === "application") {
    const app = parsed.data as Application;
    config.url = app.url;
    config.html = app.html;
  } else {
    const scenario = parsed.data as Scenario;
    config.network = scenario.network;
    config.silenceMs = scenario.silence_ms;
    if (typeof scenario.background === "string") {
      config.background = {
        file: scenario.background,
        level_db: scenario.background_level_db,
        snr_db: scenario.background_snr_db,
      };
    } else config.background = scenario.background;
  }
  for (const [i, step] of config.steps.entries()) {
    for (const f of audioFilesOf(step)) {
      if (!(await resolveAudio(config, f))) {
        throw new ConfigError(
          path,
          `audio file not found: ${f} (looked in ${config.dir} and ${join(config.dir, "assets")})`,
          i + 1,
          step.action,
        );
      }
    }
  }
  if (config.background?.file && !(await resolveAudio(config, config.background.file))) {
    throw new ConfigError(path, `background noise file not found: ${config.background.file}`);
  }
  return config;
}

/** The first schema issue as a ConfigError: a step's issue names the step and its action. */
function configErrorOf(path: string, kind: string, raw: unknown, issue: z.core.$ZodIssue): ConfigError {
  const [top, index, ...rest] = issue.path;
  if (top === "steps" && typeof index === "number") {
    const action = (raw as { steps: { action?: unknown }[] }).steps[index]?.action;
    // An issue with the action itself is already named by the action in the message.
    const field = rest.length && rest[0] !== "action" ? `${rest.join(".")}: ` : "";
    return new ConfigError(
      path,
      field + issue.message,
      index + 1,
      typeof action === "string" ? action : undefined,
    );
  }
  return new ConfigError(
    path,
    `invalid ${kind} config at ${issue.path.join(".") || "top level"}: ${issue.message}`,
  );
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
export async function expandPaths(input: readonly string[]): Promise<string[]> {
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
