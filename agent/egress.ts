/**
 * Egress policy: where the browser may connect. Under the strict policy (a daemon's default)
 * the browser reaches the network only through this agent's proxy, which resolves every host
 * itself, refuses loopback, link-local, private (RFC 1918), CGNAT, unique-local, multicast and
 * cloud-metadata addresses unless the operator allowed them, and connects to the very address
 * it checked (so a second DNS answer cannot differ). Redirects, subresources, fetch/XHR and
 * WebSockets are each a new request through the proxy, so each is checked. WebRTC: the browser
 * gets `--force-webrtc-ip-handling-policy=disable_non_proxied_udp` (no UDP at all; ICE over TCP
 * goes through the proxy), and the page hooks report ICE candidates and servers aimed at
 * blocked addresses.
 */
import { isIP } from "node:net";
import { lookup } from "node:dns/promises";

/** One operator allowance: a CIDR, a host (any port), a host:port, or an http URL prefix. */
export type Allowance =
  | { kind: "cidr"; family: 4 | 6; bits: bigint; prefix: number; text: string }
  | { kind: "host"; host: string; port: number | null; path: string | null; text: string };

/** The strict policy's inputs: the operator's allowances and, for tests, a resolver. */
export interface EgressPolicy {
  allow: Allowance[];
  /** Host → addresses; defaults to the system resolver (getaddrinfo, /etc/hosts included). */
  resolve?: (host: string) => Promise<string[]>;
}

/** Chromium flags of the strict policy (besides the proxy, which each browser context gets). */
export const STRICT_CHROMIUM_FLAGS = [
  "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
  "--webrtc-ip-handling-policy=disable_non_proxied_udp",
];

function v4(ip: string): bigint {
  return ip.split(".").reduce((a, o) => (a << 8n) | BigInt(Number(o)), 0n);
}

function v6(ip: string): bigint {
  let s = ip.toLowerCase();
  const zone = s.indexOf("%");
  if (zone >= 0) s = s.slice(0, zone);
  // An embedded IPv4 tail (::ffff:1.2.3.4) becomes two hex groups.
  const tail = s.match(/(\d+\.\d+\.\d+\.\d+)$/);
  if (tail) {
    const n = v4(tail[1]);
    s = s.slice(0, -tail[1].length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head, rest] = s.split("::");
  const h = head ? head.split(":") : [];
  const r = rest !== undefined ? (rest ? rest.split(":") : []) : [];
  const groups = rest !== undefined ? [...h, ...Array(8 - h.length - r.length).fill("0"), ...r] : h;
  return groups.reduce((a, g) => (a << 16n) | BigInt(parseInt(g || "0", 16)), 0n);
}

type Cidr = Extract<Allowance, { kind: "cidr" }>;

function cidr(text: string): Cidr {
  const [addr, len] = text.split("/");
  const family = isIP(addr);
  if (family === 0) throw new Error(`not a CIDR: ${text}`);
  const max = family === 4 ? 32 : 128;
  const prefix = len === undefined ? max : Number(len);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) throw new Error(`bad prefix length: ${text}`);
  return { kind: "cidr", family: family as 4 | 6, bits: family === 4 ? v4(addr) : v6(addr), prefix, text };
}

function inCidr(ip: string, c: { family: 4 | 6; bits: bigint; prefix: number }): boolean {
  const family = isIP(ip);
  if (family !== c.family) return false;
  const width = BigInt(family === 4 ? 32 : 128);
  const shift = width - BigInt(c.prefix);
  const n = family === 4 ? v4(ip) : v6(ip);
  return (n >> shift) === (c.bits >> shift);
}

const BLOCKED_V4: [string, string][] = [
  ["0.0.0.0/8", "this network"],
  ["10.0.0.0/8", "private"],
  ["100.64.0.0/10", "carrier-grade NAT"],
  ["127.0.0.0/8", "loopback"],
  ["169.254.0.0/16", "link-local (cloud metadata)"],
  ["172.16.0.0/12", "private"],
  ["192.0.0.0/24", "IETF protocol assignments"],
  ["192.168.0.0/16", "private"],
  ["198.18.0.0/15", "benchmarking"],
  ["224.0.0.0/4", "multicast"],
  ["240.0.0.0/4", "reserved"],
];
const BLOCKED_V6: [string, string][] = [
  ["::/128", "unspecified"],
  ["::1/128", "loopback"],
  ["fe80::/10", "link-local"],
  ["fc00::/7", "unique-local (cloud metadata)"],
  ["ff00::/8", "multicast"],
];
const RANGES = [...BLOCKED_V4, ...BLOCKED_V6].map(([c, why]) => ({ ...cidr(c), why }));
/** The refused IPv4 ranges as CIDR text, for relays that enforce the same rules (network_turn.ts). */
export const BLOCKED_RANGES_V4: readonly string[] = BLOCKED_V4.map(([c]) => c);

/** Why `ip` is not a public destination (loopback, private, …), or null when it is public. */
export function nonPublic(ip: string): string | null {
  if (isIP(ip) === 6) {
    const n = v6(ip);
    // IPv4-mapped (::ffff:a.b.c.d), NAT64 (64:ff9b::a.b.c.d) and 6to4 (2002:AABB:CCDD::) carry
    // an IPv4 address that would be reached in the end.
    const embedded = (n >> 32n) === 0xffffn || (n >> 32n) === 0x64ff9b0000000000000000n
      ? n & 0xffffffffn
      : (n >> 112n) === 0x2002n
      ? (n >> 80n) & 0xffffffffn
      : null;
    if (embedded !== null) {
      const dotted = [24n, 16n, 8n, 0n].map((s) => Number((embedded >> s) & 255n)).join(".");
      return nonPublic(dotted);
    }
  }
  for (const r of RANGES) if (inCidr(ip, r)) return r.why;
  return null;
}

/**
 * Parses the operator's allow list: comma- or space-separated CIDRs (`10.1.0.0/16`), IP
 * addresses, hosts (`api.example.com`), `host:port`, or `http(s)://host:port/path/` prefixes
 * (plain-http requests must then fall under the path; https is allowed per origin).
 */
export function parseAllowList(text: string | undefined): Allowance[] {
  const out: Allowance[] = [];
  for (const raw of (text ?? "").split(/[\s,]+/).filter(Boolean)) {
    if (isIP(raw.split("/")[0]) && !raw.includes("://")) {
      out.push(cidr(raw));
      continue;
    }
    if (raw.includes("://")) {
      const u = new URL(raw);
      if (!/^https?:$/.test(u.protocol)) throw new Error(`allow: only http(s) URLs: ${raw}`);
      out.push({
        kind: "host",
        host: u.hostname.replace(/^\[|\]$/g, "").toLowerCase(),
        port: Number(u.port || (u.protocol === "https:" ? 443 : 80)),
        path: u.pathname === "/" ? null : u.pathname,
        text: raw,
      });
      continue;
    }
    const m = raw.match(/^([A-Za-z0-9.-]+|\[[0-9a-fA-F:.]+\])(?::(\d{1,5}))?$/);
    if (!m) throw new Error(`allow: not a host, host:port, CIDR or URL: ${raw}`);
    out.push({
      kind: "host",
      host: m[1].replace(/^\[|\]$/g, "").toLowerCase(),
      port: m[2] ? Number(m[2]) : null,
      path: null,
      text: raw,
    });
  }
  return out;
}

/** Thrown (and recorded) when a destination is refused; the message names the host. */
export class BlockedDestination extends Error {
  constructor(
    readonly host: string,
    readonly reason: string,
    /**
     * Refused without counting as a blocked destination: an allowed host asked for a path outside
     * its allowance, or a name that does not resolve (Chromium's own background requests on a
     * host without DNS, a typo) — nothing was reached, and the page load fails on its own.
     */
    readonly uncounted = false,
  ) {
    super(`blocked destination ${host} (${reason})`);
  }
}

async function systemResolve(host: string): Promise<string[]> {
  const all = await lookup(host, { all: true, verbatim: true });
  return all.map((a) => a.address);
}

/**
 * Checks host:port (and for plain http the path) against `policy`; returns the address to
 * connect to, or throws BlockedDestination. Every address the name resolves to must be
 * public (or allowed), so a rebinding answer list cannot smuggle one through.
 */
export async function checkDestination(
  policy: EgressPolicy,
  host: string,
  port: number,
  path: string | null = null,
): Promise<string> {
  host = host.replace(/^\[|\]$/g, "").toLowerCase().replace(/\.$/, "");
  const named = policy.allow.filter((a): a is Extract<Allowance, { kind: "host" }> =>
    a.kind === "host" && a.host === host && (a.port === null || a.port === port)
  );
  const allowedByName = named.some((a) => a.path === null || (path !== null && path.startsWith(a.path)));
  if (named.length > 0 && !allowedByName) {
    throw new BlockedDestination(host, `only ${named.map((a) => a.path).join(", ")} is allowed`, true);
  }
  let addresses: string[];
  if (isIP(host)) addresses = [host];
  else {
    try {
      addresses = await (policy.resolve ?? systemResolve)(host);
    } catch (err) {
      throw new BlockedDestination(host, `cannot resolve: ${(err as Error).message}`, true);
    }
    if (addresses.length === 0) throw new BlockedDestination(host, "no address", true);
  }
  if (allowedByName) return addresses[0];
  for (const ip of addresses) {
    const why = nonPublic(ip);
    if (!why) continue;
    if (policy.allow.some((a) => a.kind === "cidr" && inCidr(ip, a))) continue;
    throw new BlockedDestination(host, ip === host ? why : `resolves to ${ip}, ${why}`);
  }
  return addresses[0];
}

/** A running egress proxy for one browser context: its URL, what it refused, and close. */
export interface EgressProxy {
  /** `http://127.0.0.1:<port>` for Chromium's proxy setting. */
  url: string;
  /** Destinations refused so far, first first. */
  blocked: BlockedDestination[];
  /** Adds an allowance while running (the html server of the run, once it listens). */
  allow(a: Allowance): void;
  close(): Promise<void>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

async function readHead(conn: Deno.Conn): Promise<{ head: string; rest: Uint8Array } | null> {
  let buf = new Uint8Array(0);
  const chunk = new Uint8Array(16384);
  while (buf.length < 65536) {
    const n = await conn.read(chunk);
    if (n === null) return null;
    const next = new Uint8Array(buf.length + n);
    next.set(buf);
    next.set(chunk.subarray(0, n), buf.length);
    buf = next;
    for (let i = Math.max(0, buf.length - n - 3); i + 3 < buf.length; i++) {
      if (buf[i] === 13 && buf[i + 1] === 10 && buf[i + 2] === 13 && buf[i + 3] === 10) {
        return { head: dec.decode(buf.subarray(0, i + 4)), rest: buf.subarray(i + 4) };
      }
    }
  }
  return null;
}

async function pipe(from: Deno.Conn, to: Deno.Conn) {
  try {
    await from.readable.pipeTo(to.writable, { preventClose: false });
  } catch { /* either side closed */ }
}

/**
 * Starts a proxy on `hostname` (127.0.0.1 by default) that forwards CONNECT tunnels (https, ws, wss) and plain
 * http requests only to destinations `policy` allows, and answers 403 otherwise.
 */
export function startEgressProxy(policy: EgressPolicy, hostname = "127.0.0.1"): EgressProxy {
  const listener = Deno.listen({ hostname, port: 0 });
  const blocked: BlockedDestination[] = [];
  const conns = new Set<Deno.Conn>();
  const allow = [...policy.allow];
  const live: EgressPolicy = { allow, resolve: policy.resolve };
  const refuse = async (conn: Deno.Conn, err: BlockedDestination) => {
    if (!err.uncounted && blocked.length < 100) blocked.push(err);
    const body = err.message + "\n";
    await conn.write(enc.encode(
      `HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: ${
        enc.encode(body).length
      }\r\nconnection: close\r\n\r\n${body}`,
    )).catch(() => {});
    conn.close();
  };
  const handle = async (conn: Deno.Conn) => {
    conns.add(conn);
    let upstream: Deno.Conn | null = null;
    try {
      const req = await readHead(conn);
      if (!req) return conn.close();
      const [line, ...headers] = req.head.split("\r\n");
      const [method, target, version] = line.split(" ");
      if (method === "CONNECT") {
        const m = target.match(/^(\[[^\]]+\]|[^:]+):(\d+)$/);
        if (!m) return conn.close();
        let ip: string;
        try {
          ip = await checkDestination(live, m[1], Number(m[2]));
        } catch (err) {
          if (err instanceof BlockedDestination) return await refuse(conn, err);
          throw err;
        }
        upstream = await Deno.connect({ hostname: ip, port: Number(m[2]) });
        conns.add(upstream);
        await conn.write(enc.encode("HTTP/1.1 200 Connection Established\r\n\r\n"));
        if (req.rest.length) await upstream.write(req.rest);
      } else {
        let u: URL;
        try {
          u = new URL(target);
        } catch {
          return conn.close();
        }
        if (u.protocol !== "http:") return conn.close();
        const port = Number(u.port || 80);
        let ip: string;
        try {
          ip = await checkDestination(live, u.hostname, port, u.pathname);
        } catch (err) {
          if (err instanceof BlockedDestination) return await refuse(conn, err);
          throw err;
        }
        upstream = await Deno.connect({ hostname: ip, port });
        conns.add(upstream);
        // One request per connection: the next one on this socket could name another host.
        const kept = headers.filter((h) => h && !/^(proxy-connection|connection|keep-alive):/i.test(h));
        await upstream.write(enc.encode(
          `${method} ${u.pathname}${u.search} ${version}\r\n${
            kept.join("\r\n")
          }\r\nconnection: close\r\n\r\n`,
        ));
        if (req.rest.length) await upstream.write(req.rest);
      }
      await Promise.all([pipe(conn, upstream), pipe(upstream, conn)]);
    } catch {
      try {
        conn.close();
      } catch { /* closed */ }
    } finally {
      conns.delete(conn);
      if (upstream) conns.delete(upstream);
    }
  };
  const serving = (async () => {
    try {
      for await (const conn of listener) handle(conn);
    } catch { /* listener closed */ }
  })();
  return {
    url: `http://${hostname}:${(listener.addr as Deno.NetAddr).port}`,
    blocked,
    allow: (a) => allow.push(a),
    async close() {
      try {
        listener.close();
      } catch { /* closed */ }
      for (const c of conns) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      await serving;
    },
  };
}
