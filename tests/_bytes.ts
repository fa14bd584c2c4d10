// Byte helpers for the tests that speak raw protocols over sockets.

/** `a` followed by `b`, as a new array. */
export function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Where `seq` first occurs in `b`, or -1. */
export function indexOf(b: Uint8Array, seq: readonly number[]): number {
  outer: for (let i = 0; i + seq.length <= b.length; i++) {
    for (let k = 0; k < seq.length; k++) if (b[i + k] !== seq[k]) continue outer;
    return i;
  }
  return -1;
}

/**
 * Opens a TCP connection to `port` and sends a raw WebSocket upgrade request for `path` (with
 * `headers`, e.g. an Authorization line); reads up to the end of the response head. Returns the
 * status line ("closed" when the server closed first) and what came after the head (a frame).
 */
export async function rawUpgrade(
  port: number,
  path: string,
  headers = "",
): Promise<{ status: string; conn: Deno.Conn; rest: Uint8Array }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  await conn.write(new TextEncoder().encode(
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n${headers}` +
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
  ));
  let got: Uint8Array = new Uint8Array(0);
  const buf = new Uint8Array(4096);
  for (;;) {
    const end = indexOf(got, [13, 10, 13, 10]);
    if (end >= 0) {
      const status = new TextDecoder().decode(got.subarray(0, end)).split("\r\n")[0];
      return { status, conn, rest: got.subarray(end + 4) };
    }
    const n = await conn.read(buf);
    if (n === null) return { status: "closed", conn, rest: new Uint8Array(0) };
    got = concat(got, buf.subarray(0, n));
  }
}
