/**
 * Network impairment at the operating-system level: Chromium in its own network namespace
 * with `tc netem` on the link. Before any impaired run the agent probes whether this host
 * allows it; when it does not, network resilience is reported as null with the reason.
 */
import type { NetworkProfile } from "./config.ts";

/** Named profiles a scenario may refer to with `network: [{ name: "3g" }]`. */
export const NETWORK_PRESETS: Record<string, Omit<NetworkProfile, "name">> = {
  "3g": { delay_ms: 150, jitter_ms: 30, loss_pct: 1, rate_kbit: 1600 },
  "lossy": { delay_ms: 40, jitter_ms: 10, loss_pct: 5 },
  "high_latency": { delay_ms: 300, jitter_ms: 20 },
};

/** The `tc qdisc … netem …` arguments of a profile (presets fill unset fields). */
export function netemArgs(profile: NetworkProfile): string[] {
  const p = { ...NETWORK_PRESETS[profile.name], ...profile };
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
