// Every route under /api, walked from the app's own route table and /openapi.json: each one is
// accounted for, answers 401 without credentials (unless public), 403 to the wrong caller, 400
// naming the field for a malformed id, query value or body, and 404 for an id that does not
// exist. Requests authenticate for real (API keys on /api/v1, the browser session elsewhere).
import assert from "node:assert/strict";
import { revokeApiKey } from "../lib/auth/api_keys.ts";
import { documentedRoutes, type RouteDoc } from "../lib/openapi.ts";
import type { Role } from "../lib/roles.ts";
import { apiKeyFor, createUser, sessionFor } from "./_auth.ts";
import { createTestDatabase } from "./_db.ts";
import { agentToken, startOrchServer } from "./_orch.ts";

const db = await createTestDatabase();
const sql = db.sql;
// The app with an orchestrator, so the agent routes under /api/agent are registered too.
const server = await startOrchServer(sql);
const app = server.app;
Deno.test.afterAll(async () => {
  await server.stop();
  await db.close();
});

type Auth = RouteDoc["auth"];
interface Route {
  method: string;
  /** OpenAPI style: /api/v1/jobs/{id}. */
  path: string;
  /** "session": a signed-in browser, API keys refused; "admin": the administrator's session. */
  auth: Auth;
}

const openapi = await (await app.request("/openapi.json")).json();

/** Every handler the app registers under /api (middleware, method ALL, left out). */
function registeredRoutes(): string[] {
  const seen = new Set<string>();
  for (const r of app.routes) {
    if (r.method === "ALL" || !r.path.startsWith("/api/")) continue;
    seen.add(`${r.method} ${r.path.replace(/:(\w+)/g, "{$1}")}`);
  }
  return [...seen].sort();
}

/** The documented routes, with what each needs. */
function allRoutes(): Route[] {
  return documentedRoutes().map((r) => ({ method: r.method.toUpperCase(), path: r.path, auth: r.auth }));
}

// Provider ids are 12 lower-case letters and digits; the other ids here are integers.
const fill = (path: string, id = path.startsWith("/api/v1/providers/") ? "zzzzzzzzzzzz" : "1") =>
  path.replace("{id}", id).replace("{jobId}", id).replace("{name}", "call.wav").replace(
    "{provider}",
    "google",
  ).replace("{key}", "jobs.max_attempts").replace("{userId}", id).replace("{inviteId}", id)
    .replace("{kind}", "basic");
const hasBody = (method: string) => ["POST", "PUT", "PATCH"].includes(method);

/** A request's status and JSON body (other bodies, event streams included, are cancelled). */
async function send(method: string, path: string, headers: Record<string, string>, body?: unknown) {
  const res = await app.request(path, {
    method,
    headers: body === undefined ? headers : { ...headers, "content-type": "application/json" },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  const json = (res.headers.get("content-type") ?? "").includes("application/json");
  const data = json ? await res.json() : (await res.body?.cancel(), null);
  return { status: res.status, data };
}

/** The Vox error envelope: { error: { code, message, details? } }. */
function assertEnvelope(data: unknown, what: string) {
  const e = (data as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  assert.ok(e, `${what}: no error envelope in ${JSON.stringify(data)}`);
  assert.equal(typeof e.code, "string", what);
  assert.equal(typeof e.message, "string", what);
  assert.ok((e.message as string).length > 0, what);
}

interface Caller {
  id: number;
  key: Record<string, string>;
  browser: Record<string, string>;
}
async function caller(o: { isAdmin?: boolean; role?: Role } = {}): Promise<Caller> {
  const u = await createUser(sql, { isAdmin: o.isAdmin, role: o.role });
  const { cookie } = await sessionFor(sql, u.id);
  return {
    id: u.id,
    key: { authorization: `Bearer ${await apiKeyFor(sql, u.id)}` },
    browser: { cookie, origin: "http://localhost", "sec-fetch-site": "same-origin" },
  };
}
const basic = await caller();
const admin = await caller({ isAdmin: true });
const principal = await caller({ role: "principal" });

/**
 * Who calls a route in these checks: the admin's browser for admin routes, the basic user's
 * browser for session routes, a principal's key for the curated-provider routes (only
 * curators get past their role check to the validation), else the basic user's key.
 */
function callerOf(r: { auth: string; path: string }): Record<string, string> {
  if (r.auth === "admin") return admin.browser;
  if (r.auth === "session") return basic.browser;
  if (r.auth === "user" && r.path.startsWith("/api/v1/providers")) return principal.key;
  return basic.key;
}

/** A valid body for routes whose body must pass validation before the id is looked up. */
const VALID_BODIES: Record<string, unknown> = {
  "POST /api/v1/organizations/{id}/billing/checkout": { seats: 6 },
  "POST /api/v1/organizations/{id}/billing/cancel": { subscriptionId: 1 },
  "POST /api/v1/organizations/{id}/billing/payment-methods/default": { paymentMethodId: "pm_1" },
  "POST /api/v1/organizations/{id}/billing/payment-methods/remove": { paymentMethodId: "pm_1" },
  "POST /api/v1/organizations/{id}/billing/fund-returns": { paymentId: 1, amountCents: 1, reason: "x" },
  "POST /api/admin/fund-returns/{id}/reject": { reason: "x" },
  "PATCH /api/v1/providers/{id}": { name: "routes test" },
};

Deno.test("every /api route the app registers is documented in /openapi.json, and vice versa", () => {
  const registered = registeredRoutes();
  const known = allRoutes().map((r) => `${r.method} ${r.path}`);
  const unaccounted = registered.filter((r) => !known.includes(r));
  assert.deepEqual(unaccounted, [], "routes with no entry in /openapi.json");
  const stale = known.filter((r) => !registered.includes(r));
  assert.deepEqual(stale, [], "documented routes the app does not register");
  // /openapi.json is the registry, served: every documented route is in it, public ones without security.
  for (const r of documentedRoutes()) {
    const op = openapi.paths[r.path]?.[r.method];
    assert.ok(op, `${r.method} ${r.path} missing from /openapi.json`);
    assert.equal(op.security.length === 0, r.auth === "public", `${r.method} ${r.path} security`);
    // What it says about credentials is what the server does: API keys only on /api/v1, and not
    // where a browser session is required.
    if (r.auth === "user" || r.auth === "session" || r.auth === "admin") {
      const schemes = op.security.map((s: Record<string, unknown>) => Object.keys(s)[0]).sort();
      const expected = r.auth === "user" && r.path.startsWith("/api/v1/")
        ? ["apiKey", "session"]
        : ["session"];
      assert.deepEqual(schemes, expected, `${r.method} ${r.path} security`);
    }
    if (r.auth !== "public") assert.ok(op.responses["401"], `${r.method} ${r.path} documents 401`);
  }
  assert.ok(registered.length >= 67, `only ${registered.length} routes`);
});

Deno.test(
  "without credentials every non-public route answers 401 with the error envelope",
  async () => {
    const checked: string[] = [];
    for (const r of allRoutes()) {
      if (r.auth === "public") continue;
      let res;
      if (r.method === "GET" && r.path === "/api/agent/ws") {
        // The token comes in the upgrade's header; a bad or missing one is refused before any
        // socket opens (each reason: orch_agents_test).
        res = await send("GET", r.path, {
          upgrade: "websocket",
          connection: "Upgrade",
          "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
          "sec-websocket-version": "13",
          authorization: "Bearer vox_agent_nonsense",
        });
      } else {
        res = await send(r.method, fill(r.path), {}, hasBody(r.method) ? "{}" : undefined);
      }
      assert.equal(res.status, 401, `${r.method} ${r.path}: ${JSON.stringify(res.data)}`);
      assertEnvelope(res.data, `${r.method} ${r.path}`);
      assert.equal(res.data.error.code, "unauthorized", `${r.method} ${r.path}`);
      checked.push(`${r.method} ${r.path}`);
    }
    assert.ok(checked.length >= 52, `only ${checked.length} routes`);
    // The public ones answer without credentials (whatever else they say, it is not 401).
    for (const r of allRoutes().filter((r) => r.auth === "public")) {
      const res = await send(r.method, fill(r.path), {}, hasBody(r.method) ? "{}" : undefined);
      assert.notEqual(res.status, 401, `${r.method} ${r.path} is public`);
    }
  },
);

Deno.test(
  "a malformed, unknown or revoked API key is a 401 naming the problem on every /api/v1 route",
  async () => {
    const u = await createUser(sql);
    const revoked = await apiKeyFor(sql, u.id, "revoked");
    await revokeApiKey(sql, u.id, revoked.split("_")[2]);
    const unknown = (await apiKeyFor(sql, u.id)).replace(/_([0-9a-z]{12})_/, "_zzzzzzzzzzzz_");
    const cases: [string, string][] = [
      ["Bearer vox_live_nope", "invalid_api_key"],
      [`Bearer ${unknown}`, "invalid_api_key"],
      [`Bearer ${revoked}`, "api_key_revoked"],
      [`Basic ${btoa("user:pass")}`, "invalid_authorization"],
    ];
    let checked = 0;
    for (const r of allRoutes()) {
      if (!r.path.startsWith("/api/v1/") || r.auth === "public") continue;
      for (const [authorization, code] of cases) {
        const res = await send(
          r.method,
          fill(r.path),
          { authorization },
          hasBody(r.method) ? "{}" : undefined,
        );
        assert.equal(res.status, 401, `${r.method} ${r.path} with ${code}`);
        assertEnvelope(res.data, `${r.method} ${r.path}`);
        assert.equal(res.data.error.code, code, `${r.method} ${r.path}`);
      }
      checked++;
    }
    assert.ok(checked >= 40, `only ${checked} routes`);
  },
);

Deno.test(
  "403: the administrator's routes refuse other users; session-only routes refuse API keys",
  async () => {
    let adminRoutes = 0;
    for (const r of allRoutes().filter((r) => r.auth === "admin")) {
      const body = hasBody(r.method) ? "{}" : undefined;
      const other = await send(r.method, fill(r.path), basic.browser, body);
      assert.equal(other.status, 403, `${r.method} ${r.path} as a basic user`);
      assertEnvelope(other.data, r.path);
      assert.equal(other.data.error.code, "forbidden");
      // API keys count only on /api/v1: not even the administrator's key is someone here.
      const byKey = await send(r.method, fill(r.path), admin.key, body);
      assert.equal(byKey.status, 401, `${r.method} ${r.path} with the admin's API key`);
      assert.equal(byKey.data.error.code, "unauthorized");
      adminRoutes++;
    }
    assert.ok(adminRoutes >= 10, `only ${adminRoutes} admin routes`);
    for (const r of allRoutes().filter((r) => r.auth === "session")) {
      const res = await send(r.method, fill(r.path), basic.key, hasBody(r.method) ? "{}" : undefined);
      assert.equal(res.status, 403, `${r.method} ${r.path} with an API key`);
      assert.equal(res.data.error.code, "session_required");
    }
  },
);

Deno.test(
  "every route with an id: 400 naming the field for a malformed id, 404 for a missing one",
  async () => {
    const checked: string[] = [];
    for (const r of allRoutes()) {
      if (r.auth === "public" || r.auth === "agent" || !r.path.includes("{id}")) continue;
      // The administrator's routes take the admin's browser session; the rest the basic user's key.
      const headers = callerOf(r);
      const body = !hasBody(r.method)
        ? undefined
        : r.path.endsWith("/run")
        ? { evalSetId: 1, region: "eu" }
        : r.path.startsWith("/api/admin/users/") && r.method === "PATCH"
        ? { role: "basic" }
        : r.path.endsWith("/secrets/{name}")
        ? { value: "not-a-real-key" }
        : r.path.includes("/members/{userId}") && r.method === "PATCH"
        ? { orgRole: "member" }
        : r.path.endsWith("/{id}/invites")
        ? { email: "someone@example.test" }
        : r.path.endsWith("/verification")
        ? { verified: true }
        : r.path.endsWith("/exclusion")
        ? { reason: "routes test" }
        : VALID_BODIES[`${r.method} ${r.path}`] ?? {};
      const bad = await send(r.method, fill(r.path, "not-a-number"), headers, body);
      assert.equal(bad.status, 400, `${r.method} ${r.path} malformed id: ${JSON.stringify(bad.data)}`);
      assertEnvelope(bad.data, r.path);
      assert.equal(bad.data.error.code, "invalid_input");
      assert.match(bad.data.error.message, /^id: /);
      // API key ids are 12 lower-case letters and digits, session ids 16 hex digits; the others
      // positive integers.
      const missingId = r.path.startsWith("/api/v1/api-keys/") || r.path.startsWith("/api/v1/providers/")
        ? "zzzzzzzzzzzz"
        : r.path.startsWith("/api/v1/user/sessions/")
        ? "0123456789abcdef"
        : "987654321";
      const missing = await send(r.method, fill(r.path, missingId), headers, body);
      assert.equal(missing.status, 404, `${r.method} ${r.path} missing id: ${JSON.stringify(missing.data)}`);
      assertEnvelope(missing.data, r.path);
      // "not_found", or what was not found: "user_not_found", "api_key_not_found".
      assert.match(missing.data.error.code, /^([a-z_]+_)?not_found$/);
      checked.push(`${r.method} ${r.path}`);
    }
    assert.ok(checked.length >= 32, `only ${checked.length}`);
    assert.ok(
      checked.includes("DELETE /api/v1/api-keys/{id}") && checked.includes("GET /api/admin/users/{id}"),
    );

    // The agent's upload route, with a valid agent token: the job id and the name are checked.
    const token = { authorization: `Bearer ${await agentToken(sql, "ids")}` };
    const badJob = await app.request("/api/agent/jobs/abc/artifacts/call.wav", {
      method: "PUT",
      headers: token,
    });
    assert.equal(badJob.status, 400);
    assert.match((await badJob.json()).error.message, /^jobId: /);
    const badName = await app.request("/api/agent/jobs/1/artifacts/bad%20name!", {
      method: "PUT",
      headers: token,
    });
    assert.equal(badName.status, 400);
    assert.match((await badName.json()).error.message, /^name: /);
  },
);

Deno.test("every documented query parameter: a bad value is a 400 naming it", async () => {
  const bad = (schema: { type?: string; enum?: unknown[]; pattern?: string; format?: string }) =>
    schema.type === "integer" || schema.type === "number"
      ? "not-a-number"
      : schema.enum
      ? "no-such-value"
      : schema.pattern
      ? "Not Valid!"
      : schema.format
      ? "not-a-date"
      : null;
  let checked = 0;
  for (const [path, ops] of Object.entries(openapi.paths as Record<string, Record<string, unknown>>)) {
    for (const [method, op] of Object.entries(ops)) {
      const params = ((op as { parameters?: unknown[] }).parameters ?? []) as {
        name: string;
        in: string;
        schema: Record<string, unknown> & { anyOf?: Record<string, unknown>[] };
      }[];
      for (const p of params.filter((p) => p.in === "query")) {
        const value = bad(p.schema.anyOf?.[0] ?? p.schema);
        if (value === null) continue;
        const route = documentedRoutes().find((r) => r.path === path && r.method === method)!;
        const headers = route.auth === "public" || route.auth === "agent" ? {} : callerOf(route);
        const res = await send(
          method.toUpperCase(),
          `${fill(path)}?${p.name}=${encodeURIComponent(value)}`,
          headers,
        );
        assert.equal(res.status, 400, `${method} ${path}?${p.name}=${value}: ${JSON.stringify(res.data)}`);
        assertEnvelope(res.data, path);
        assert.match(res.data.error.message, new RegExp(`^${p.name}: `), `${method} ${path} ${p.name}`);
        checked++;
      }
    }
  }
  assert.ok(checked >= 32, `only ${checked} query parameters`);
});

Deno.test("every route that takes a JSON body: invalid input is a 400 naming the field", async () => {
  const checked: string[] = [];
  // Documented bodies: a value of the wrong type in the first plain field is named.
  for (const [path, ops] of Object.entries(openapi.paths as Record<string, Record<string, unknown>>)) {
    for (const [method, op] of Object.entries(ops)) {
      const schema =
        (op as { requestBody?: { content: Record<string, { schema: Record<string, unknown> }> } })
          .requestBody?.content["application/json"].schema;
      if (!schema?.properties) continue;
      const props = schema.properties as Record<string, { type?: string }>;
      const field = Object.keys(props).find((k) =>
        ["string", "integer", "number", "boolean"].includes(props[k].type!)
      );
      assert.ok(field, `${method} ${path} has no plain field`);
      const route = documentedRoutes().find((r) => r.path === path && r.method === method)!;
      const headers = callerOf(route);
      const res = await send(method.toUpperCase(), fill(path), headers, { [field]: { not: "valid" } });
      assert.equal(res.status, 400, `${method} ${path}: ${JSON.stringify(res.data)}`);
      assertEnvelope(res.data, path);
      assert.equal(res.data.error.code, "invalid_input");
      const fields = res.data.error.details.issues.map((i: { field: string }) => i.field);
      assert.ok(fields.includes(field), `${method} ${path} names ${field}: ${JSON.stringify(fields)}`);
      assert.match(res.data.error.message, /^[A-Za-z][\w.]*: /);
      checked.push(`${method.toUpperCase()} ${path}`);
    }
  }
  // Not JSON at all is a 400 too, never a 500.
  const garbled = await send("POST", "/api/v1/projects", basic.key, "{not json");
  assert.equal(garbled.status, 400);
  assertEnvelope(garbled.data, "garbled body");
  assert.ok(checked.length >= 19, `only ${checked.length}`);
});

Deno.test("the agent's audio route: 400 naming jobId or sha256, 409 for a job the token does not hold", async () => {
  const token = { authorization: `Bearer ${await agentToken(sql, "audio")}` };
  const sha = "a".repeat(64);
  const cases: [string, number, RegExp][] = [
    [`/api/agent/jobs/abc/audio/${sha}`, 400, /^jobId: /],
    ["/api/agent/jobs/1/audio/not-a-hash", 400, /^sha256: /],
    [`/api/agent/jobs/987654321/audio/${sha}`, 409, /not running on an agent of this token/],
  ];
  for (const [path, status, message] of cases) {
    const res = await app.request(path, { headers: token });
    assert.equal(res.status, status, path);
    assert.match((await res.json()).error.message, message, path);
  }
});

Deno.test(
  "organization routes: outsiders get 404 (the organization stays unknown), members 403 on admin-only ones",
  async () => {
    const { createOrganization } = await import("../lib/orgs.ts");
    const owner = await createUser(sql);
    const org = await createOrganization({ sql }, owner.user, { name: "Route table org" });
    const member = await createUser(sql, { organizationId: org.id, orgRole: "member" });
    const memberKey = { authorization: `Bearer ${await apiKeyFor(sql, member.id)}` };
    const outsiderOrg = await createUser(sql);
    await createOrganization({ sql }, outsiderOrg.user, { name: "Another org" });
    const otherKey = { authorization: `Bearer ${await apiKeyFor(sql, outsiderOrg.id)}` };
    // What a plain member may do; everything else under the organization is for its admins.
    const memberMay = new Set(["GET {id}", "GET {id}/members", "POST {id}/leave"]);
    const bodies: Record<string, unknown> = {
      "PATCH {id}": { name: "Renamed" },
      "PATCH {id}/members/{userId}": { orgRole: "admin" },
      "POST {id}/invites": { email: "someone@example.test" },
    };
    let checked = 0;
    for (const r of allRoutes().filter((r) => r.path.startsWith("/api/v1/organizations/{id}"))) {
      const key = `${r.method} ${r.path.slice("/api/v1/organizations/".length)}`;
      const path = fill(r.path, String(org.id)).replace(`/members/${org.id}`, `/members/${owner.id}`);
      const body = bodies[key] ??
        (hasBody(r.method) ? VALID_BODIES[`${r.method} ${r.path}`] ?? {} : undefined);
      for (const headers of [basic.key, otherKey]) {
        const res = await send(r.method, path, headers, body);
        assert.equal(res.status, 404, `${key} as an outsider: ${JSON.stringify(res.data)}`);
        assert.equal(res.data.error.code, "not_found", key);
      }
      if (!memberMay.has(key)) {
        const res = await send(r.method, path, memberKey, body);
        assert.equal(res.status, 403, `${key} as a member: ${JSON.stringify(res.data)}`);
        assert.equal(res.data.error.code, "forbidden", key);
      }
      checked++;
    }
    assert.ok(checked >= 9, `only ${checked} organization routes`);
    // The organization is untouched by all of it.
    const [o] = await sql`SELECT name FROM organizations WHERE id = ${org.id}`;
    assert.equal(o.name, "Route table org");
    const [{ n }] = await sql`SELECT count(*)::int AS n FROM invite_tokens WHERE organization_id = ${org.id}`;
    assert.equal(n, 0);
  },
);

Deno.test("an organization's billing: its admin gets past the guards to 'billing is not set up'", async () => {
  const [org] = await sql<
    { id: number }[]
  >`INSERT INTO organizations (name) VALUES ('Route Org') RETURNING id`;
  const orgAdmin = await createUser(sql, { organizationId: org.id, orgRole: "admin" });
  const key = { authorization: `Bearer ${await apiKeyFor(sql, orgAdmin.id)}` };
  const routes = allRoutes().filter((r) => r.path.startsWith("/api/v1/organizations/{id}/billing"));
  assert.ok(routes.length >= 12, `only ${routes.length} organization billing routes`);
  for (const r of routes) {
    const body = hasBody(r.method) ? VALID_BODIES[`${r.method} ${r.path}`] ?? {} : undefined;
    // Outsiders (404) and plain members (403) are checked by the organization routes test above.
    const own = await send(r.method, fill(r.path, String(org.id)), key, body);
    assert.equal(own.status, 404, `${r.method} ${r.path} as its admin`);
    assert.equal(own.data.error.code, "billing_disabled");
  }
  // The webhook refuses to work without a signing secret, whoever calls.
  const hook = await send("POST", "/api/webhooks/stripe", {}, "{}");
  assert.equal(hook.status, 404);
  assert.equal(hook.data.error.code, "billing_disabled");
});
