import type { Context } from "hono";
import { getConnInfo } from "hono/deno";
import { type Config, trustedProxyHops } from "../config.ts";

/**
 * The value a header got from the outermost trusted proxy: each proxy appends to a
 * comma-separated list, so with `hops` trusted proxies the entry `hops` places from the right is
 * the one the outermost of them wrote. Entries further left came from the client and are
 * ignored. With fewer entries than hops, the left-most (written by a trusted proxy anyway).
 */
export function forwardedEntry(header: string | undefined, hops: number): string | undefined {
  if (!header || hops <= 0) return undefined;
  const entries = header.split(",").map((e) => e.trim());
  return entries[Math.max(0, entries.length - hops)] || undefined;
}

// An IPv4 or IPv6 address (no port); anything else in X-Forwarded-For is not an address.
const IP_LIKE = /^[0-9A-Fa-f:.]{2,45}$/;

/**
 * The client's IP address: the socket peer, or, behind trusted proxies (TRUST_PROXY,
 * TRUST_PROXY_HOPS), the right-most X-Forwarded-For entry no trusted proxy wrote for itself —
 * a client cannot change it by sending its own header. "unknown" when the request did not come
 * from a socket (in-process tests).
 */
export function clientIp(c: Context, config: Config): string {
  const forwarded = forwardedEntry(c.req.header("x-forwarded-for"), trustedProxyHops(config));
  if (forwarded && IP_LIKE.test(forwarded)) return forwarded;
  try {
    return getConnInfo(c).remote.address ?? "unknown";
  } catch {
    return "unknown";
  }
}

/** True when the browser reached us over https (directly, through PUBLIC_URL, or a trusted proxy). */
export function isHttps(c: Context, config: Config): boolean {
  if (new URL(c.req.url).protocol === "https:") return true;
  if (forwardedEntry(c.req.header("x-forwarded-proto"), trustedProxyHops(config)) === "https") return true;
  return config.PUBLIC_URL?.startsWith("https:") ?? false;
}

/** The origin browsers use for this server: PUBLIC_URL's when set, else the request's own. */
export function expectedOrigins(c: Context, config: Config): string[] {
  const origins = [new URL(c.req.url).origin];
  if (config.PUBLIC_URL) origins.push(new URL(config.PUBLIC_URL).origin);
  const hops = trustedProxyHops(config);
  if (hops > 0) {
    const host = forwardedEntry(c.req.header("x-forwarded-host"), hops) ?? c.req.header("host");
    const proto = forwardedEntry(c.req.header("x-forwarded-proto"), hops) ?? "http";
    if (host) origins.push(`${proto}://${host}`);
  }
  return origins;
}
