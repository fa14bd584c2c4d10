import { zValidator } from "@hono/zod-validator";
import type { z } from "zod";
import { HttpError } from "../errors.ts";

/** Validates a JSON body; a bad one is a 400 whose message names the first bad field. */
export function jsonBody<T extends z.ZodType>(schema: T) {
  return zValidator("json", schema, (result) => {
    if (!result.success) throw invalidInput(result.error);
  });
}

/** The 400 for a failed zod parse: "field: problem", every issue in details. */
export function invalidInput(error: { issues: { path: PropertyKey[]; message: string }[] }): HttpError {
  const issues = error.issues.map((i) => ({
    field: i.path.map(String).join(".") || "body",
    message: i.message,
  }));
  const first = issues[0];
  return new HttpError(400, "invalid_input", `${first.field}: ${first.message}`, { details: { issues } });
}

/** A same-site path to go to after signing in, or the fallback (no open redirects). */
export function safeNext(next: string | undefined | null, fallback: string): string {
  if (!next || !next.startsWith("/") || next.startsWith("//") || next.includes("\\")) return fallback;
  return next;
}
