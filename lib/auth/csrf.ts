import { createMiddleware } from "hono/factory";
import type { Config } from "../config.ts";
import type { AppEnv } from "../context.ts";
import { HttpError } from "../errors.ts";
import { expectedOrigins } from "./client.ts";

const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Refuses state-changing requests that a browser sent from another site. Browsers label
 * every request with Sec-Fetch-Site (and cross-origin POSTs with Origin); a request carrying
 * neither did not come from a browser, so it cannot be forged by one and is let through.
 * This is the approach of Go's net/http CrossOriginProtection and needs no token.
 */
export function csrfProtection(config: Config) {
  return createMiddleware<AppEnv>(async (c, next) => {
    if (SAFE.has(c.req.method)) return await next();
    // On /api/v1 an Authorization header makes the API key the only credential read (the
    // session cookie is ignored, lib/auth/authenticate.ts), so nothing of a victim's session
    // can ride on such a request: it is not a CSRF target, whatever its Origin.
    if (c.req.header("authorization") !== undefined && c.req.path.startsWith("/api/v1/")) {
      return await next();
    }
    const site = c.req.header("sec-fetch-site");
    if (site === "same-origin" || site === "none") return await next();
    const origin = c.req.header("origin");
    if (site === undefined && origin === undefined) return await next();
    if (origin !== undefined && origin !== "null" && expectedOrigins(c, config).includes(origin)) {
      return await next();
    }
    throw new HttpError(
      403,
      "csrf_rejected",
      `Cross-site request refused: ${c.req.method} ${c.req.path} must come from this site's own pages`,
    );
  });
}
