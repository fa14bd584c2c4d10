// The console pages are clients of the REST API: each page asks /api/* in-process, through
// the same Hono app and with the browser's own cookie, so it sees exactly what the API lets
// this user see (auth, roles, plan limits, rate limits) and no page reads the database.
import type { Context } from "hono";
import type { AppEnv } from "../../lib/context.ts";

/** Runs one request through the whole app (middleware included) without a socket. */
export type AppFetch = (req: Request, env: unknown) => Response | Promise<Response>;

/** A non-2xx answer of the API, with its envelope's code and message. */
export class ApiFailure extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
    this.name = "ApiFailure";
  }
}

/** GETs `path` from the API as the caller of `c` (their cookie), answering the parsed JSON. */
export function apiGetter(fetch: AppFetch) {
  return async function get<T>(c: Context<AppEnv>, path: string): Promise<T> {
    const headers = new Headers({ accept: "application/json" });
    for (const h of ["cookie", "user-agent", "x-forwarded-for", "x-forwarded-proto"]) {
      const v = c.req.header(h);
      if (v) headers.set(h, v);
    }
    headers.set("x-request-id", c.var.requestId);
    const res = await fetch(new Request(new URL(path, c.req.url), { headers }), c.env);
    const body = await res.json().catch(() => null) as
      | { error?: { code?: string; message?: string } }
      | null;
    if (!res.ok) {
      throw new ApiFailure(
        res.status,
        body?.error?.code ?? "error",
        body?.error?.message ?? `The API answered ${res.status}`,
      );
    }
    return body as T;
  };
}

export type ApiGet = ReturnType<typeof apiGetter>;
