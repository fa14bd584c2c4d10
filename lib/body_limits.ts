// How large a request body may be. One limit for every route (MAX_BODY_BYTES, 1 MiB by default),
// larger only where a route needs it; hono's bodyLimit refuses a declared Content-Length over
// the limit before reading a byte, and stops reading a chunked body at the limit, so an
// unauthenticated multi-GB POST costs at most the limit in memory.
import type { MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import type { Config } from "./config.ts";
import { HttpError } from "./errors.ts";

/** Workflow and eval set bodies carry up to 300,000 characters of YAML, up to 3 bytes each. */
export const ITEM_BODY_BYTES = 2 * 1024 * 1024;

// Routes that enforce a limit of their own: the artifact upload (routes/api/agent_gateway.ts)
// and audio clip uploads (routes/api/audio.ts, VOX_AUDIO_MAX_BYTES).
const OWN_LIMIT = /^\/api\/agent\/jobs\/[^/]+\/artifacts\/[^/]+$|^\/api\/v1\/projects\/[^/]+\/audio\/?$/;
const ITEM_ROUTES = /^\/api\/v1\/(workflows|eval-sets)(\/|$)/;

/** The body limit of a request to `path`, or null when its route enforces its own. */
export function bodyLimitFor(path: string, config: Config): number | null {
  if (OWN_LIMIT.test(path)) return null;
  if (ITEM_ROUTES.test(path)) return Math.max(ITEM_BODY_BYTES, config.MAX_BODY_BYTES);
  return config.MAX_BODY_BYTES;
}

function tooLarge(limit: number): HttpError {
  return new HttpError(413, "payload_too_large", `The request body is larger than the ${limit}-byte limit`, {
    details: { limitBytes: limit },
    // The rest of the body is not wanted: closing the connection spares receiving it.
    headers: { Connection: "close" },
  });
}

/** Middleware: 413 `payload_too_large` (the error envelope) for a body over its route's limit. */
export function requestBodyLimits(config: Config): MiddlewareHandler {
  return (c, next) => {
    const limit = bodyLimitFor(c.req.path, config);
    if (limit === null) return next();
    return bodyLimit({ maxSize: limit, onError: () => Promise.reject(tooLarge(limit)) })(c, next);
  };
}
