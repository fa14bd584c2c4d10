import assert from "node:assert/strict";
import { HttpError } from "../lib/errors.ts";
import { createSql } from "../lib/db.ts";
import { freePort } from "../lib/embedded_pg.ts";
import { createTestDatabase } from "./_db.ts";
import { createTestApp } from "./_app.ts";

const db = await createTestDatabase();
Deno.test.afterAll(() => db.close());

Deno.test("GET /healthz answers 200 while the process is up", async () => {
  const { app } = await createTestApp(db.sql);
  const res = await app.request("/healthz");
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /application\/json/);
  assert.equal((await res.json()).status, "ok");
});

Deno.test("GET /readyz is 200 on a migrated database", async () => {
  const { app } = await createTestApp(db.sql);
  const res = await app.request("/readyz");
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { status: "ready" });
});

Deno.test("GET /readyz is 503 with the error envelope when the database is down", async () => {
  const dead = createSql(`postgres://nobody@127.0.0.1:${freePort()}/none`, { max: 1 });
  const { app } = await createTestApp(dead);
  const res = await app.request("/readyz");
  assert.equal(res.status, 503);
  const body = await res.json();
  assert.equal(body.error.code, "not_ready");
  assert.match(body.error.message, /unreachable/);
  await dead.end();
});

Deno.test("GET /readyz is 503 when a migration is missing", async () => {
  const empty = await createTestDatabase({ empty: true });
  try {
    const { app } = await createTestApp(empty.sql);
    const res = await app.request("/readyz");
    assert.equal(res.status, 503);
    assert.match((await res.json()).error.message, /migrations/);
  } finally {
    await empty.close();
  }
});

Deno.test("HttpError becomes the JSON error envelope with its status and details", async () => {
  const { app } = await createTestApp(db.sql);
  app.get("/api/test/teapot", () => {
    throw new HttpError(422, "bad_thing", "The thing is bad", { details: { field: "x" } });
  });
  const res = await app.request("/api/test/teapot");
  assert.equal(res.status, 422);
  assert.match(res.headers.get("content-type") ?? "", /application\/json/);
  assert.deepEqual(await res.json(), {
    error: { code: "bad_thing", message: "The thing is bad", details: { field: "x" } },
  });
});

Deno.test("an unexpected error is logged and answered with a generic 500", async () => {
  const { app, logs } = await createTestApp(db.sql);
  app.get("/api/test/boom", () => {
    throw new Error("secret internals: connection string postgres://u:hunter2@db");
  });
  const res = await app.request("/api/test/boom");
  assert.equal(res.status, 500);
  const text = await res.text();
  assert.deepEqual(JSON.parse(text), { error: { code: "internal", message: "Internal server error" } });
  assert.doesNotMatch(text, /hunter2|internals/);
  assert.match(logs.text, /unhandled error/);
  assert.match(logs.text, /"requestId"/);
});

Deno.test("a unique violation from Postgres becomes 409 conflict", async () => {
  const { app } = await createTestApp(db.sql);
  app.post("/api/test/dup", async () => {
    // Curated provider names are unique (migrations/00010_boards.sql); this one is seeded.
    await db.sql`INSERT INTO providers (name, sku, curated) VALUES ('LiveKit Agents', 1, true)`;
    return new Response("unreachable");
  });
  const res = await app.request("/api/test/dup", { method: "POST" });
  assert.equal(res.status, 409);
  assert.equal((await res.json()).error.code, "conflict");
});

Deno.test("unknown API paths are a JSON 404; unknown pages an HTML 404", async () => {
  const { app } = await createTestApp(db.sql);
  const api = await app.request("/api/v1/nope");
  assert.equal(api.status, 404);
  assert.equal((await api.json()).error.code, "not_found");
  const page = await app.request("/nope");
  assert.equal(page.status, 404);
  assert.match(page.headers.get("content-type") ?? "", /text\/html/);
  assert.match(await page.text(), /Run your own/);
});

Deno.test("responses carry security headers and a request id", async () => {
  const { app } = await createTestApp(db.sql);
  const res = await app.request("/", { headers: { "x-request-id": "trace-12345678" } });
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-security-policy") ?? "", /default-src 'self'/);
  assert.equal(res.headers.get("x-content-type-options"), "nosniff");
  assert.equal(res.headers.get("x-frame-options"), "SAMEORIGIN");
  assert.equal(res.headers.get("x-request-id"), "trace-12345678");
  await res.body?.cancel();
});

Deno.test("every page links to Run your own in its navigation", async () => {
  const { app } = await createTestApp(db.sql);
  for (const path of ["/", "/agents", "/run-your-own", "/dive"]) {
    const res = await app.request(path);
    assert.equal(res.status, 200, path);
    assert.match(await res.text(), /<a class="run-own" href="\/run-your-own">Run your own<\/a>/, path);
  }
});

Deno.test("island bundles are served immutable under their build id; other ids are 404", async () => {
  const { app, deps } = await createTestApp(db.sql);
  const res = await app.request(deps.assets.runtimeUrl);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type") ?? "", /javascript/);
  assert.match(res.headers.get("cache-control") ?? "", /immutable/);
  await res.body?.cancel();
  const stale = await app.request("/_islands/0000000000000000/lib/islands/reviver.js");
  assert.equal(stale.status, 404);
  await stale.body?.cancel();
  const escape = await app.request(`/_islands/${deps.assets.buildId}/..%2F..%2Fdeno.json`);
  assert.equal(escape.status, 404);
  await escape.body?.cancel();
});

Deno.test("/dive explains every metric and lists the seeded providers with their ids", async () => {
  const { app } = await createTestApp(db.sql);
  const res = await app.request("/dive");
  assert.equal(res.status, 200);
  const html = await res.text();
  for (
    const metric of [
      "Response latency",
      "Interrupt latency",
      "Network resilience",
      "Noise reduction",
      "Naturalness",
      "Pause takeover rate",
      "Backchannel stop rate",
      "Background false-trigger rate",
      "Turn-taking penalty",
    ]
  ) {
    assert.match(html, new RegExp(metric), metric);
  }
  // The turn-taking definitions say what is counted, the window, the penalty's constants, and
  // what they do not measure.
  assert.match(html, /takeovers ÷ pauses/);
  assert.match(html, /within a window \(1\.5 s by default\)/);
  assert.match(html, /costs 2000 ms, every reply costs its latency beyond 800 ms/);
  assert.ok(
    (html.match(/Not measured: /g) ?? []).length >= 3,
    "each turn-taking metric says what it leaves out",
  );
  assert.match(html, /Agora ConvoAI Engine/);
  assert.match(html, /<code>55q6lmqndb3b<\/code>/);
  assert.match(html, /LiveKit Agents/);
});
