import type { Sql } from "../db.ts";
import { readSetting } from "../settings.ts";
import { hashToken } from "./tokens.ts";

/**
 * Per-account throttling of failed sign-ins (system_config `auth.lockout`): after `failures`
 * wrong passwords within `lockSeconds` of the first, the account is locked until that period
 * ends. The counter is keyed by a hash of the login as typed, whether or not an account has it,
 * so a lock reveals nothing about which accounts exist.
 */
function bucketFor(login: string): string {
  return `login_fail:${hashToken(login.trim().toLowerCase()).slice(0, 40)}`;
}

/** Seconds the login is still locked for, or 0. */
export async function lockedFor(sql: Sql, login: string): Promise<number> {
  const setting = await readSetting(sql, "auth.lockout");
  const [row] = await sql<{ hits: number; remaining: number }[]>`
    SELECT hits,
      ceil(extract(epoch FROM window_start + make_interval(secs => ${setting.lockSeconds}) - now()))::int
        AS remaining
    FROM rate_limit_hits
    WHERE bucket = ${bucketFor(login)}
      AND window_start > now() - make_interval(secs => ${setting.lockSeconds})
    ORDER BY window_start DESC
    LIMIT 1`;
  return row && row.hits >= setting.failures ? Math.max(1, row.remaining) : 0;
}

/** Counts one failure; returns true when this failure locked the login. */
export async function recordLoginFailure(sql: Sql, login: string): Promise<boolean> {
  const setting = await readSetting(sql, "auth.lockout");
  const bucket = bucketFor(login);
  const [row] = await sql<{ hits: number }[]>`
    WITH current AS (
      SELECT window_start FROM rate_limit_hits
      WHERE bucket = ${bucket} AND window_start > now() - make_interval(secs => ${setting.lockSeconds})
      ORDER BY window_start DESC LIMIT 1
    )
    INSERT INTO rate_limit_hits AS r (bucket, window_start, hits)
    VALUES (${bucket}, coalesce((SELECT window_start FROM current), now()), 1)
    ON CONFLICT (bucket, window_start) DO UPDATE SET hits = r.hits + 1
    RETURNING r.hits`;
  return row.hits === setting.failures;
}

/** Forgets the failures of a login after it succeeded. */
export async function clearLoginFailures(sql: Sql, login: string): Promise<void> {
  await sql`DELETE FROM rate_limit_hits WHERE bucket = ${bucketFor(login)}`;
}
