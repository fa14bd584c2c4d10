/**
 * The daemon's settings: each from a flag or, failing that, an environment variable, checked
 * before anything connects, with errors naming the flag and the variable.
 */
import { z } from "zod";
import { type Allowance, parseAllowList } from "./egress.ts";
import { AGENT_TOKEN_PATTERN, regionSchema } from "./protocol.ts";

const flag = z.enum(["1", "0", "true", "false", "yes", "no", "on", "off"])
  .transform((v) => ["1", "true", "yes", "on"].includes(v));

/** Daemon settings; each field comes from a flag or, failing that, an environment variable. */
export const daemonSettingsSchema = z.object({
  serverUrl: z.url({ protocol: /^(https?|wss?)$/, error: "must be an http(s):// or ws(s):// URL" }),
  token: z.string().regex(AGENT_TOKEN_PATTERN, "must be an eval agent token (vox_agent_…) from the admin"),
  region: regionSchema,
  name: z.string().regex(/^[A-Za-z0-9._-]{1,100}$/, "1-100 letters, digits, dot, dash or underscore"),
  concurrency: z.coerce.number().int().min(1).max(64),
  graceSeconds: z.coerce.number().min(0).max(86_400),
  headless: flag,
  stepTimeoutMs: z.coerce.number().int().min(100),
  /** The agent's own cap on a job's run time; the server's cap (in the offer) applies too. */
  maxRuntimeSeconds: z.coerce.number().positive().max(86_400),
  /** Audio files named by `speak: { file }` steps of server-side eval sets are looked up here. */
  assetsDir: z.string().min(1).optional(),
  /** Where jobs write their configs and recordings while they run. */
  workDir: z.string().min(1).optional(),
  /** Audio clips fetched from the server, kept by SHA-256 (default: <work dir or tmp>/vox-audio-cache). */
  audioCacheDir: z.string().min(1).optional(),
  /** `strict` (the default): the browser reaches only public addresses and `egressAllow` (egress.ts). */
  egress: z.enum(["strict", "open"], { error: "must be strict or open" }),
  /** Hosts, host:port, CIDRs or http(s) URL prefixes the strict policy lets through anyway. */
  egressAllow: z.string().optional().transform((v, ctx): Allowance[] => {
    try {
      return parseAllowList(v);
    } catch (err) {
      ctx.addIssue({ code: "custom", message: (err as Error).message });
      return z.NEVER;
    }
  }),
  verbose: z.boolean(),
});
export type DaemonSettings = z.output<typeof daemonSettingsSchema>;

/** Each setting's flag and environment variable, for parsing and for error messages. */
const SOURCES: Record<
  Exclude<keyof DaemonSettings, "verbose">,
  { flag: string; env: string; fallback?: string }
> = {
  serverUrl: { flag: "server", env: "VOX_SERVER_URL" },
  token: { flag: "token", env: "VOX_AGENT_TOKEN" },
  region: { flag: "region", env: "VOX_AGENT_REGION" },
  name: { flag: "name", env: "VOX_AGENT_NAME" },
  concurrency: { flag: "concurrency", env: "VOX_AGENT_CONCURRENCY", fallback: "1" },
  graceSeconds: { flag: "grace", env: "VOX_AGENT_GRACE_SECONDS", fallback: "60" },
  headless: { flag: "headless", env: "VOX_AGENT_HEADLESS", fallback: "true" },
  stepTimeoutMs: { flag: "step-timeout", env: "VOX_AGENT_STEP_TIMEOUT_MS", fallback: "30000" },
  maxRuntimeSeconds: { flag: "max-runtime", env: "VOX_AGENT_MAX_RUNTIME_SECONDS", fallback: "3600" },
  assetsDir: { flag: "assets", env: "VOX_AGENT_ASSETS_DIR" },
  workDir: { flag: "work-dir", env: "VOX_AGENT_WORK_DIR" },
  audioCacheDir: { flag: "audio-cache", env: "VOX_AGENT_AUDIO_CACHE_DIR" },
  egress: { flag: "egress", env: "VOX_AGENT_EGRESS", fallback: "strict" },
  egressAllow: { flag: "allow", env: "VOX_AGENT_EGRESS_ALLOW" },
};

/** The daemon's usage text: its flags and their environment variables. */
export const DAEMON_USAGE = `usage: deno task agent [daemon] [--server URL] [--token TOKEN] [--region REGION]
         [--name NAME] [--concurrency N] [--grace SECONDS] [--assets DIR] [--work-dir DIR]
         [--audio-cache DIR]
         [--headless true|false] [--step-timeout MS] [--max-runtime SECONDS] [--egress strict|open]
         [--allow LIST] [--verbose]
       each flag falls back to its environment variable: VOX_SERVER_URL, VOX_AGENT_TOKEN,
       VOX_AGENT_REGION, VOX_AGENT_NAME (default: host name), VOX_AGENT_CONCURRENCY (1),
       VOX_AGENT_GRACE_SECONDS (60), VOX_AGENT_ASSETS_DIR, VOX_AGENT_WORK_DIR,
       VOX_AGENT_AUDIO_CACHE_DIR (<work dir or tmp>/vox-audio-cache),
       VOX_AGENT_HEADLESS (true), VOX_AGENT_STEP_TIMEOUT_MS (30000),
       VOX_AGENT_MAX_RUNTIME_SECONDS (3600), VOX_AGENT_EGRESS (strict),
       VOX_AGENT_EGRESS_ALLOW (hosts, host:port, CIDRs or URL prefixes the browser may reach
       although they are loopback or private; comma-separated)`;

/** Thrown for unusable settings; the message names each flag and variable at fault. */
export class DaemonSettingsError extends Error {}

/**
 * Reads the settings from flags (`--server …`, already parsed) and the environment; flags
 * win. Throws DaemonSettingsError naming every bad or missing setting.
 */
export function daemonSettings(
  flags: Record<string, string | boolean | undefined>,
  env: Record<string, string | undefined> = Deno.env.toObject(),
): DaemonSettings {
  const raw: Record<string, unknown> = { verbose: flags.verbose === true };
  for (const [key, src] of Object.entries(SOURCES)) {
    const fromFlag = flags[src.flag];
    const value = typeof fromFlag === "string" && fromFlag !== "" ? fromFlag : env[src.env] || src.fallback;
    if (value !== undefined) raw[key] = value;
  }
  raw.name ??= hostName();
  const parsed = daemonSettingsSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => {
      const src = SOURCES[i.path[0] as keyof typeof SOURCES];
      const where = src ? `${src.env} (--${src.flag})` : String(i.path[0]);
      return `  - ${where}: ${raw[i.path[0] as string] === undefined ? "is missing" : i.message}`;
    });
    throw new DaemonSettingsError(`Invalid agent settings:\n${problems.join("\n")}`);
  }
  return parsed.data;
}

/** This host's name as an agent name (letters, digits, dot, dash, underscore). */
function hostName(): string {
  try {
    return Deno.hostname().replace(/[^A-Za-z0-9._-]/g, "-").slice(0, 100) || "vox-agent";
  } catch {
    return "vox-agent";
  }
}
