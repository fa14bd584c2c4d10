// Throttling of failed sign-ins (system_config `auth.lockout`), built so that it cannot be
// turned against an account's owner:
// - the lock is per login *and client* (a known device, else the client address): failing
//   from one place does not lock the account anywhere else;
// - each further lock of that login from that client lasts twice as long (lockSeconds, 2×, 4×…
//   up to maxLockSeconds), so guessing from one place slows down quickly;
// - many failures for one login from everywhere together (`accountFailures` within
//   lockSeconds) lock it for clients it has never seen, but a browser that signed in to the
//   account before (lib/auth/devices.ts) still gets in.
// Counters are keyed by hashes of the login as typed, whether or not an account has it, so a
// lock reveals nothing about which accounts exist. They live in rate_limit_hits, shared by every
// server process.
import type { Sql } from "../db.ts";
import { type LockoutSetting, readSetting } from "../settings.ts";
import type { KnownDevice } from "./devices.ts";
import { hashToken } from "./tokens.ts";

/** Where a sign-in attempt comes from. */
export interface LoginClient {
  ip: string;
  /** The browser's known-device cookie, if it has one (for any account). */
  device: KnownDevice | null;
}

/** A lock in force: for how long, and whether it holds for this client only or the whole account. */
export interface LoginLock {
  seconds: number;
  scope: "client" | "account";
}

// A streak of failures from one client is forgotten a day after its last failure (and the
// hourly pruning of rate_limit_hits deletes it then).
const STREAK_MEMORY_SECONDS = 24 * 3600;

const loginHash = (login: string) => hashToken(login.trim().toLowerCase()).slice(0, 32);

/** The client as the lock sees it: the known device when it belongs to this account, else the address. */
function clientKey(client: LoginClient, userId: number | null): string {
  const known = client.device !== null && userId !== null && client.device.userId === userId;
  return known ? `device:${client.device!.deviceId}` : `ip:${client.ip}`;
}

function clientBucket(login: string, client: LoginClient, userId: number | null): string {
  return `login_fail:${loginHash(login)}:${hashToken(clientKey(client, userId)).slice(0, 24)}`;
}

function accountBucket(login: string): string {
  return `login_fail_any:${loginHash(login)}`;
}

/** How long the lock that `hits` consecutive failures start lasts, or 0 when they start none. */
export function lockSecondsFor(hits: number, s: LockoutSetting): number {
  if (hits < s.failures || hits % s.failures !== 0) return 0;
  const level = hits / s.failures - 1;
  return Math.min(s.maxLockSeconds, s.lockSeconds * 2 ** Math.min(level, 30));
}

/**
 * The lock that keeps this client from trying a password for `login` now, or null. `userId`
 * is the account the login names (null when none), so its known devices are recognised.
 */
export async function loginLock(
  sql: Sql,
  login: string,
  client: LoginClient,
  userId: number | null,
): Promise<LoginLock | null> {
  const s = await readSetting(sql, "auth.lockout");
  const [streak] = await sql<{ hits: number; age: number }[]>`
    SELECT hits, extract(epoch FROM now() - window_start)::float8 AS age
    FROM rate_limit_hits WHERE bucket = ${clientBucket(login, client, userId)}
    ORDER BY window_start DESC LIMIT 1`;
  if (streak) {
    const remaining = Math.ceil(lockSecondsFor(streak.hits, s) - streak.age);
    if (remaining > 0) return { seconds: remaining, scope: "client" };
  }
  const knownDevice = client.device !== null && client.device.userId === userId;
  if (knownDevice) return null;
  const [account] = await sql<{ hits: number; remaining: number }[]>`
    SELECT hits,
      ceil(extract(epoch FROM window_start + make_interval(secs => ${s.lockSeconds}) - now()))::int AS remaining
    FROM rate_limit_hits
    WHERE bucket = ${accountBucket(login)} AND window_start > now() - make_interval(secs => ${s.lockSeconds})
    ORDER BY window_start DESC LIMIT 1`;
  if (account && account.hits >= s.accountFailures) {
    return { seconds: Math.max(1, account.remaining), scope: "account" };
  }
  return null;
}

/** Counts one failure; returns the lock this failure started, if any. */
export async function recordLoginFailure(
  sql: Sql,
  login: string,
  client: LoginClient,
  userId: number | null,
): Promise<LoginLock | null> {
  const s = await readSetting(sql, "auth.lockout");
  const bucket = clientBucket(login, client, userId);
  const accountKey = accountBucket(login);
  const { streak, account } = await sql.begin(async (tx) => {
    const t = tx as unknown as Sql;
    // Concurrent failures from one client must each count, or a burst could slip past the lock.
    await t`SELECT pg_advisory_xact_lock(hashtextextended(${bucket}, 0))`;
    // One row per login and client: window_start is the last failure, hits the failures in a row.
    const [old] = await t<{ hits: number }[]>`
      DELETE FROM rate_limit_hits WHERE bucket = ${bucket}
      RETURNING CASE WHEN window_start > now() - make_interval(secs => ${STREAK_MEMORY_SECONDS})
                     THEN hits ELSE 0 END AS hits`;
    const [streak] = await t<{ hits: number }[]>`
      INSERT INTO rate_limit_hits (bucket, window_start, hits)
      VALUES (${bucket}, now(), ${(old?.hits ?? 0) + 1})
      RETURNING hits`;
    const [account] = await t<{ hits: number }[]>`
      WITH current AS (
        SELECT window_start FROM rate_limit_hits
        WHERE bucket = ${accountKey} AND window_start > now() - make_interval(secs => ${s.lockSeconds})
        ORDER BY window_start DESC LIMIT 1
      )
      INSERT INTO rate_limit_hits AS r (bucket, window_start, hits)
      VALUES (${accountKey}, coalesce((SELECT window_start FROM current), now()), 1)
      ON CONFLICT (bucket, window_start) DO UPDATE SET hits = r.hits + 1
      RETURNING r.hits`;
    return { streak, account };
  });
  const clientLock = lockSecondsFor(streak.hits, s);
  if (clientLock > 0) return { seconds: clientLock, scope: "client" };
  if (account.hits === s.accountFailures) return { seconds: s.lockSeconds, scope: "account" };
  return null;
}

/**
 * Forgets the failures of a login from this client after it succeeded. The account-wide count
 * runs out with its window: the owner signing in from a known browser must not reopen the
 * account to the guessing that locked it.
 */
export async function clearLoginFailures(
  sql: Sql,
  login: string,
  client: LoginClient,
  userId: number | null,
): Promise<void> {
  await sql`DELETE FROM rate_limit_hits WHERE bucket = ${clientBucket(login, client, userId)}`;
}
