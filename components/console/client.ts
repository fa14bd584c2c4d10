/// <reference lib="dom" />
// How console islands call the API: JSON in and out with the session cookie, and which form
// field an API 400 is about (`details.issues[].field`, lib/openapi.ts).

/** One `{ field, message }` of a 400. */
export interface Issue {
  field: string;
  message: string;
}

/** An API answer that was not 2xx. */
export class ConsoleApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues: Issue[],
  ) {
    super(message);
  }
}

/** Calls the API; the parsed JSON answer (null for 204), or a ConsoleApiError. */
export async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch {
    throw new ConsoleApiError(0, "network", "The server could not be reached; check your connection", []);
  }
  const data = res.status === 204 ? null : await res.json().catch(() => null);
  if (!res.ok) {
    const e = data?.error ?? {};
    const issues: Issue[] = Array.isArray(e.details?.issues) ? e.details.issues : [];
    const message = e.message ?? `${method} ${path} failed (${res.status})`;
    if (!issues.length && e.code === "invalid_input" && /^[\w.()]+: /.test(message)) {
      const at = message.indexOf(": ");
      issues.push({ field: message.slice(0, at), message: message.slice(at + 2) });
    }
    throw new ConsoleApiError(res.status, e.code ?? "error", message, issues);
  }
  return data as T;
}

/**
 * The form field an issue belongs to: the longest field name that is the issue's path or a
 * prefix of it ("yaml.steps.0.action" → "yaml"); null when none is.
 */
export function fieldFor(issue: string, fields: string[]): string | null {
  let best: string | null = null;
  for (const f of fields) {
    if ((issue === f || issue.startsWith(`${f}.`)) && (!best || f.length > best.length)) best = f;
  }
  return best;
}

/** Sets `value` at a dotted path of `obj` ("provider.name"). */
export function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split(".");
  let o = obj;
  for (const k of keys.slice(0, -1)) {
    o[k] = (o[k] && typeof o[k] === "object") ? o[k] : {};
    o = o[k] as Record<string, unknown>;
  }
  o[keys[keys.length - 1]] = value;
}

/** Replaces `{key}` in a template with values of `data` (one level, or `a.b`). */
export function fill(template: string, data: Record<string, unknown>): string {
  return template.replace(/\{([\w.]+)\}/g, (_m, key: string) => {
    let v: unknown = data;
    for (const k of key.split(".")) v = (v as Record<string, unknown> | null)?.[k];
    return v === undefined || v === null ? "" : String(v);
  });
}
