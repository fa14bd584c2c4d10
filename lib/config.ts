import { z } from "zod";
import { cronProblem } from "./cron.ts";

const optionalString = z.string().trim().min(1).optional();
const flag = (fallback: boolean) =>
  z.enum(["1", "0", "true", "false", "yes", "no", "on", "off"])
    .optional()
    .transform((v) => v === undefined ? fallback : ["1", "true", "yes", "on"].includes(v));

/** Every environment variable Vox reads, validated once at start-up. */
export const configSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(8000),
  HOST: z.string().default("0.0.0.0"),
  DATABASE_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional(),
  /**
   * The LISTEN connection, when DATABASE_URL goes through a transaction pooler (which drops
   * notifications): a direct or session-pooled URL to the same database. Default: DATABASE_URL.
   */
  DATABASE_LISTEN_URL: z.url({ protocol: /^postgres(ql)?$/ }).optional(),
  /** Where the embedded database, build output and local keys live. */
  VOX_DATA_DIR: z.string().default(".vox"),
  PUBLIC_URL: z.url({ protocol: /^https?$/ }).optional(),
  INIT_CODE: z.string().min(8, "must be at least 8 characters").optional(),
  /** 32 bytes, base64 or hex: the AES-256-GCM key for secrets read back (SPEC §5). */
  VOX_SECRET_KEY: z.string().refine(
    (v) => /^[0-9a-fA-F]{64}$/.test(v) || decodesTo32Bytes(v),
    "must be 32 bytes as 64 hex characters or base64",
  ).optional(),
  LOG_LEVEL: z.enum(["debug", "info", "warn", "error"]).default("info"),
  LOG_FORMAT: z.enum(["json", "pretty"]).default("json"),
  /** Start the bundled demo (local agent, demo voice agent, schedule) on the embedded database. */
  VOX_DEMO: flag(true),
  /** When the demo schedule fires (5-field cron, UTC). */
  VOX_DEMO_CRON: z.string().trim().default("*/2 * * * *").superRefine((v, ctx) => {
    const problem = cronProblem(v);
    if (problem) ctx.addIssue({ code: "custom", message: `must be a 5-field cron expression (${problem})` });
  }),
  /** Fallback re-scan for pending jobs in ms; LISTEN/NOTIFY does the prompt work (lib/orchestrator.ts). */
  VOX_DISPATCH_POLL_MS: z.coerce.number().int().min(100).default(5000),
  /**
   * How often each process NOTIFYs itself to check that its LISTEN connection delivers, in ms;
   * a probe not back within this interval marks the listener degraded (log, /readyz, /metrics).
   */
  VOX_LISTENER_PROBE_MS: z.coerce.number().int().min(100).default(10_000),
  /** On SIGTERM, how long in-flight requests may take before the process exits anyway, in s. */
  VOX_DRAIN_SECONDS: z.coerce.number().int().min(0).max(3600).default(20),
  /** Bearer token for GET /metrics (Prometheus); unset means /metrics answers 404. */
  METRICS_TOKEN: z.string().min(16, "must be at least 16 characters").optional(),
  /** How often the heartbeat reaper releases the jobs of silent agents, in ms. */
  VOX_REAP_MS: z.coerce.number().int().min(100).default(2000),
  /** An extra schedule tick in ms besides the per-minute Deno.cron (0 = none; tests use it). */
  VOX_SCHEDULE_TICK_MS: z.coerce.number().int().min(0).default(0),
  /** Trust X-Forwarded-For / X-Forwarded-Proto from a reverse proxy (one hop, unless TRUST_PROXY_HOPS says). */
  TRUST_PROXY: flag(false),
  /**
   * How many reverse proxies in front of Vox append to X-Forwarded-For; the client is the entry
   * that many places from the right. Setting it implies TRUST_PROXY; 0 trusts no header.
   */
  TRUST_PROXY_HOPS: z.coerce.number().int().min(0).max(10).optional(),
  /** The largest uploaded audio clip, in bytes (413 beyond it; lib/audio.ts). */
  VOX_AUDIO_MAX_BYTES: z.coerce.number().int().min(1024).default(10 * 1024 * 1024),
  /** The longest uploaded audio clip, in seconds (400 beyond it). */
  VOX_AUDIO_MAX_SECONDS: z.coerce.number().positive().max(3600).default(60),
  /** The largest request body most routes accept, in bytes (413 beyond it; docs/security.md). */
  MAX_BODY_BYTES: z.coerce.number().int().min(1024).default(1024 * 1024),
  SMTP_URL: z.url({ protocol: /^smtps?$/ }).optional(),
  MAIL_FROM: z.string().default("Vox <no-reply@localhost>"),
  GOOGLE_CLIENT_ID: optionalString,
  GOOGLE_CLIENT_SECRET: optionalString,
  /** OAuth endpoints; overridable so tests can use a local OpenID provider. */
  GOOGLE_AUTH_URL: z.url().default("https://accounts.google.com/o/oauth2/v2/auth"),
  GOOGLE_TOKEN_URL: z.url().default("https://oauth2.googleapis.com/token"),
  GOOGLE_ISSUER: z.string().default("https://accounts.google.com"),
  GOOGLE_JWKS_URL: z.url().default("https://www.googleapis.com/oauth2/v3/certs"),
  /** Where Google sends the browser back; default: PUBLIC_URL + /api/auth/google/callback. */
  GOOGLE_CALLBACK_URL: z.url({ protocol: /^https?$/ }).optional(),
  /** Where artifact bytes go (lib/artifact_store.ts): chunk rows in PostgreSQL, or an S3 bucket. */
  VOX_ARTIFACT_STORE: z.enum(["postgres", "s3"]).default("postgres"),
  /** S3-compatible endpoint (MinIO, R2, …); unset for AWS itself. */
  VOX_S3_ENDPOINT: z.url({ protocol: /^https?$/ }).optional(),
  VOX_S3_REGION: z.string().default("us-east-1"),
  VOX_S3_BUCKET: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "must be an S3 bucket name")
    .optional(),
  /** Keys for the bucket; unset = the AWS SDK's default credential chain. Never logged. */
  VOX_S3_ACCESS_KEY_ID: optionalString,
  VOX_S3_SECRET_ACCESS_KEY: optionalString,
  /** Artifacts older than this many days are deleted (0 = kept for ever). */
  VOX_ARTIFACT_RETENTION_DAYS: z.coerce.number().int().min(0).max(36500).default(0),
  /** Artifacts one job may store. */
  VOX_ARTIFACTS_PER_JOB: z.coerce.number().int().min(1).max(1000).default(20),
  /** Bytes all artifacts of one job may total (default 256 MiB). */
  VOX_ARTIFACT_BYTES_PER_JOB: z.coerce.number().int().min(1).default(256 * 1024 * 1024),
  STRIPE_SECRET_KEY: optionalString,
  STRIPE_PUBLISHABLE_KEY: optionalString,
  STRIPE_WEBHOOK_SECRET: optionalString,
  /** Billing is on when both Stripe secrets are set (README, "Turn billing on"); never logged. */
  /** Stripe API base URL; overridable for a local stand-in. */
  STRIPE_API_URL: z.url().optional(),
}).superRefine((v, ctx) => {
  if (Boolean(v.GOOGLE_CLIENT_ID) !== Boolean(v.GOOGLE_CLIENT_SECRET)) {
    ctx.addIssue({
      code: "custom",
      path: [v.GOOGLE_CLIENT_ID ? "GOOGLE_CLIENT_SECRET" : "GOOGLE_CLIENT_ID"],
      message: "GOOGLE_CLIENT_ID and GOOGLE_CLIENT_SECRET must be set together",
    });
  }
  if (Boolean(v.STRIPE_SECRET_KEY) !== Boolean(v.STRIPE_WEBHOOK_SECRET)) {
    ctx.addIssue({
      code: "custom",
      path: [v.STRIPE_SECRET_KEY ? "STRIPE_WEBHOOK_SECRET" : "STRIPE_SECRET_KEY"],
      message: "STRIPE_SECRET_KEY and STRIPE_WEBHOOK_SECRET must be set together (billing needs both)",
    });
  }
  if (v.DATABASE_LISTEN_URL && !v.DATABASE_URL) {
    ctx.addIssue({
      code: "custom",
      path: ["DATABASE_LISTEN_URL"],
      message: "needs DATABASE_URL (the embedded database has no pooler in between)",
    });
  }
  if (v.VOX_ARTIFACT_STORE === "s3" && !v.VOX_S3_BUCKET) {
    ctx.addIssue({
      code: "custom",
      path: ["VOX_S3_BUCKET"],
      message: "is required when VOX_ARTIFACT_STORE=s3",
    });
  }
  if (Boolean(v.VOX_S3_ACCESS_KEY_ID) !== Boolean(v.VOX_S3_SECRET_ACCESS_KEY)) {
    ctx.addIssue({
      code: "custom",
      path: [v.VOX_S3_ACCESS_KEY_ID ? "VOX_S3_SECRET_ACCESS_KEY" : "VOX_S3_ACCESS_KEY_ID"],
      message: "VOX_S3_ACCESS_KEY_ID and VOX_S3_SECRET_ACCESS_KEY must be set together",
    });
  }
  if (v.DATABASE_URL && !v.VOX_SECRET_KEY) {
    ctx.addIssue({
      code: "custom",
      path: ["VOX_SECRET_KEY"],
      message: "is required when DATABASE_URL is set (generate one: openssl rand -hex 32)",
    });
  }
});

export type Config = z.infer<typeof configSchema>;

/**
 * How many proxy hops' X-Forwarded-* entries are trusted: TRUST_PROXY_HOPS when set, else 1
 * with TRUST_PROXY, else 0.
 */
export function trustedProxyHops(config: Config): number {
  return config.TRUST_PROXY_HOPS ?? (config.TRUST_PROXY ? 1 : 0);
}

/** Thrown when the environment is invalid; the message names every bad variable. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

/** Parses the environment (default: the process's) or throws ConfigError listing each problem. */
export function loadConfig(env: Record<string, string | undefined> = Deno.env.toObject()): Config {
  const cleaned = Object.fromEntries(
    Object.entries(env).filter(([, v]) => v !== undefined && v !== ""),
  );
  const parsed = configSchema.safeParse(cleaned);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((i) => {
        const name = String(i.path[0] ?? "environment");
        const given = i.code === "invalid_type" && cleaned[name] === undefined ? "is missing" : i.message;
        return `${name}: ${given}`;
      }),
    );
  }
  return parsed.data;
}

/** The URL people reach this server at. */
export function publicUrl(config: Config): string {
  return (config.PUBLIC_URL ?? `http://localhost:${config.PORT}`).replace(/\/$/, "");
}

function decodesTo32Bytes(v: string): boolean {
  try {
    return atob(v.replace(/-/g, "+").replace(/_/g, "/")).length === 32;
  } catch {
    return false;
  }
}
