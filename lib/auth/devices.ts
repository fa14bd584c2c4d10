// Known devices: a browser that has signed in to an account before carries a sealed cookie
// naming that account, so an account-wide sign-in lock (lib/auth/lockout.ts) cannot keep its
// owner out of a browser they already use.
import type { Context } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import type { Config } from "../config.ts";
import { open, seal } from "../secrets.ts";
import { isHttps } from "./client.ts";
import { randomToken } from "./tokens.ts";

const DEVICE_COOKIE = "vox_device";
const SECURE_DEVICE_COOKIE = "__Host-vox_device";
// Binds sealed values to this use: a sealed value made for something else does not open here.
const SEAL_CONTEXT = "vox-known-device";
// 180 days; browsers cap cookie lifetimes at 400.
const DEVICE_MAX_AGE_SECONDS = 180 * 24 * 3600;

/** A browser that signed in to `userId` before, and its random id. */
export interface KnownDevice {
  userId: number;
  deviceId: string;
}

/**
 * The known-device cookie of the request, opened; null when there is none or it does not open
 * with this server's key (forged, or sealed under another key). Over https only the `__Host-`
 * cookie counts, like the session cookie.
 */
export async function readKnownDevice(
  c: Context,
  config: Config,
  key: CryptoKey,
): Promise<KnownDevice | null> {
  const raw = isHttps(c, config)
    ? getCookie(c, SECURE_DEVICE_COOKIE)
    : getCookie(c, SECURE_DEVICE_COOKIE) ?? getCookie(c, DEVICE_COOKIE);
  if (!raw || raw.length > 300) return null;
  try {
    const v = JSON.parse(await open(key, raw, SEAL_CONTEXT));
    if (Number.isSafeInteger(v.u) && typeof v.d === "string" && /^[a-z2-7]{16}$/.test(v.d)) {
      return { userId: v.u, deviceId: v.d };
    }
  } catch { /* not ours: treated as absent */ }
  return null;
}

/** Marks the browser as a known device of `userId` (kept when it already is one). */
export async function rememberDevice(
  c: Context,
  config: Config,
  key: CryptoKey,
  userId: number,
): Promise<void> {
  const current = await readKnownDevice(c, config, key);
  if (current?.userId === userId) return;
  const sealed = await seal(key, JSON.stringify({ u: userId, d: randomToken(10) }), SEAL_CONTEXT);
  const secure = isHttps(c, config);
  setCookie(c, secure ? SECURE_DEVICE_COOKIE : DEVICE_COOKIE, sealed, {
    path: "/",
    httpOnly: true,
    sameSite: "Lax",
    secure,
    maxAge: DEVICE_MAX_AGE_SECONDS,
  });
}
