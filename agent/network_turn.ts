/**
 * A TURN server (coturn's `turnserver`, a Debian package) the agent starts for impaired runs:
 * the page hooks force every RTCPeerConnection through it (`iceTransportPolicy: "relay"`), and the
 * browser reaches it through the UDP delay line (`network_relay.ts`), so WebRTC media crosses the
 * impaired path. It listens on loopback only, with a fresh user and password per start.
 *
 * Peers: under the open egress policy the browser may reach everything anyway, so loopback peers
 * are allowed (a page's two peer connections can meet through it). Under the strict policy it
 * refuses every address the egress proxy refuses (`BLOCKED_RANGES_V4`), loopback included, except
 * the operator's CIDR allowances, and relays no TCP: it opens no path the policy closes.
 */
import dgram from "node:dgram";
import { withAgentLife } from "./die_with_agent.ts";
import type { EgressPolicy } from "./egress.ts";
import { BLOCKED_RANGES_V4 } from "./egress.ts";

/** A running TURN server. */
export interface TurnServer {
  host: string;
  /** Its listening port (UDP and TCP). */
  port: number;
  username: string;
  credential: string;
  close(): Promise<void>;
}

/** Where `turnserver` is, or null when coturn is not installed. */
export async function findTurnServer(): Promise<string | null> {
  const path = Deno.env.get("VOX_TURNSERVER_PATH");
  for (const p of [path, "/usr/bin/turnserver", "/usr/local/bin/turnserver"]) {
    if (!p) continue;
    try {
      if ((await Deno.stat(p)).isFile) return p;
    } catch { /* not there */ }
  }
  return null;
}

/**
 * The address this host sends from toward the Internet (its default route's source; a UDP
 * socket's connect sends nothing), or 127.0.0.1 when there is no route. TURN allocations are
 * relayed from it: a socket bound to 127.0.0.1 reaches loopback peers only. VOX_TURN_RELAY_IP
 * sets it.
 */
export async function outboundAddress(): Promise<string> {
  const forced = Deno.env.get("VOX_TURN_RELAY_IP");
  if (forced) return forced;
  const sock = dgram.createSocket("udp4");
  try {
    return await new Promise<string>((resolve) => {
      sock.once("error", () => resolve("127.0.0.1"));
      sock.connect(9, "192.0.2.1", () => {
        try {
          resolve(sock.address().address);
        } catch {
          resolve("127.0.0.1");
        }
      });
    });
  } finally {
    try {
      sock.close();
    } catch { /* closed */ }
  }
}

/** `a.b.c.d/n` as coturn's `first-last` range. */
function cidrRange(text: string): string | null {
  const [addr, len] = text.split("/");
  const parts = addr.split(".").map(Number);
  if (parts.length !== 4) return null;
  const n = parts.reduce((a, o) => a * 256 + o, 0);
  const size = 2 ** (32 - Number(len ?? 32));
  const first = Math.floor(n / size) * size;
  const dotted = (x: number) => [24, 16, 8, 0].map((s) => Math.floor(x / 2 ** s) % 256).join(".");
  return `${dotted(first)}-${dotted(first + size - 1)}`;
}

/** A STUN binding request answered: the server is up. */
async function answers(port: number): Promise<boolean> {
  const sock = dgram.createSocket("udp4");
  try {
    await new Promise<void>((r) => sock.bind(0, "127.0.0.1", () => r()));
    const req = Buffer.alloc(20);
    req.writeUInt16BE(0x0001, 0);
    req.writeUInt32BE(0x2112a442, 4);
    crypto.getRandomValues(req.subarray(8, 20));
    return await new Promise<boolean>((resolve) => {
      const t = setTimeout(() => resolve(false), 300);
      sock.once("message", () => {
        clearTimeout(t);
        resolve(true);
      });
      sock.send(req, port, "127.0.0.1");
    });
  } finally {
    sock.close();
  }
}

/** Starts coturn on loopback; `strict` applies the egress policy's address rules to peers. */
export async function startTurnServer(
  opts: { strict?: EgressPolicy; path?: string } = {},
): Promise<TurnServer> {
  const bin = opts.path ?? await findTurnServer();
  if (!bin) throw new Error("coturn's turnserver is not installed");
  const dir = await Deno.makeTempDir({ prefix: "vox-turn-" });
  const username = "vox";
  const relayIp = await outboundAddress();
  const credential = crypto.randomUUID().replaceAll("-", "");
  let lastErr = "";
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 9000) * 2;
    const minPort = 50000 + Math.floor(Math.random() * 150) * 100;
    const args = [
      "-n",
      "--no-cli",
      "--no-tls",
      "--no-dtls",
      "--listening-ip=127.0.0.1",
      `--listening-port=${port}`,
      `--relay-ip=${relayIp}`,
      `--min-port=${minPort}`,
      `--max-port=${minPort + 99}`,
      "--lt-cred-mech",
      "--fingerprint",
      `--user=${username}:${credential}`,
      "--realm=vox.invalid",
      `--userdb=${dir}/turndb`,
      `--pidfile=${dir}/turnserver.pid`,
      "--log-file=stdout",
      "--simple-log",
      "--no-multicast-peers",
    ];
    if (opts.strict) {
      args.push("--no-tcp-relay");
      // The relay address is IPv4, so its allocations reach IPv4 peers only.
      for (const r of BLOCKED_RANGES_V4) {
        const range = cidrRange(r);
        if (range) args.push(`--denied-peer-ip=${range}`);
      }
      for (const a of opts.strict.allow) {
        if (a.kind !== "cidr" || a.family !== 4) continue;
        const range = cidrRange(a.text);
        if (range) args.push(`--allowed-peer-ip=${range}`);
      }
    } else {
      args.push("--allow-loopback-peers");
    }
    const life = withAgentLife(bin, args);
    const child = new Deno.Command(life.cmd, {
      args: life.args,
      stdout: "piped",
      stderr: "piped",
      stdin: "null",
    }).spawn();
    let exited = false;
    const status = child.status.then((s) => {
      exited = true;
      return s;
    });
    const out = (async () => {
      const chunks: string[] = [];
      const dec = new TextDecoder();
      for await (const c of child.stdout) if (chunks.length < 200) chunks.push(dec.decode(c));
      return chunks.join("");
    })();
    child.stderr.cancel().catch(() => {});
    const deadline = Date.now() + 8000;
    while (!exited && Date.now() < deadline) {
      if (await answers(port)) {
        return {
          host: "127.0.0.1",
          port,
          username,
          credential,
          async close() {
            try {
              child.kill("SIGTERM");
            } catch { /* gone */ }
            // coturn may take its time over SIGTERM; it gets 3 s.
            const kill = setTimeout(() => {
              try {
                child.kill("SIGKILL");
              } catch { /* gone */ }
            }, 3000);
            await status;
            clearTimeout(kill);
            await out.catch(() => "");
            await Deno.remove(dir, { recursive: true }).catch(() => {});
          },
        };
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    try {
      child.kill("SIGKILL");
    } catch { /* gone */ }
    await status;
    lastErr = (await out.catch(() => "")).split("\n").filter((l) => /error|cannot|fail/i.test(l)).slice(-3)
      .join("; ");
  }
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  throw new Error(`coturn did not start${lastErr ? `: ${lastErr}` : ""}`);
}
