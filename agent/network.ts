/**
 * Network impairment at the operating-system level: Chromium in its own network namespace
 * with `tc netem` on the link. Before any impaired run the agent probes whether this host
 * allows it; when it does not, network resilience is reported as null with the reason.
 */
import { withAgentLife } from "./die_with_agent.ts";
import type { NetworkProfile } from "./format.ts";
import { type ResolvedProfile, resolveProfile } from "./network_relay.ts";

/**
 * Named profiles a scenario may refer to with `network: [{ name: "3g" }]`. Values apply to both
 * directions unless `uplink` (from the caller's browser) or `downlink` (towards it) overrides
 * them; docs/agent.md lists them.
 */
export const NETWORK_PRESETS: Record<string, Omit<NetworkProfile, "name">> = {
  "3g": {
    delay_ms: 150,
    jitter_ms: 30,
    loss_pct: 1,
    rate_kbit: 1600,
    uplink: { rate_kbit: 768 },
  },
  "lossy": { delay_ms: 40, jitter_ms: 10, loss_pct: 5 },
  "high_latency": { delay_ms: 300, jitter_ms: 20 },
  "flaky": { delay_ms: 80, jitter_ms: 50, loss_pct: 3 },
};

/** Both directions of `profile`: the preset, then its own fields, then per-direction overrides. */
export function profileLinks(profile: NetworkProfile): ResolvedProfile {
  return resolveProfile(profile, NETWORK_PRESETS);
}

/**
 * The `tc qdisc … netem …` arguments of one direction of a profile (presets fill unset
 * fields): `up` goes on the browser's side of the link, `down` on the host's side.
 */
export function netemArgs(profile: NetworkProfile, direction: "up" | "down" = "up"): string[] {
  const p = profileLinks(profile)[direction];
  const args = ["netem"];
  if (p.delay_ms) {
    args.push(
      "delay",
      `${p.delay_ms}ms`,
      ...(p.jitter_ms ? [`${p.jitter_ms}ms`, "distribution", "normal"] : []),
    );
  }
  if (p.loss_pct) args.push("loss", `${p.loss_pct}%`);
  if (p.rate_kbit) args.push("rate", `${p.rate_kbit}kbit`);
  return args;
}

async function sh(cmd: string, args: string[]): Promise<{ ok: boolean; err: string }> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "piped" }).output();
    return { ok: out.success, err: new TextDecoder().decode(out.stderr).trim() };
  } catch (err) {
    return { ok: false, err: (err as Error).message };
  }
}

/** Whether this host lets the agent impair Chromium's network; the reason when it does not. */
export async function probeNetem(): Promise<{ ok: true } | { ok: false; reason: string }> {
  if (Deno.build.os !== "linux") return { ok: false, reason: "network namespaces need Linux" };
  if (Deno.uid() !== 0) {
    return {
      ok: false,
      reason: "the agent is not privileged (needs root or CAP_NET_ADMIN for a network namespace)",
    };
  }
  const ns = `vox-probe-${Deno.pid}`;
  const add = await sh("ip", ["netns", "add", ns]);
  if (!add.ok) return { ok: false, reason: `cannot create a network namespace: ${add.err}` };
  try {
    await sh("ip", ["netns", "exec", ns, "ip", "link", "set", "lo", "up"]);
    const tc = await sh("ip", [
      "netns",
      "exec",
      ns,
      "tc",
      "qdisc",
      "add",
      "dev",
      "lo",
      "root",
      "netem",
      "delay",
      "1ms",
    ]);
    if (!tc.ok) {
      return { ok: false, reason: `tc netem is unavailable on this kernel (${tc.err || "tc failed"})` };
    }
    return { ok: true };
  } finally {
    await sh("ip", ["netns", "del", ns]);
  }
}

/** A network namespace with an impaired link, how to start Chromium inside it, and cleanup. */
export interface ImpairedNetwork {
  /** Command prefix that runs Chromium inside the namespace (launch with `pipe: true`). */
  prefix: string[];
  /** The host end of the link: an egress proxy listening here is what the namespace reaches. */
  hostAddress: string;
  /** Rewrites a URL so it is reachable from inside the namespace (open egress only). */
  rewrite(url: string): Promise<string>;
  close(): Promise<void>;
}

async function must(cmd: string, args: string[]) {
  const r = await sh(cmd, args);
  if (!r.ok) throw new Error(`${cmd} ${args.join(" ")}: ${r.err}`);
}

/**
 * Creates namespace `vox-<pid>-<index>` joined to the host by a veth pair with `profile`'s netem
 * on both ends (so both directions are impaired, WebRTC's UDP included). Under the strict egress
 * policy (`strict`) the namespace reaches nothing but the host end of its link, where the run's
 * egress proxy listens: no forwarders, no NAT, no IP forwarding. Otherwise local URLs are reached
 * through a socat forwarder per application port on the host end, remote ones through NAT when
 * iptables exists (IP forwarding is switched back to what it was on close).
 */
export async function impairedNetwork(
  profile: NetworkProfile,
  index: number,
  strict = false,
): Promise<ImpairedNetwork> {
  const ns = `vox-${Deno.pid}-${index}`;
  const host = `vxh${Deno.pid % 10000}x${index}`;
  const peer = `vxn${Deno.pid % 10000}x${index}`;
  const net = `10.231.${index % 250}`;
  const forwarders: Deno.ChildProcess[] = [];
  let forwardingBefore: string | null = null;
  let natAdded = false;
  const close = async () => {
    for (const f of forwarders) {
      try {
        f.kill("SIGTERM");
        await f.status;
      } catch { /* already gone */ }
    }
    if (natAdded) {
      await sh("iptables", ["-t", "nat", "-D", "POSTROUTING", "-s", `${net}.0/30`, "-j", "MASQUERADE"]);
    }
    if (forwardingBefore !== null && forwardingBefore !== "1") {
      await sh("sysctl", ["-w", `net.ipv4.ip_forward=${forwardingBefore}`]);
    }
    await sh("ip", ["link", "del", host]);
    await sh("ip", ["netns", "del", ns]);
  };
  try {
    await must("ip", ["netns", "add", ns]);
    await must("ip", ["link", "add", host, "type", "veth", "peer", "name", peer]);
    await must("ip", ["link", "set", peer, "netns", ns]);
    await must("ip", ["addr", "add", `${net}.1/30`, "dev", host]);
    await must("ip", ["link", "set", host, "up"]);
    const inNs = (args: string[]) => must("ip", ["netns", "exec", ns, ...args]);
    await inNs(["ip", "link", "set", "lo", "up"]);
    await inNs(["ip", "addr", "add", `${net}.2/30`, "dev", peer]);
    await inNs(["ip", "link", "set", peer, "up"]);
    await inNs(["ip", "route", "add", "default", "via", `${net}.1`]);
    // The host end sends towards the browser (downlink); the namespace end sends from it.
    await must("tc", ["qdisc", "add", "dev", host, "root", ...netemArgs(profile, "down")]);
    await inNs(["tc", "qdisc", "add", "dev", peer, "root", ...netemArgs(profile, "up")]);
    let nat = false;
    if (!strict) {
      nat =
        natAdded =
          (await sh("iptables", ["-t", "nat", "-A", "POSTROUTING", "-s", `${net}.0/30`, "-j", "MASQUERADE"]))
            .ok;
      if (nat) {
        forwardingBefore = (await Deno.readTextFile("/proc/sys/net/ipv4/ip_forward").catch(() => "0")).trim();
        nat = (await sh("sysctl", ["-w", "net.ipv4.ip_forward=1"])).ok;
      }
    }
    const forwarded = new Set<string>();
    return {
      prefix: ["ip", "netns", "exec", ns],
      hostAddress: `${net}.1`,
      close,
      rewrite(url: string) {
        if (strict) return Promise.resolve(url);
        const u = new URL(url);
        if (!["127.0.0.1", "localhost", "[::1]"].includes(u.hostname)) {
          if (!nat) throw new Error("remote URLs need NAT into the namespace and iptables is not available");
          return Promise.resolve(url);
        }
        const port = u.port || (u.protocol === "https:" ? "443" : "80");
        if (!forwarded.has(port)) {
          forwarded.add(port);
          const relay = withAgentLife("socat", [
            `TCP-LISTEN:${port},bind=${net}.1,fork,reuseaddr`,
            `TCP:127.0.0.1:${port}`,
          ]);
          forwarders.push(
            new Deno.Command(relay.cmd, {
              args: relay.args,
              stdout: "null",
              stderr: "null",
            }).spawn(),
          );
        }
        u.hostname = `${net}.1`;
        // socat needs a moment to bind before Chromium connects.
        return new Promise((r) => setTimeout(() => r(u.toString()), 200));
      },
    };
  } catch (err) {
    await close();
    throw err;
  }
}
