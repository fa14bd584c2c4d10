// Agent frames are bounded before they are buffered: a frame whose header declares more than
// MAX_FRAME_BYTES closes the socket with 1009 at once, and the payload the peer goes on
// streaming is not held. Raw bytes over TCP after a real upgrade with a valid agent token,
// against a `deno run main.ts` process whose RSS is read from /proc.
import assert from "node:assert/strict";
import { AGENT_WS_PATH, CloseCode, MAX_FRAME_BYTES } from "../agent/protocol.ts";
import { SimAgent } from "../bench/sim_agent.ts";
import { createTestDatabase } from "./_db.ts";
import { agentToken, spawnServer } from "./_orch.ts";
import { concat, rawUpgrade } from "./_bytes.ts";

const db = await createTestDatabase();
const server = await spawnServer(db.url);
Deno.test.afterAll(async () => {
  await server.stop();
  await db.close();
});

const MIB = 1024 * 1024;

/** The server process's resident set, in bytes. */
async function serverRss(): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${server.child.pid}/status`);
  const kb = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  assert.ok(kb, "VmRSS in /proc/<pid>/status");
  return Number(kb[1]) * 1024;
}

/** A raw connection upgraded to the agent socket with a valid token; 101 asserted. */
async function upgraded(region: string): Promise<{ conn: Deno.Conn; rest: Uint8Array }> {
  const token = await agentToken(db.sql, region);
  const { status, conn, rest } = await rawUpgrade(
    server.port,
    AGENT_WS_PATH,
    `Authorization: Bearer ${token}\r\n`,
  );
  assert.equal(status, "HTTP/1.1 101 Switching Protocols");
  return { conn, rest };
}

/**
 * A client frame header (masked, with a zero mask so the payload goes as is) declaring
 * `length` bytes; `fin` false starts a fragmented message, `opcode` 0 continues one.
 */
function frameHeader(length: number, opcode = 0x1, fin = true): Uint8Array {
  const first = (fin ? 0x80 : 0) | opcode;
  if (length < 126) return new Uint8Array([first, 0x80 | length, 0, 0, 0, 0]);
  if (length < 65536) return new Uint8Array([first, 0x80 | 126, length >> 8, length & 255, 0, 0, 0, 0]);
  const h = new Uint8Array(14);
  const view = new DataView(h.buffer);
  h[0] = first;
  h[1] = 0x80 | 127;
  view.setBigUint64(2, BigInt(length));
  return h;
}

/** Reads server frames until a close frame; its code and reason. */
async function readClose(conn: Deno.Conn, start: Uint8Array): Promise<{ code: number; reason: string }> {
  let got = start;
  const buf = new Uint8Array(4096);
  for (;;) {
    // Server frames are unmasked; these are small (length < 126).
    while (got.length >= 2 && got.length >= 2 + (got[1] & 0x7f)) {
      const len = got[1] & 0x7f;
      if ((got[0] & 0x0f) === 0x8) {
        const body = got.subarray(2, 2 + len);
        return {
          code: body.length >= 2 ? (body[0] << 8) | body[1] : 1005,
          reason: new TextDecoder().decode(body.subarray(2)),
        };
      }
      got = got.subarray(2 + len);
    }
    const n = await conn.read(buf).catch(() => null);
    if (n === null) throw new Error("connection ended without a close frame");
    got = concat(got, buf.subarray(0, n));
  }
}

Deno.test("a frame declaring more than MAX_FRAME_BYTES closes with 1009 and its payload is not buffered", async () => {
  // One agent through the whole path first, so what the first socket costs is in the baseline.
  const warm = await SimAgent.connect({
    baseUrl: server.baseUrl,
    token: await agentToken(db.sql, "frames"),
    name: "warm",
    region: "frames",
  });
  await warm.kill();

  const { conn, rest } = await upgraded("frames");
  try {
    const before = await serverRss();
    // 63 MiB declared: under Deno's own 64 MiB cap, so Deno.upgradeWebSocket would have read
    // all of it before our size check (measured: +~190 MiB RSS).
    const declared = 63 * MIB;
    await conn.write(frameHeader(declared));
    const closed = readClose(conn, rest);
    // Keep streaming the promised payload, up to 24 MiB of it, while watching the server's
    // RSS. The server stops reading once it has refused the frame, so these writes block once
    // the kernel's buffers are full, until the server drops the connection.
    const chunk = new Uint8Array(256 * 1024).fill(0x78);
    let sent = 0;
    let writes = 0;
    let peak = before;
    try {
      while (sent < 24 * MIB) {
        sent += await conn.write(chunk);
        if (++writes % 4 === 0) peak = Math.max(peak, await serverRss());
      }
      // Still open after all that (the frame was being read): end it, so a server that never
      // answered shows up as a connection ended without a close frame.
      await conn.closeWrite();
    } catch {
      // The server dropped the connection while we still sent.
    }
    peak = Math.max(peak, await serverRss());
    const grew = peak - before;
    console.log(`streamed ${(sent / MIB).toFixed(1)} MiB; server RSS grew by ${(grew / MIB).toFixed(1)} MiB`);
    const close = await closed;
    assert.equal(close.code, CloseCode.tooLarge);
    assert.match(close.reason, /larger than 262144 bytes/);
    assert.ok(grew < 8 * MIB, `server RSS grew by ${(grew / MIB).toFixed(1)} MiB`);
  } finally {
    try {
      conn.close();
    } catch { /* closed by the server */ }
  }

  // The server still serves agents: one registers as usual.
  const agent = await SimAgent.connect({
    baseUrl: server.baseUrl,
    token: await agentToken(db.sql, "frames"),
    name: "after",
    region: "frames",
  });
  assert.ok(agent.registered);
  await agent.kill();
});

Deno.test("fragments summing past MAX_FRAME_BYTES close with 1009; a frame of exactly the limit is read", async () => {
  // Two fragments of 200 KiB: each under the limit, the message over it.
  {
    const { conn, rest } = await upgraded("frags");
    try {
      const closed = readClose(conn, rest);
      await conn.write(frameHeader(200 * 1024, 0x1, false));
      await conn.write(new Uint8Array(200 * 1024).fill(0x78));
      await conn.write(frameHeader(200 * 1024, 0x0, true));
      const close = await closed;
      assert.equal(close.code, CloseCode.tooLarge);
    } finally {
      try {
        conn.close();
      } catch { /* closed by the server */ }
    }
  }
  // Exactly MAX_FRAME_BYTES is delivered to the session, which reads it (not JSON: 4400).
  {
    const { conn, rest } = await upgraded("frags");
    try {
      const closed = readClose(conn, rest);
      await conn.write(concat(frameHeader(MAX_FRAME_BYTES), new Uint8Array(MAX_FRAME_BYTES).fill(0x78)));
      const close = await closed;
      assert.equal(close.code, CloseCode.badMessage);
      assert.match(close.reason, /not valid JSON/);
    } finally {
      try {
        conn.close();
      } catch { /* closed by the server */ }
    }
  }
});
