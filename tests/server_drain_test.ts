// SIGTERM with a request that never finishes: the server waits VOX_DRAIN_SECONDS for it, says
// so, and exits anyway, so an orchestrator's grace period (deploy/) can be set longer than that.
import assert from "node:assert/strict";
import { createTestDatabase } from "./_db.ts";
import { spawnServer } from "./_orch.ts";
import { eventually } from "./_wait.ts";

const db = await createTestDatabase();
Deno.test.afterAll(() => db.close());

Deno.test("a stalled request holds a SIGTERM'd server only for VOX_DRAIN_SECONDS", async () => {
  const server = await spawnServer(db.url, { env: { VOX_DRAIN_SECONDS: "1" }, captureLog: true });
  // Headers promise a body that never comes: the handler waits on it.
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    await conn.write(new TextEncoder().encode(
      "POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n" +
        "Content-Length: 1000\r\n\r\n{",
    ));
    // Give the headers time to reach the handler before the signal. Nothing observable marks
    // that moment (the request's log line comes only when it ends); if the signal came first,
    // the server would not wait at all and the log assertion below would fail, not pass.
    await new Promise((r) => setTimeout(r, 1000));
    server.child.kill("SIGTERM");
    let exited: Deno.CommandStatus | null = null;
    server.child.status.then((s) => exited = s);
    const status = await eventually(() => exited, "the server to exit despite the stalled request", 30_000);
    assert.equal(status.code, 0);
    assert.ok(
      server.log.some((l) => l.includes("requests still open after VOX_DRAIN_SECONDS")),
      `the log says why it stopped waiting:\n${server.log.join("\n")}`,
    );
  } finally {
    try {
      conn.close();
    } catch { /* closed by the server */ }
    await server.stop("SIGKILL");
  }
});
