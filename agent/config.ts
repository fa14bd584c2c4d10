/**
 * The agent's loader for application and scenario files. The formats themselves are defined
 * once in `format.ts` (shared with the server); loading validates a file against them up front
 * and resolves the audio files it names, so a bad file fails before a browser starts, with an
 * error naming the file and the step.
 */
import { basename, dirname, extname, join, resolve, sep } from "node:path";
import type { z } from "zod";
import {
  type Application,
  applicationSchema,
  FILE_NAME,
  fillTemplate,
  type NetworkProfile,
  type NoiseSpec,
  parseYaml,
  type RealtimeSpec,
  type Scenario,
  scenarioSchema,
  type Step,
  YamlError,
} from "./format.ts";
import type { SpeechOptions } from "./voices.ts";

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
  /** An OpenAI-Realtime WebSocket endpoint instead of a page (agent/realtime). */
  realtime?: RealtimeSpec;
  steps: Step[];
  tags: string[];
  background?: NoiseSpec;
  network?: NetworkProfile[];
  silenceMs?: number;
  /**
   * Audio only from `dir/clips` (the clips the job's offer carried, fetched by hash: agent/clips.ts)
   * and `dir/assets` (the operator's) — a daemon job: its folder holds nothing else the config may read.
   */
  assetsOnly?: boolean;
  /** Extra folders audio files are looked up in (`--assets`), after the file's own. */
  assets?: string[];
  /** What loading noticed but let pass (voice-agent-tester ignored it too). */
  warnings?: string[];
  /** Keys and cache for `speak: { text, voice }` (agent/voices.ts); set by the daemon or run mode. */
  speech?: SpeechOptions;
}

/** How a run fills and finds what files name: `--params` values and `--assets` folders. */
export interface LoadOptions {
  params?: Record<string, string>;
  assets?: string[];
  /**
   * Check the format only and keep `{{key}}` placeholders unfilled (what the server stores;
   * `validate`). Otherwise a placeholder `params` lacks is an error naming it.
   */
  formatOnly?: boolean;
  /** Audio only from the `clips/` and `assets/` folders beside the file (daemon jobs). */
  assetsOnly?: boolean;
}

/**
 * The folders an audio file named in `config` is looked up in, in order: the file's folder,
 * its `assets/`, the `assets/` folder beside the file's folder (voice-agent-tester's layout:
 * applications/, scenarios/, assets/ side by side), then the `--assets` folders, then Vox's shipped
 * library (`assets/library/v1/`, so `v1-greeting.ogg` runs locally as on a server). A daemon job
 * (`assetsOnly`) has only its `clips/` (what the server gave it by hash) then its `assets/`.
 */
export function audioFolders(config: Pick<LoadedConfig, "dir" | "assets" | "assetsOnly">): string[] {
  if (config.assetsOnly) return [join(config.dir, "clips"), join(config.dir, "assets")];
  return [
    ...new Set([
      config.dir,
      join(config.dir, "assets"),
      join(dirname(config.dir), "assets"),
      ...(config.assets ?? []).map((d) => resolve(d)),
      LIBRARY_DIR,
    ]),
  ];
}

/** The shipped caller-audio library beside the agent's code (absent from the agent's own image). */
const LIBRARY_DIR = new URL("../assets/library/v1", import.meta.url).pathname;

/** Where a named audio file is, or why it cannot be used (`missing`: found in no folder). */
export type AudioLookup = { path: string } | { problem: string; missing?: boolean };

/**
 * Finds an audio file named in `config`: a plain file name (FILE_NAME) in `audioFolders()`, in
 * order. The file's real path must lie inside the real path of the folder it was found in, so
 * a symlink pointing elsewhere is refused rather than followed; a folder itself may be a link
 * (the daemon links the agent's assets).
 */
export async function findAudio(
  config: Pick<LoadedConfig, "dir" | "assets" | "assetsOnly">,
  name: string,
): Promise<AudioLookup> {
  if (!FILE_NAME.test(name)) return { problem: `not a plain file name: ${JSON.stringify(name)}` };
  const roots = audioFolders(config);
  for (const root of roots) {
    let realRoot: string;
    let real: string;
    try {
      realRoot = await Deno.realPath(root);
      real = await Deno.realPath(join(root, name));
    } catch {
      continue;
    }
    if (!real.startsWith(realRoot + sep)) {
      return { problem: `${name} leads outside ${basename(root)}/ (a link to ${real}); refused` };
    }
    if ((await Deno.stat(real)).isFile) return { path: real };
  }
  return { problem: `audio file not found: ${name} (looked in ${roots.join(", ")})`, missing: true };
}

/** The path of an audio file named in `config` (see findAudio), or null when it cannot be used. */
export async function resolveAudio(
  config: Pick<LoadedConfig, "dir" | "assets" | "assetsOnly">,
  name: string,
): Promise<string | null> {
  const found = await findAudio(config, name);
  return "path" in found ? found.path : null;
}

/**
 * Reads and validates one YAML config; `kind` picks the format (application or scenario);
 * `options` carries a run's `--params` and `--assets` (see LoadOptions).
 */
export async function loadConfig(
  path: string,
  kind: "application" | "scenario",
  options: LoadOptions = {},
): Promise<LoadedConfig> {
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
  return await parseConfig(
    raw,
    { path: abs, name: basename(abs, extname(abs)), dir: dirname(abs), assetsOnly: options.assetsOnly },
    kind,
    options,
  );
}

/**
 * Validates a config that is already parsed (a daemon job carries the YAML as JSON). `path`
 * names it in errors; audio files resolve as `resolveAudio()` says; `{{key}}` placeholders in
 * an application's url are filled from `options.params` (a missing one is an error).
 */
export async function parseConfig(
  raw: unknown,
  meta: { path: string; name: string; dir: string; assetsOnly?: boolean },
  kind: "application" | "scenario",
  options: LoadOptions = {},
): Promise<LoadedConfig> {
  const path = meta.path;
  const parsed = (kind === "application" ? applicationSchema : scenarioSchema).safeParse(raw);
  if (!parsed.success) throw configErrorOf(path, kind, raw, parsed.error.issues[0]);
  const config: LoadedConfig = {
    name: meta.name,
    path,
    dir: meta.dir,
    assetsOnly: meta.assetsOnly,
    steps: parsed.data.steps as Step[],
    tags: parsed.data.tags ?? [],
    assets: options.assets,
    warnings: [],
  };
  if (kind === "application") {
    const app = parsed.data as Application;
    config.url = app.url === undefined || options.formatOnly
      ? app.url
      : fillUrl(path, app.url, options.params ?? {});
    config.html = app.html;
    config.realtime = app.realtime;
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
      const found = await findAudio(config, f);
      if ("problem" in found) throw new ConfigError(path, found.problem, i + 1, step.action);
    }
  }
  if (config.background?.file) {
    const found = await findAudio(config, config.background.file);
    if ("problem" in found) {
      if (!found.missing || typeof (parsed.data as Scenario).background !== "string") {
        throw new ConfigError(path, `background noise: ${found.problem}`);
      }
      // voice-agent-tester read `background: <file>` and never used it, so its files name
      // files that never existed; Vox plays the file when it is there and otherwise says so.
      config.warnings!.push(`background ${found.problem}: the scenario runs without it`);
      config.background = undefined;
    }
  }
  return config;
}

/** An application's url with its `{{key}}` placeholders filled; a missing key is an error. */
function fillUrl(path: string, url: string, params: Record<string, string>): string {
  const { text, missing } = fillTemplate(url, params);
  if (missing.length) {
    throw new ConfigError(
      path,
      `url needs --params ${missing.map((k) => `${k}=…`).join(",")} (missing ${
        missing.map((k) => `{{${k}}}`).join(", ")
      })`,
    );
  }
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    throw new ConfigError(path, `url is not a URL once its params are filled: ${text}`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new ConfigError(path, `url must be http or https once its params are filled`);
  }
  return text;
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
