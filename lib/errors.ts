import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Logger } from "./log.ts";

/** The one error type routes throw; onError turns it into the JSON envelope. */
export class HttpError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: string,
    message: string,
    readonly options: { details?: unknown; cause?: unknown; headers?: Record<string, string> } = {},
  ) {
    super(message, { cause: options.cause });
    this.name = "HttpError";
  }
}

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

/** Builds the `{ error: { code, message, details } }` envelope. */
export function errorBody(code: string, message: string, details?: unknown): ErrorBody {
  return { error: details === undefined ? { code, message } : { code, message, details } };
}

interface PgError {
  code?: string;
  constraint_name?: string;
  constraint?: string;
}

/** Maps an error to a response; unexpected ones are logged and become a bare 500. */
export function handleError(err: Error, c: Context): Response {
  if (err instanceof HttpError) {
    for (const [k, v] of Object.entries(err.options.headers ?? {})) c.header(k, v);
    return c.json(errorBody(err.code, err.message, err.options.details), err.status);
  }
  if (err instanceof HTTPException) {
    const status = err.status;
    const message = status === 413 ? "Request body too large" : err.message || "Request rejected";
    return c.json(errorBody(codeForStatus(status), message), status);
  }
  const pg = err as PgError;
  if (pg.code === "23505") {
    return c.json(errorBody("conflict", "A record with the same unique value already exists"), 409);
  }
  const logger = c.get("log" as never) as Logger | undefined;
  (logger ?? console).error("unhandled error", { error: err, path: c.req.path });
  return c.json(errorBody("internal", "Internal server error"), 500);
}

function codeForStatus(status: number): string {
  const codes: Record<number, string> = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
  };
  return codes[status] ?? "error";
}
