// Every system_config key Vox reads, with its schema, default and description: lib/seed.ts
// inserts the defaults, and every reader goes through this module — readSetting() from code,
// settingSql() inside a statement — so a key, its type and its fallback are written once.
// Settings are read on every use (a primary-key lookup), so an administrator's change
// applies at once in every server process; a row that is missing or fails its schema
// counts as the default.
import { z } from "zod";
import type { Db, Fragment } from "./db.ts";

/** A fixed-window rate limit. */
const windowLimit = z.object({
  max: z.number().int().min(1),
  windowSeconds: z.number().int().min(1),
});
export type WindowLimit = z.infer<typeof windowLimit>;

/**
 * Failed sign-ins (lib/auth/lockout.ts): `failures` in a row for one login from one client lock
 * it there for `lockSeconds`, each further lock twice as long up to `maxLockSeconds`;
 * `accountFailures` within `lockSeconds` from all clients together lock the login for clients
 * that never signed in to it. Rows stored before the last two existed get their defaults.
 */
const lockoutSetting = z.object({
  failures: z.number().int().min(1),
  lockSeconds: z.number().int().min(1),
  // At most a day: counters are pruned a day after their last failure (lib/auth/rate_limit.ts).
  maxLockSeconds: z.number().int().min(1).max(24 * 3600).default(24 * 3600),
  accountFailures: z.number().int().min(1).default(50),
});
export type LockoutSetting = z.infer<typeof lockoutSetting>;

const seconds = z.number().int().min(1);
// The job and agent settings were always read with a numeric cast (Number() in code,
// `::int`/`::float8` in SQL), so a number stored as a JSON string still counts.
const positiveNumber = z.coerce.number().positive();

/** How a setting's value is read inside SQL: as JSON, or cast from its JSON text. */
type SqlType = "jsonb" | "int" | "float8";

function setting<S extends z.ZodType>(schema: S, value: z.infer<S>, sqlType: SqlType, description: string) {
  return { schema, default: value, sqlType, description };
}

/** The settings, by key. */
export const SETTINGS = {
  "rate_limit.general": setting(
    windowLimit,
    { max: 100, windowSeconds: 900 },
    "jsonb",
    "Requests per client per window on the API",
  ),
  "rate_limit.auth": setting(
    windowLimit,
    { max: 20, windowSeconds: 900 },
    "jsonb",
    "Login, sign-up and token requests per client per window",
  ),
  "auth.session_idle_seconds": setting(seconds, 60 * 60 * 24 * 7, "int", "Session idle timeout"),
  "auth.session_absolute_seconds": setting(
    seconds,
    60 * 60 * 24 * 30,
    "int",
    "Session lifetime however active",
  ),
  "auth.activation_ttl_seconds": setting(seconds, 60 * 60 * 48, "int", "Activation link lifetime"),
  "auth.lockout": setting(
    lockoutSetting,
    { failures: 5, lockSeconds: 900, maxLockSeconds: 24 * 3600, accountFailures: 50 },
    "jsonb",
    "Failed logins for one account from one client before it is locked there, for how long (doubling " +
      "up to maxLockSeconds), and failures from all clients before unknown devices are locked out",
  ),
  "jobs.max_attempts": setting(z.coerce.number().int().min(1), 3, "int", "Attempts before a job is failed"),
  "jobs.heartbeat_timeout_seconds": setting(
    positiveNumber,
    30,
    "float8",
    "Silence after which an agent's job is released",
  ),
  "jobs.max_runtime_seconds": setting(
    positiveNumber,
    3600,
    "float8",
    "Hard cap on one job's run time; the agent fails a job at the lesser of this and what its steps can take",
  ),
  "agents.heartbeat_interval_seconds": setting(positiveNumber, 10, "float8", "Agent heartbeat period"),
  "audio.agent_assets": setting(
    z.array(z.string().regex(/^[A-Za-z0-9_-][A-Za-z0-9._-]*$/).max(200)).max(1000),
    ["hello.wav", "tuesday.wav", "wait.wav"],
    "jsonb",
    "Audio file names the operators' eval agents carry in VOX_AGENT_ASSETS_DIR (the demo agent's by " +
      "default); an eval set may name these besides its project's clips and the shipped library",
  ),
  "boards.min_turns": setting(
    z.coerce.number().int().min(1),
    100,
    "int",
    "Turns a provider's figure needs before the public boards rank it (below: listed as not enough data)",
  ),
} as const;

export type SettingKey = keyof typeof SETTINGS;
export type SettingValue<K extends SettingKey> = z.infer<typeof SETTINGS[K]["schema"]>;

/** A setting's default, as seeded. */
export function defaultSetting<K extends SettingKey>(key: K): SettingValue<K> {
  return SETTINGS[key].default as SettingValue<K>;
}

/** A stored value (the `value` column, or null when the row is missing) checked against the key's schema. */
export function parseSetting<K extends SettingKey>(key: K, stored: unknown): SettingValue<K> {
  if (stored === null || stored === undefined) return defaultSetting(key);
  const parsed = SETTINGS[key].schema.safeParse(stored);
  return parsed.success ? parsed.data as SettingValue<K> : defaultSetting(key);
}

/** Reads one setting. */
export async function readSetting<K extends SettingKey>(sql: Db, key: K): Promise<SettingValue<K>> {
  const [row] = await sql<{ value: unknown }[]>`SELECT value FROM system_config WHERE key = ${key}`;
  return parseSetting(key, row?.value);
}

/** Reads several settings in one query. */
export async function readSettings<K extends SettingKey>(
  sql: Db,
  keys: readonly K[],
): Promise<{ [P in K]: SettingValue<P> }> {
  const list: string[] = [...keys];
  const rows = await sql<{ key: string; value: unknown }[]>`
    SELECT key, value FROM system_config WHERE key IN ${sql(list)}`;
  const stored = new Map<string, unknown>(rows.map((r) => [r.key, r.value]));
  return Object.fromEntries(keys.map((k) => [k, parseSetting(k, stored.get(k))])) as {
    [P in K]: SettingValue<P>;
  };
}

/**
 * The stored JSON value of a setting inside a statement (NULL when the row is missing), for
 * a caller that checks it with parseSetting() after the query.
 */
export function storedSettingSql(sql: Db, key: SettingKey): Fragment {
  return sql`(SELECT value FROM system_config WHERE key = ${key})`;
}

/**
 * A setting's value inside a statement, with its default when the row is missing: JSON for
 * object settings, else cast from the JSON text (`int` or `float8`). Lets a query use the
 * setting without a round trip of its own.
 */
export function settingSql(sql: Db, key: SettingKey): Fragment {
  const { sqlType, default: fallback } = SETTINGS[key];
  switch (sqlType) {
    case "int":
      return sql`coalesce((SELECT (value #>> '{}')::int FROM system_config WHERE key = ${key}), ${fallback as number}::int)`;
    case "float8":
      return sql`coalesce((SELECT (value #>> '{}')::float8 FROM system_config WHERE key = ${key}), ${fallback as number}::float8)`;
    case "jsonb":
      return sql`coalesce(${storedSettingSql(sql, key)}, ${sql.json(fallback)})`;
  }
}

/** Every setting with its current value (or default), default and description, for the admin. */
export async function listSettings(
  sql: Db,
): Promise<
  { key: SettingKey; value: unknown; default: unknown; description: string; updatedAt: string | null }[]
> {
  const rows = await sql<{ key: string; value: unknown; updatedAt: Date }[]>`
    SELECT key, value, updated_at FROM system_config`;
  const stored = new Map(rows.map((r) => [r.key, r]));
  return (Object.keys(SETTINGS) as SettingKey[]).map((key) => ({
    key,
    value: parseSetting(key, stored.get(key)?.value),
    default: SETTINGS[key].default,
    description: SETTINGS[key].description,
    updatedAt: stored.get(key)?.updatedAt?.toISOString() ?? null,
  }));
}

/**
 * Stores a setting after checking it against its schema; the issues of a value that does not
 * fit, or null when it was stored.
 */
export async function writeSetting(
  sql: Db,
  key: SettingKey,
  value: unknown,
  userId: number,
): Promise<z.core.$ZodIssue[] | null> {
  const checked = SETTINGS[key].schema.safeParse(value);
  if (!checked.success) return checked.error.issues;
  await sql`
    INSERT INTO system_config (key, value, description, updated_at, updated_by)
    VALUES (${key}, ${sql.json(checked.data as never)}, ${SETTINGS[key].description}, now(), ${userId})
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now(), updated_by = EXCLUDED.updated_by`;
  return null;
}
