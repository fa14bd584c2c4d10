import { hash, verify } from "@node-rs/argon2";

/**
 * OWASP Password Storage Cheat Sheet, first Argon2id option: m = 19 MiB, t = 2, p = 1.
 * `algorithm: 2` is Argon2id (the package's const enum cannot be imported at run time).
 */
const ARGON2ID = { algorithm: 2, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const;

export const PASSWORD_MIN = 12;
export const PASSWORD_MAX = 256;

// Verified against when there is no account (or no password) so that the failure path costs
// the same Argon2 work as a wrong password: response time does not reveal who has an account.
const dummyHash = hash("vox dummy password that matches nothing", ARGON2ID);

/** Argon2id PHC string for `password`. */
export function hashPassword(password: string): Promise<string> {
  return hash(password, ARGON2ID);
}

/**
 * True when `password` matches `phc`. With no hash (unknown account, OAuth-only account) it
 * still runs one Argon2id verification and returns false, so both failures take as long.
 */
export async function verifyPassword(phc: string | null, password: string): Promise<boolean> {
  if (!phc) {
    await verify(await dummyHash, password).catch(() => false);
    return false;
  }
  try {
    return await verify(phc, password);
  } catch {
    return false;
  }
}

/** Why `password` is not acceptable, or null. Length rules only (NIST SP 800-63B): no composition rules. */
export function passwordProblem(
  password: string,
  context: { email?: string; username?: string } = {},
): string | null {
  const length = [...password].length;
  if (length < PASSWORD_MIN) return `Password must be at least ${PASSWORD_MIN} characters long`;
  if (length > PASSWORD_MAX) return `Password must be at most ${PASSWORD_MAX} characters long`;
  if (password.trim().length === 0) return "Password must not be only spaces";
  const lowered = password.toLowerCase();
  for (const v of [context.email, context.username]) {
    if (v && lowered === v.toLowerCase()) {
      return "Password must not be the same as the email address or username";
    }
  }
  return null;
}
