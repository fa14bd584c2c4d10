import { z } from "zod";
import type { Sql } from "../db.ts";
import { DEFAULT_SYSTEM_CONFIG } from "../seed.ts";

export const windowLimit = z.object({
  max: z.number().int().min(1),
  windowSeconds: z.number().int().min(1),
});
export type WindowLimit = z.infer<typeof windowLimit>;

export const lockoutSetting = z.object({
  failures: z.number().int().min(1),
  lockSeconds: z.number().int().min(1),
});
export type LockoutSetting = z.infer<typeof lockoutSetting>;

const seconds = z.number().int().min(1);

/** The identity settings kept in system_config, with the schema each value must satisfy. */
export const IDENTITY_SETTINGS = {
  "rate_limit.general": windowLimit,
  "rate_limit.auth": windowLimit,
  "auth.lockout": lockoutSetting,
  "auth.session_idle_seconds": seconds,
  "auth.session_absolute_seconds": seconds,
  "auth.activation_ttl_seconds": seconds,
} as const;
export type IdentitySettingKey = keyof typeof IDENTITY_SETTINGS;

/**
 * Reads one identity setting from system_config. Settings are read on every use (a primary-key
 * lookup) so an administrator's change applies at once in every server process; a row that is
 * missing or fails its schema falls back to the seeded default.
 */
export async function readSetting<K extends IdentitySettingKey>(
  sql: Sql,
  key: K,
): Promise<z.infer<typeof IDENTITY_SETTINGS[K]>> {
  const [row] = await sql<{ value: unknown }[]>`SELECT value FROM system_config WHERE key = ${key}`;
  const parsed = IDENTITY_SETTINGS[key].safeParse(row?.value);
  if (parsed.success) return parsed.data as z.infer<typeof IDENTITY_SETTINGS[K]>;
  return IDENTITY_SETTINGS[key].parse(DEFAULT_SYSTEM_CONFIG[key].value) as z.infer<
    typeof IDENTITY_SETTINGS[K]
  >;
}

/** Fallback value of a setting, as seeded. */
export function defaultSetting<K extends IdentitySettingKey>(key: K): z.infer<typeof IDENTITY_SETTINGS[K]> {
  return IDENTITY_SETTINGS[key].parse(DEFAULT_SYSTEM_CONFIG[key].value) as z.infer<
    typeof IDENTITY_SETTINGS[K]
  >;
}
