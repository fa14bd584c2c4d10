import type { Context } from "hono";
import { getConnInfo } from "hono/deno";
import type { Config } from "../config.ts";

/**
 * The client's IP address: the socket peer, or the first X-Forwarded-For hop when
 * TRUST_PROXY is on (only behind a proxy that overwrites the header). "unknown" when the
 * request did not come from a socket (in-process tests).
 */
export function clientIp(c: Context, config: Config): string {
  if (config.TRUST_PROXY) {
    const forwarded = c.req.header("x-forwarded-for")?.split(",")[0]?.trim();
    if (forwarded) return forwarded.slice(0, 64);
  }
  try {
    return getConnInfo(c).remote.address ?? "unknown";
  } catch {
    return "unknown";
  }
}

/** True when the browser reached us over https (directly, through PUBLIC_URL, or a trusted proxy). */
export function isHttps(c: Context, config: Config): boolean {
  if (new URL(c.req.url).protocol === "https:") return true;
  if (config.TRUST_PROXY && c.req.header("x-forwarded-proto")?.split(",")[0]?.trim() === "https") return true;
  return config.PUBLIC_URL?.startsWith("https:") ?? false;
}

/** The origin browsers use for this server: PUBLIC_URL's when set, else the request's own. */
export function expectedOrigins(c: Context, config: Config): string[] {
  const origins = [new URL(c.req.url).origin];
  if (config.PUBLIC_URL) origins.push(new URL(config.PUBLIC_URL).origin);
  if (config.TRUST_PROXY) {
    const host = c.req.header("x-forwarded-host") ?? c.req.header("host");
    const proto = c.req.header("x-forwarded-proto")?.split(",")[0]?.trim() ?? "http";
    if (host) origins.push(`${proto}://${host}`);
  }
  return origins;
}
