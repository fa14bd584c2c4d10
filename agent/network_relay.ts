/**
 * Network impairment in user space (method `relay`): a delay line per direction that holds
 * each packet for the profile's delay plus normally distributed jitter, drops it with the
 * profile's loss probability, and serialises it at the profile's rate — the same model as
 * `tc netem delay D J distribution normal loss P rate R`, without any kernel module.
 *
 * Two relays carry the browser's traffic through it (`network_resilience.ts`):
 * - a TCP relay in front of the run's HTTP proxy (page loads, fetch, WebSockets, TURN over TCP):
 *   order is kept, a lost segment is delivered after a retransmission timeout instead of being
 *   dropped, and the first bytes of a connection wait one extra round trip (the handshake the
 *   relay accepts locally);
 * - a UDP relay in front of a TURN server (WebRTC media, which the page hooks force through
 *   TURN with `iceTransportPolicy: "relay"`): datagrams are dropped, delayed and may be
 *   reordered by jitter, as netem does.
 *
 * Uplink is the browser's traffic towards the network, downlink what comes back to it.
 */
import dgram from "node:dgram";
import type { NetworkProfile } from "./format.ts";

/** One direction's impairment. */
export interface LinkImpairment {
  delay_ms: number;
  jitter_ms: number;
  loss_pct: number;
  /** Bottleneck rate; 0 or absent is unlimited. */
  rate_kbit: number;
}

/** Both directions of a profile, presets and per-direction overrides resolved. */
export interface ResolvedProfile {
  name: string;
  up: LinkImpairment;
  down: LinkImpairment;
}

/** A standard normal deviate (Box–Muller). */
function gauss(random: () => number): number {
  const u = 1 - random();
  const v = random();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/**
 * The delay line of one direction: `schedule(bytes)` returns after how many ms a packet of that
 * size is delivered, or null when it is lost. `ordered` keeps delivery order (TCP).
 */
export class DelayLine {
  #busyUntil = 0;
  #lastDelivery = 0;
  constructor(
    readonly link: LinkImpairment,
    readonly ordered: boolean,
    readonly random: () => number = Math.random,
  ) {}

  /**
   * Wall-clock ms (performance.now()) at which a packet sent now is delivered; null when lost.
   * An ordered line (TCP) never loses: a chunk of `segments` segments any of which the profile
   * loses is delivered `lossAsDelayMs` later (a retransmission), and `lost` says so.
   */
  deliveryTime(
    bytes: number,
    now = performance.now(),
    lossAsDelayMs = 0,
    segments = 1,
  ): { at: number; lost: boolean } | null {
    const l = this.link;
    let extra = 0;
    const lost = l.loss_pct > 0 && this.random() < 1 - Math.pow(1 - l.loss_pct / 100, segments);
    if (lost) {
      if (!this.ordered) return null;
      extra = lossAsDelayMs;
    }
    // Serialisation at the bottleneck: a packet leaves when the ones before it have.
    let leave = now;
    if (l.rate_kbit > 0) {
      leave = Math.max(now, this.#busyUntil) + (bytes * 8) / l.rate_kbit;
      this.#busyUntil = leave;
    }
    const delay = Math.max(0, l.delay_ms + (l.jitter_ms > 0 ? l.jitter_ms * gauss(this.random) : 0));
    let at = leave + delay + extra;
    if (this.ordered) at = Math.max(at, this.#lastDelivery);
    this.#lastDelivery = Math.max(this.#lastDelivery, at);
    return { at, lost };
  }

  /** Runs `deliver` when the packet arrives; returns false when it was lost. */
  send(bytes: number, deliver: () => void, lossAsDelayMs = 0): boolean {
    const now = performance.now();
    const d = this.deliveryTime(bytes, now, lossAsDelayMs);
    if (d === null) return false;
    const wait = d.at - now;
    if (wait <= 0.5) queueMicrotask(deliver);
    else setTimeout(deliver, wait);
    return true;
  }
}

/** A running relay: where to send to, what it forwarded, and close. */
export interface Relay {
  hostname: string;
  port: number;
  stats: { up: number; down: number; lostUp: number; lostDown: number };
  close(): Promise<void>;
}

/**
 * A UDP relay on `listen` (port 0: any free one) forwarding to `target`: one upstream socket per
 * client address, so the target sees a distinct source per client, as through a NAT.
 */
export async function startUdpRelay(
  target: { hostname: string; port: number },
  profile: ResolvedProfile,
  listen: { hostname: string; port?: number } = { hostname: "127.0.0.1" },
  random: () => number = Math.random,
): Promise<Relay> {
  const up = new DelayLine(profile.up, false, random);
  const down = new DelayLine(profile.down, false, random);
  const stats = { up: 0, down: 0, lostUp: 0, lostDown: 0 };
  const front = dgram.createSocket("udp4");
  const clients = new Map<string, dgram.Socket>();
  let closed = false;
  await new Promise<void>((resolve, reject) => {
    front.once("error", reject);
    front.bind(listen.port ?? 0, listen.hostname, () => resolve());
  });
  front.on("error", () => {});
  front.on("message", (msg, rinfo) => {
    if (closed) return;
    const key = `${rinfo.address}:${rinfo.port}`;
    let back = clients.get(key);
    if (!back) {
      if (clients.size >= 256) return;
      const sock = dgram.createSocket("udp4");
      back = sock;
      clients.set(key, sock);
      sock.on("error", () => {});
      sock.on("message", (reply) => {
        if (closed) return;
        stats.down++;
        if (!down.send(reply.length, () => !closed && front.send(reply, rinfo.port, rinfo.address))) {
          stats.lostDown++;
        }
      });
      sock.bind(0, target.hostname === "127.0.0.1" ? "127.0.0.1" : undefined);
    }
    const sock = back;
    stats.up++;
    if (!up.send(msg.length, () => !closed && sock.send(msg, target.port, target.hostname))) stats.lostUp++;
  });
  const addr = front.address();
  return {
    hostname: addr.address,
    port: addr.port,
    stats,
    close() {
      closed = true;
      for (const s of [front, ...clients.values()]) {
        try {
          s.close();
        } catch { /* closed */ }
      }
      return Promise.resolve();
    },
  };
}

/**
 * A TCP relay on `listen` forwarding each connection to `target` through the profile's delay
 * lines (one pair per connection, so connections do not share a bottleneck queue).
 */
export function startTcpRelay(
  target: { hostname: string; port: number },
  profile: ResolvedProfile,
  listen: { hostname: string; port?: number } = { hostname: "127.0.0.1" },
  random: () => number = Math.random,
): Relay {
  const listener = Deno.listen({ hostname: listen.hostname, port: listen.port ?? 0 });
  const stats = { up: 0, down: 0, lostUp: 0, lostDown: 0 };
  const conns = new Set<Deno.Conn>();
  const rtt = profile.up.delay_ms + profile.down.delay_ms;
  // A lost segment comes again after a retransmission timeout (Linux's floor is 200 ms).
  const rto = Math.max(200, 2 * rtt);
  const pump = async (
    from: Deno.Conn,
    to: Deno.Conn,
    line: DelayLine,
    count: "up" | "down",
    firstExtraMs: number,
  ) => {
    const writer = to.writable.getWriter();
    // Writes happen in delivery order; each waits for its own time and the one before.
    let chain: Promise<void> = Promise.resolve();
    let first = true;
    try {
      for await (const chunk of from.readable) {
        stats[count] += chunk.length;
        // A chunk of several segments is late when any of its segments is lost.
        const segments = Math.max(1, Math.ceil(chunk.length / 1448));
        const d = line.deliveryTime(chunk.length, performance.now(), rto, segments)!;
        const at = d.at + (first ? firstExtraMs : 0);
        if (d.lost) stats[count === "up" ? "lostUp" : "lostDown"]++;
        first = false;
        const prev = chain;
        chain = (async () => {
          await prev;
          const wait = at - performance.now();
          if (wait > 0.5) await new Promise((r) => setTimeout(r, wait));
          await writer.write(chunk);
        })();
        chain.catch(() => {});
      }
      await chain;
    } catch {
      /* either side closed */
    } finally {
      try {
        await writer.close();
      } catch { /* closed */ }
    }
  };
  const handle = async (conn: Deno.Conn) => {
    conns.add(conn);
    let upstream: Deno.Conn | null = null;
    try {
      upstream = await Deno.connect({ hostname: target.hostname, port: target.port });
      conns.add(upstream);
      const up = new DelayLine(profile.up, true, random);
      const down = new DelayLine(profile.down, true, random);
      // The handshake the relay accepted locally costs a round trip before the first bytes.
      await Promise.all([pump(conn, upstream, up, "up", rtt), pump(upstream, conn, down, "down", 0)]);
    } catch {
      /* refused or reset */
    } finally {
      for (const c of [conn, upstream]) {
        if (!c) continue;
        conns.delete(c);
        try {
          c.close();
        } catch { /* closed */ }
      }
    }
  };
  const serving = (async () => {
    try {
      for await (const conn of listener) handle(conn);
    } catch { /* listener closed */ }
  })();
  const addr = listener.addr as Deno.NetAddr;
  return {
    hostname: addr.hostname,
    port: addr.port,
    stats,
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

/** What a probe saw on the impaired path. */
export interface ProbeResult {
  sent: number;
  received: number;
  /** Round-trip loss, percent. */
  loss_pct: number;
  rtt_median_ms: number | null;
  /** Spread of the round-trip time as a standard deviation (IQR / 1.349, robust to stalls). */
  rtt_sd_ms: number | null;
}

/** What a probe should see on `profile`: round trip = uplink + downlink. */
export function expectedProbe(
  profile: ResolvedProfile,
): { rtt_ms: number; rtt_sd_ms: number; loss_pct: number } {
  return {
    rtt_ms: profile.up.delay_ms + profile.down.delay_ms,
    rtt_sd_ms: Math.sqrt(profile.up.jitter_ms ** 2 + profile.down.jitter_ms ** 2),
    loss_pct: 100 * (1 - (1 - profile.up.loss_pct / 100) * (1 - profile.down.loss_pct / 100)),
  };
}

function quantile(sorted: number[], q: number): number {
  const i = (sorted.length - 1) * q;
  const lo = Math.floor(i);
  return sorted[lo] + (sorted[Math.min(lo + 1, sorted.length - 1)] - sorted[lo]) * (i - lo);
}

/** Probe figures from round-trip times (exported for probes that measure elsewhere, e.g. a page). */
export function summarizeRtts(sent: number, rtts: number[]): ProbeResult {
  const sorted = [...rtts].sort((a, b) => a - b);
  const n = sorted.length;
  return {
    sent,
    received: n,
    loss_pct: sent ? (100 * (sent - n)) / sent : 0,
    rtt_median_ms: n ? (n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2) : null,
    // The spread as a standard deviation estimated from the interquartile range (IQR / 1.349, equal
    // for a normal distribution): robust to the few packets a stalled host holds far too long.
    rtt_sd_ms: n > 3 ? (quantile(sorted, 0.75) - quantile(sorted, 0.25)) / 1.349 : null,
  };
}

/**
 * Sends `count` numbered UDP datagrams every `intervalMs` to `to` (something that echoes them,
 * through whatever impairment lies between) and measures what comes back: round-trip median,
 * its standard deviation, and the share that never came back (waits `settleMs` after the last).
 */
export async function udpProbe(
  to: { hostname: string; port: number },
  opts: { count?: number; intervalMs?: number; settleMs?: number; bytes?: number } = {},
): Promise<ProbeResult> {
  const count = opts.count ?? 500;
  const sock = dgram.createSocket("udp4");
  await new Promise<void>((r) => sock.bind(0, "0.0.0.0", () => r()));
  const sentAt = new Map<number, number>();
  const rtts: number[] = [];
  sock.on("message", (msg) => {
    if (msg.length < 4) return;
    const seq = msg.readUInt32BE(0);
    const t = sentAt.get(seq);
    if (t === undefined) return;
    sentAt.delete(seq);
    rtts.push(performance.now() - t);
  });
  const payload = Buffer.alloc(Math.max(4, opts.bytes ?? 160));
  for (let i = 0; i < count; i++) {
    const p = Buffer.from(payload);
    p.writeUInt32BE(i, 0);
    sentAt.set(i, performance.now());
    sock.send(p, to.port, to.hostname);
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 10));
  }
  await new Promise((r) => setTimeout(r, opts.settleMs ?? 2000));
  sock.close();
  return summarizeRtts(count, rtts);
}

/** A UDP echo server (the far end of a probe). */
export async function udpEcho(hostname = "127.0.0.1"): Promise<{ port: number; close(): void }> {
  const sock = dgram.createSocket("udp4");
  await new Promise<void>((r) => sock.bind(0, hostname, () => r()));
  sock.on("message", (msg, rinfo) => sock.send(msg, rinfo.port, rinfo.address));
  return { port: sock.address().port, close: () => sock.close() };
}

/** Resolves a profile (preset by name, explicit fields, then `uplink`/`downlink` overrides). */
export function resolveProfile(
  profile: NetworkProfile,
  presets: Record<string, Omit<NetworkProfile, "name">>,
): ResolvedProfile {
  const p = { ...presets[profile.name], ...profile };
  const base: LinkImpairment = {
    delay_ms: p.delay_ms ?? 0,
    jitter_ms: p.jitter_ms ?? 0,
    loss_pct: p.loss_pct ?? 0,
    rate_kbit: p.rate_kbit ?? 0,
  };
  const preset = presets[profile.name] ?? {};
  const dir = (d: "uplink" | "downlink"): LinkImpairment => ({
    ...base,
    ...(preset[d] ?? {}),
    ...(profile[d] ?? {}),
  } as LinkImpairment);
  return { name: profile.name, up: dir("uplink"), down: dir("downlink") };
}
