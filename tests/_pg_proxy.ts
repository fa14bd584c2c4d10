// A TCP proxy in front of PostgreSQL that behaves like a pooler which swallows notifications:
// everything passes, except NotificationResponse messages ('A') on their way to the client.
// Queries, transactions, LISTEN and NOTIFY all "work"; only the notifications never arrive.

import { concat } from "./_bytes.ts";

/** A running proxy; close() stops accepting and cuts every connection. */
export interface PgProxy {
  port: number;
  /** `url` with its host and port replaced by the proxy's. */
  urlFor(url: string): string;
  /** NotificationResponse messages dropped so far. */
  readonly dropped: number;
  close(): Promise<void>;
}

/**
 * Starts the proxy towards `target` (a postgres:// URL's host and port). The client must not
 * ask for TLS (sslmode unset): the server's messages are then one stream of typed frames —
 * a type byte and an int32 length that counts itself — which the proxy cuts at frame
 * boundaries. The client's side (startup message first, untyped) is copied as it is.
 */
export function startNotifySwallowingProxy(target: string): PgProxy {
  const t = new URL(target);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  let dropped = 0;

  const pipeClientToServer = async (from: Deno.Conn, to: Deno.Conn) => {
    const buf = new Uint8Array(64 * 1024);
    for (;;) {
      const n = await from.read(buf);
      if (n === null) break;
      await writeAll(to, buf.subarray(0, n));
    }
  };

  const pipeServerToClient = async (from: Deno.Conn, to: Deno.Conn) => {
    const buf = new Uint8Array(64 * 1024);
    let pending: Uint8Array = new Uint8Array(0);
    for (;;) {
      const n = await from.read(buf);
      if (n === null) break;
      pending = concat(pending, buf.subarray(0, n));
      let at = 0;
      const out: Uint8Array[] = [];
      while (pending.length - at >= 5) {
        const len = new DataView(pending.buffer, pending.byteOffset + at + 1, 4).getInt32(0);
        if (pending.length - at < 1 + len) break;
        const frame = pending.subarray(at, at + 1 + len);
        if (frame[0] === 0x41 /* 'A' NotificationResponse */) dropped++;
        else out.push(frame);
        at += 1 + len;
      }
      pending = pending.slice(at);
      for (const frame of out) await writeAll(to, frame);
    }
  };

  (async () => {
    for await (const client of listener) {
      conns.add(client);
      (async () => {
        let server: Deno.Conn | null = null;
        try {
          server = await Deno.connect({ hostname: t.hostname, port: Number(t.port || 5432) });
          conns.add(server);
          await Promise.race([pipeClientToServer(client, server), pipeServerToClient(server, client)]);
        } catch {
          /* either side went away */
        } finally {
          for (const c of [client, server]) {
            if (!c) continue;
            conns.delete(c);
            try {
              c.close();
            } catch { /* already closed */ }
          }
        }
      })();
    }
  })().catch(() => {});

  const port = (listener.addr as Deno.NetAddr).port;
  return {
    port,
    urlFor(url: string) {
      const u = new URL(url);
      u.hostname = "127.0.0.1";
      u.port = String(port);
      return u.toString();
    },
    get dropped() {
      return dropped;
    },
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
      await Promise.resolve();
    },
  };
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  let off = 0;
  while (off < data.length) off += await conn.write(data.subarray(off));
}
