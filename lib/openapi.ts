// Request validation at the edge and the OpenAPI document, both from the same zod schemas.
// This is Vox's one request validator and its one 400: every route (API and page forms) reports
// invalid input through invalidInput().
import { zValidator } from "@hono/zod-validator";
import { z } from "zod";
import { HttpError } from "./errors.ts";

type Target = "json" | "form" | "query" | "param";

/**
 * The 400 for invalid input: `invalid_input`, the message "field: problem" for the first bad
 * field, and `details.issues` listing every `{ field, message }`. A problem with the whole body
 * (not an object, say) is reported on the field "(body)"; with the whole query, "(query)".
 */
export function invalidInput(error: { issues: z.core.$ZodIssue[] }, target: Target): HttpError {
  const issues = error.issues.map((i) => ({
    field: i.path.length
      ? i.path.join(".")
      : target === "json" || target === "form"
      ? "(body)"
      : `(${target})`,
    message: i.message,
  }));
  const first = issues[0];
  return new HttpError(400, "invalid_input", `${first.field}: ${first.message}`, { details: { issues } });
}

/** zValidator that throws the Vox 400 envelope instead of answering zod's error object. */
export function valid<T extends z.ZodType, G extends Target>(target: G, schema: T) {
  return zValidator(target, schema, (result) => {
    if (!result.success) throw invalidInput(result.error, target);
  });
}

/** What /openapi.json says about one route. */
export interface RouteDoc {
  method: "get" | "post" | "put" | "patch" | "delete";
  /** OpenAPI path, e.g. /api/v1/jobs/{id}. */
  path: string;
  summary: string;
  tag: string;
  /**
   * "public" needs nothing; "user" a session or API key; "session" a signed-in browser session
   * (API keys refused); "admin" the administrator; "agent" an agent token.
   */
  auth: "public" | "user" | "session" | "admin" | "agent";
  params?: z.ZodObject;
  query?: z.ZodObject;
  body?: z.ZodType;
  response?: z.ZodType;
  /** Status of success (default 200). */
  status?: number;
  /** Extra error statuses worth listing besides 400/401/403/404. */
  errors?: number[];
  /** Response media type when not JSON (e.g. text/event-stream, application/yaml). */
  produces?: string;
}

const registry: RouteDoc[] = [];

/** Registers a route in the API document (route modules call this next to the handler). */
export function doc(route: RouteDoc): void {
  if (!registry.some((r) => r.method === route.method && r.path === route.path)) registry.push(route);
}

/** Every registered route (tests check each has a handler and error tests). */
export function documentedRoutes(): readonly RouteDoc[] {
  return registry;
}

const errorSchema = {
  type: "object",
  required: ["error"],
  properties: {
    error: {
      type: "object",
      required: ["code", "message"],
      properties: { code: { type: "string" }, message: { type: "string" }, details: {} },
    },
  },
};

function jsonSchema(schema: z.ZodType, io: "input" | "output"): Record<string, unknown> {
  const out = z.toJSONSchema(schema, { io, unrepresentable: "any" }) as Record<string, unknown>;
  delete out.$schema;
  return out;
}

/** The OpenAPI 3.1 document of every registered route. */
export function openApiDocument(serverUrl?: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of [...registry].sort((a, b) => a.path.localeCompare(b.path))) {
    const parameters: unknown[] = [];
    for (const [where, obj] of [["path", r.params], ["query", r.query]] as const) {
      if (!obj) continue;
      for (const [name, field] of Object.entries(obj.shape)) {
        const f = field as z.ZodType;
        parameters.push({
          name,
          in: where,
          required: where === "path" || !f.safeParse(undefined).success,
          description: f.description,
          schema: jsonSchema(f, "input"),
        });
      }
    }
    const responses: Record<string, unknown> = {
      [String(r.status ?? 200)]: {
        description: "Success",
        ...(r.produces
          ? { content: { [r.produces]: {} } }
          : r.response
          ? { content: { "application/json": { schema: jsonSchema(r.response, "output") } } }
          : {}),
      },
    };
    const errs = new Set<number>([400, 404, ...(r.errors ?? [])]);
    if (r.auth !== "public") errs.add(401);
    if (r.auth === "user" || r.auth === "session" || r.auth === "admin") errs.add(403);
    for (const s of [...errs].sort()) {
      responses[String(s)] = {
        description: ERROR_TEXT[s] ?? "Error",
        content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } },
      };
    }
    (paths[r.path] ??= {})[r.method] = {
      summary: r.summary,
      tags: [r.tag],
      ...(parameters.length ? { parameters } : {}),
      ...(r.body
        ? {
          requestBody: {
            required: true,
            content: { "application/json": { schema: jsonSchema(r.body, "input") } },
          },
        }
        : {}),
      responses,
      // API keys are accepted only on /api/v1 (lib/auth/authenticate.ts); /api/admin takes the session.
      security: r.auth === "public"
        ? []
        : r.auth === "agent"
        ? [{ agentToken: [] }]
        : r.auth !== "session" && r.path.startsWith("/api/v1/")
        ? [{ apiKey: [] }, { session: [] }]
        : [{ session: [] }],
    };
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "Vox API",
      version: "1",
      description: "Everything a Vox page does is one of these calls. Errors are " +
        '`{ "error": { code, message, details? } }`; invalid input is a 400 naming the field.',
    },
    ...(serverUrl ? { servers: [{ url: serverUrl }] } : {}),
    paths,
    components: {
      schemas: { Error: errorSchema },
      securitySchemes: {
        apiKey: { type: "http", scheme: "bearer", description: "An API key: vox_live_<id>_<secret>" },
        session: { type: "apiKey", in: "cookie", name: "vox_session" },
        agentToken: { type: "http", scheme: "bearer", description: "An eval agent token: vox_agent_…" },
      },
    },
  };
}

const ERROR_TEXT: Record<number, string> = {
  400: "Invalid input (the message names the field)",
  401: "Not signed in",
  403: "Not allowed (a plan limit, a role, or an API key where a browser session is needed)",
  404: "No such item, or not visible to the caller",
  409: "Conflicts with the item's state",
  413: "Body too large",
  429: "Too many requests (Retry-After says when to try again)",
  502: "An upstream service failed (the mail server)",
  503: "Not available on this server process",
};
