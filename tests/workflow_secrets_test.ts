// Sealed workflow secrets (SPEC §5): write-only through the API (names only come back), sealed
// with AES-256-GCM and bound to their workflow in the database, never in logs or error bodies,
// and delivered to the eval agent inside its job offer over the authenticated socket.
import assert from "node:assert/strict";
import { AgentConnection } from "../agent/connection.ts";
import type { ServerMessage } from "../agent/protocol.ts";
import { createJob } from "../lib/queue.ts";
import { jobSecret, openSecrets, workflowSecrets } from "../lib/workflow_secrets.ts";
import { apiKeyFor, createUser } from "./_auth.ts";
import { createTestDatabase } from "./_db.ts";
import { agentToken, insertEvalPair, startOrchServer } from "./_orch.ts";
import { eventually } from "./_wait.ts";
import { importKey } from "../lib/secrets.ts";

const db = await createTestDatabase();
const sql = db.sql;
Deno.test.afterAll(() => db.close());

const VALUE = "sk-test-" + "Zq9".repeat(12);

function api(
  app: { request: (p: string, i?: RequestInit) => Response | Promise<Response> },
  key: string,
) {
  return async (method: string, path: string, body?: unknown) => {
    const res = await app.request(path, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body ? { "content-type": "application/json" } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, text, data: text ? JSON.parse(text) : null };
  };
}

Deno.test("secrets are write-only, sealed per workflow, absent from logs and errors, and reach the agent", async () => {
  const server = await startOrchServer(sql);
  const logs: string[] = [];
  const { configureLogging } = await import("../lib/log.ts");
  configureLogging("debug", (_l, line) => logs.push(line));
  try {
    const pair = await insertEvalPair(sql);
    const owner = api(server.app, await apiKeyFor(sql, pair.userId));
    const base = `/api/v1/workflows/${pair.workflowId}/secrets`;

    assert.deepEqual((await owner("GET", base)).data, { names: [] });
    const put = await owner("PUT", `${base}/OPENAI_API_KEY`, { value: VALUE });
    assert.equal(put.status, 200, put.text);
    assert.deepEqual(put.data, { names: ["OPENAI_API_KEY"] });
    assert.equal((await owner("PUT", `${base}/TTS_KEY`, { value: "tts-1" })).status, 200);
    // Replacing keeps one name; reads show names only, in the list and in the workflow itself.
    assert.deepEqual((await owner("PUT", `${base}/TTS_KEY`, { value: "tts-2" })).data, {
      names: ["OPENAI_API_KEY", "TTS_KEY"],
    });
    const listed = await owner("GET", base);
    assert.deepEqual(listed.data, { names: ["OPENAI_API_KEY", "TTS_KEY"] });
    const item = await owner("GET", `/api/v1/workflows/${pair.workflowId}`);
    assert.equal(item.status, 200);
    for (const text of [put.text, listed.text, item.text]) assert.ok(!text.includes(VALUE));

    // In the database: sealed (v1.<iv>.<ct>), not the value, and bound to this workflow.
    const [row] = await sql`SELECT secrets_enc FROM workflows WHERE id = ${pair.workflowId}`;
    assert.match(row.secretsEnc, /^v1\./);
    assert.ok(!row.secretsEnc.includes(VALUE) && !row.secretsEnc.includes(btoa(VALUE).slice(0, 20)));
    // The key tests/_app.ts gives every test app.
    const deps = { secretKey: await importKey(new Uint8Array(32).fill(7)) };
    assert.deepEqual(await workflowSecrets(sql, deps.secretKey, pair.workflowId), {
      OPENAI_API_KEY: VALUE,
      TTS_KEY: "tts-2",
    });
    await assert.rejects(openSecrets(deps.secretKey, pair.workflowId + 1, row.secretsEnc));

    // Bad input: a clear 400 naming the field, with nothing of the value in it.
    const badName = await owner("PUT", `${base}/9lives`, { value: VALUE });
    assert.equal(badName.status, 400);
    assert.match(badName.data.error.message, /^name: /);
    const tooLong = await owner("PUT", `${base}/BIG`, { value: VALUE + "x".repeat(9000) });
    assert.equal(tooLong.status, 400);
    assert.match(tooLong.data.error.message, /^value: /);
    for (const r of [badName, tooLong]) assert.ok(!r.text.includes(VALUE));
    const unknown = await owner("DELETE", `${base}/NOPE`);
    assert.equal(unknown.status, 404);

    // Someone else: a public workflow is visible but not theirs (403); a missing one is 404.
    const other = api(server.app, await apiKeyFor(sql, (await createUser(sql)).id));
    assert.equal((await other("GET", base)).status, 403);
    assert.equal((await other("PUT", `${base}/X`, { value: "v" })).status, 403);
    assert.equal((await other("DELETE", `${base}/TTS_KEY`)).status, 403);
    assert.equal((await owner("GET", `/api/v1/workflows/987654321/secrets`)).status, 404);

    // The agent running a job of this workflow gets the values in its offer.
    const offers: ServerMessage[] = [];
    const conn = new AgentConnection({
      serverUrl: server.baseUrl,
      token: await agentToken(sql, "secrets"),
      name: "secrets-agent",
      region: "secrets",
      capacity: 1,
      version: "test",
      activeJobs: () => [],
      onMessage: (m) => offers.push(m),
    });
    conn.start();
    try {
      const job = await createJob(sql, {
        workflowId: pair.workflowId,
        evalSetId: pair.evalSetId,
        region: "secrets",
        createdBy: pair.userId,
      });
      assert.equal(await jobSecret(sql, deps.secretKey, job.id, "OPENAI_API_KEY"), VALUE);
      assert.equal(await jobSecret(sql, deps.secretKey, job.id, "NOPE"), null);
      const offer = await eventually(
        () => offers.find((m) => m.type === "job.offer"),
        "the job offer",
        10_000,
      );
      assert.equal(offer.type, "job.offer");
      if (offer.type === "job.offer") {
        assert.deepEqual(offer.workflow.secrets, { OPENAI_API_KEY: VALUE, TTS_KEY: "tts-2" });
      }
    } finally {
      conn.stop();
    }

    // Deleting the last secrets clears the column.
    await owner("DELETE", `${base}/TTS_KEY`);
    assert.deepEqual((await owner("DELETE", `${base}/OPENAI_API_KEY`)).data, { names: [] });
    const [cleared] = await sql`SELECT secrets_enc FROM workflows WHERE id = ${pair.workflowId}`;
    assert.equal(cleared.secretsEnc, null);
    assert.ok(logs.length > 0);
    assert.ok(!logs.join("\n").includes(VALUE), "a secret value reached the logs");
  } finally {
    await server.stop();
  }
});

Deno.test("moving a workflow's Realtime endpoint to another origin deletes its secrets; the same origin keeps them", async () => {
  const server = await startOrchServer(sql);
  try {
    const pair = await insertEvalPair(sql);
    const owner = api(server.app, await apiKeyFor(sql, pair.userId));
    const path = `/api/v1/workflows/${pair.workflowId}`;
    const realtime = (url: string) => ({ config: { realtime: { url, auth: { secret: "OPENAI_API_KEY" } } } });
    const first = await owner("PATCH", path, realtime("wss://voice.example.com/v1/realtime?model=a"));
    assert.equal(first.status, 200, first.text);
    assert.equal(first.data.secretsCleared, undefined, "no secrets yet: nothing to clear");
    assert.equal((await owner("PUT", `${path}/secrets/OPENAI_API_KEY`, { value: VALUE })).status, 200);

    // Same scheme, host and port (another model, another path): the key stays.
    const same = await owner("PATCH", path, realtime("wss://voice.example.com/v2/realtime?model=b"));
    assert.equal(same.status, 200, same.text);
    assert.equal(same.data.secretsCleared, undefined);
    assert.deepEqual((await owner("GET", `${path}/secrets`)).data, { names: ["OPENAI_API_KEY"] });

    // Another host (a member pointing it at their own server): the key is gone, and the answer says so.
    const moved = await owner("PATCH", path, realtime("wss://collector.example.net/v1/realtime"));
    assert.equal(moved.status, 200, moved.text);
    assert.equal(moved.data.secretsCleared, true);
    assert.ok(!moved.text.includes(VALUE));
    assert.deepEqual((await owner("GET", `${path}/secrets`)).data, { names: [] });
    const [row] = await sql`SELECT secrets_enc FROM workflows WHERE id = ${pair.workflowId}`;
    assert.equal(row.secretsEnc, null);
  } finally {
    await server.stop();
  }
});
