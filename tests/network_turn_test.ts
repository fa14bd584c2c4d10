// The TURN server WebRTC is forced through under a network profile (method relay) opens no path
// around the egress policy: a TURN client (written here, RFC 5766 over UDP) that allocates on the
// strict server and asks for a permission to a loopback or private peer is refused with 403,
// and a datagram it sends toward a canary on loopback never arrives; the open server (the open
// policy, where the browser reaches loopback anyway) lets it through, so the canary can tell.
import assert from "node:assert/strict";
import { createHash, createHmac } from "node:crypto";
import dgram from "node:dgram";
import { parseAllowList } from "../agent/egress.ts";
import { startTurnServer, type TurnServer } from "../agent/network_turn.ts";

const COOKIE = 0x2112a442;

function attr(type: number, value: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + Math.ceil(value.length / 4) * 4);
  const v = new DataView(out.buffer);
  v.setUint16(0, type);
  v.setUint16(2, value.length);
  out.set(value, 4);
  return out;
}

function xorPeer(ip: string, port: number): Uint8Array {
  const b = new Uint8Array(8);
  const v = new DataView(b.buffer);
  v.setUint8(1, 0x01);
  v.setUint16(2, port ^ (COOKIE >>> 16));
  const n = ip.split(".").reduce((a, o) => a * 256 + Number(o), 0);
  v.setUint32(4, (n ^ COOKIE) >>> 0);
  return b;
}

/** A STUN message; with `key`, MESSAGE-INTEGRITY over it (RFC 5389 §15.4). */
function message(type: number, attrs: Uint8Array[], key?: Buffer): Buffer {
  const txid = crypto.getRandomValues(new Uint8Array(12));
  const body = Buffer.concat(attrs);
  const head = Buffer.alloc(20);
  head.writeUInt16BE(type, 0);
  head.writeUInt32BE(COOKIE, 4);
  head.set(txid, 8);
  if (!key) {
    head.writeUInt16BE(body.length, 2);
    return Buffer.concat([head, body]);
  }
  head.writeUInt16BE(body.length + 24, 2);
  const mac = createHmac("sha1", key).update(Buffer.concat([head, body])).digest();
  return Buffer.concat([head, body, Buffer.from(attr(0x0008, mac))]);
}

function attrsOf(msg: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  let i = 20;
  while (i + 4 <= msg.length) {
    const t = msg.readUInt16BE(i);
    const l = msg.readUInt16BE(i + 2);
    out.set(t, msg.subarray(i + 4, i + 4 + l));
    i += 4 + Math.ceil(l / 4) * 4;
  }
  return out;
}

/** A TURN client allocated on `turn`; `permit(ip)` answers the CreatePermission's status. */
async function turnClient(turn: TurnServer) {
  const sock = dgram.createSocket("udp4");
  await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
  const ask = (m: Buffer) =>
    new Promise<Buffer>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error("no answer from the TURN server")), 3000);
      sock.once("message", (reply) => {
        clearTimeout(t);
        resolve(reply);
      });
      sock.send(m, turn.port, turn.host);
    });
  const transport = attr(0x0019, new Uint8Array([17, 0, 0, 0]));
  const first = attrsOf(await ask(message(0x0003, [transport])));
  const realm = first.get(0x0014)!;
  const nonce = first.get(0x0015)!;
  const key = createHash("md5").update(`${turn.username}:${realm}:${turn.credential}`).digest();
  const auth = () => [
    attr(0x0006, new TextEncoder().encode(turn.username)),
    attr(0x0014, realm),
    attr(0x0015, nonce),
  ];
  const allocated = await ask(message(0x0003, [transport, ...auth()], key));
  assert.equal(allocated.readUInt16BE(0), 0x0103, "the allocation succeeds");
  return {
    async permit(ip: string): Promise<number> {
      const reply = await ask(message(0x0008, [attr(0x0012, xorPeer(ip, 9)), ...auth()], key));
      if (reply.readUInt16BE(0) === 0x0108) return 200;
      const code = attrsOf(reply).get(0x0009)!;
      return code[2] * 100 + code[3];
    },
    send(ip: string, port: number, data: string) {
      sock.send(
        message(0x0016, [attr(0x0012, xorPeer(ip, port)), attr(0x0013, new TextEncoder().encode(data))]),
        turn.port,
        turn.host,
      );
    },
    close: () => sock.close(),
  };
}

const canary = dgram.createSocket("udp4");
let hits = 0;
canary.on("message", () => hits++);
await new Promise<void>((r) => canary.bind(0, "127.0.0.1", () => r()));
const CANARY = canary.address().port;
Deno.test.afterAll(() => {
  canary.close();
});

Deno.test("strict: coturn refuses loopback, private and metadata peers; a datagram toward the canary never arrives", async () => {
  const turn = await startTurnServer({ strict: { allow: [] } });
  const client = await turnClient(turn);
  try {
    for (
      const ip of ["127.0.0.1", "10.1.2.3", "192.168.1.1", "172.20.0.1", "169.254.169.254", "100.64.0.1"]
    ) {
      assert.equal(await client.permit(ip), 403, `a permission to ${ip} is refused`);
    }
    assert.equal(await client.permit("93.184.216.34"), 200, "a public peer is allowed");
    const before = hits;
    client.send("127.0.0.1", CANARY, "through the relay");
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(hits, before, "the canary saw nothing");
  } finally {
    client.close();
    await turn.close();
  }
});

Deno.test("strict: the operator's CIDR allowance lets exactly that range through", async () => {
  const turn = await startTurnServer({ strict: { allow: parseAllowList("10.20.0.0/16") } });
  const client = await turnClient(turn);
  try {
    assert.equal(await client.permit("10.20.3.4"), 200);
    assert.equal(await client.permit("10.21.3.4"), 403);
    assert.equal(await client.permit("127.0.0.1"), 403);
  } finally {
    client.close();
    await turn.close();
  }
});

Deno.test("open: the same client reaches the canary through coturn (so the canary can tell)", async () => {
  const turn = await startTurnServer();
  const client = await turnClient(turn);
  try {
    assert.equal(await client.permit("127.0.0.1"), 200);
    const before = hits;
    client.send("127.0.0.1", CANARY, "through the relay");
    const deadline = Date.now() + 3000;
    while (hits === before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.ok(hits > before, "the canary received the datagram");
  } finally {
    client.close();
    await turn.close();
  }
});
