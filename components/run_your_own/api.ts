/// <reference lib="dom" />
// How /run-your-own talks to /api/v1 from the browser: JSON calls with the session cookie,
// and which field of the form an API error is about.

/** An API call that did not succeed, with the status and the error envelope's code. */
export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

/** Calls the API with a JSON body (if any); the parsed JSON answer, or an ApiError. */
export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const e = data?.error ?? {};
    throw new ApiError(
      res.status,
      e.code ?? "error",
      e.message ?? `${method} ${path} failed (${res.status})`,
    );
  }
  return data as T;
}

/** A place on the form where a message is shown. */
export type Field = "type" | "product" | "link" | "region" | "project" | "launch" | "eval" | "form";

/** Which form field an API message is about (`field: message`), for the call that failed. */
export function fieldOf(call: "workflow" | "evalSet" | "run", message: string): Field {
  const field = message.split(":")[0];
  if (call === "run") return field === "region" ? "region" : "form";
  if (field === "projectId") return "project";
  if (call === "evalSet") return field.startsWith("yaml") || field.startsWith("config") ? "eval" : "form";
  if (field === "provider" || field.startsWith("provider.") || field === "name") return "product";
  if (/^(yaml|config)\.url\b/.test(field)) return "link";
  if (field.startsWith("yaml") || field.startsWith("config")) return "launch";
  return "form";
}
