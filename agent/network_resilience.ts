/**
 * Network resilience: the same application × scenario turns again under each network profile,
 * scored against the clean runs. The profile is applied by one of two methods, chosen per host
 * and named in the report:
 * - `netem`: Chromium in a network namespace whose link carries the profile's `tc netem`
 *   (`network.ts`), where the kernel has sch_netem and the agent may create namespaces;
 * - `relay`: user-space delay lines (`network_relay.ts`), needing no kernel module: the browser
 *   context's proxy is reached through a TCP delay line, and the page hooks force WebRTC through
 *   the agent's TURN server (coturn, `network_turn.ts`) reached through a UDP delay line.
 * `VOX_NETWORK_METHOD=relay` (or `netem`) forces one.
 */
import { launchChromium } from "./browser.ts";
import type { LoadedConfig } from "./config.ts";
import type { NetworkProfile } from "./format.ts";
import { impairedNetwork, probeNetem, profileLinks } from "./network.ts";
import { type ResolvedProfile, startUdpRelay, udpEcho, udpProbe } from "./network_relay.ts";
import { findTurnServer, startTurnServer, type TurnServer } from "./network_turn.ts";
import type { NetworkResult, RunRecord, Turn } from "./report.ts";
import { runOnce, type RunOptions, withDeadline } from "./runner.ts";
import { summarize } from "./stats.ts";

/** Method versions of network resilience, per way of impairing the network. */
export const NETWORK_METHODS = { netem: "vox-netem/2", relay: "vox-relay/1" } as const;

const round1 = (x: number) => Math.round(x * 10) / 10;

/**
 * One profile's score (0–100): 100 × min(1, ok turns impaired ÷ ok turns clean) × the mean, over
 * response and interrupt latency (each where both medians exist and the clean one is positive),
 * of min(1, clean median ÷ impaired median). Also the changes it is made of.
 */
export function scoreProfile(clean: Turn[], impaired: Turn[]): Pick<
  NetworkResult,
  | "score"
  | "response_latency"
  | "interrupt_latency"
  | "turns"
  | "turns_ok"
  | "turns_failed"
  | "clean_turns_failed"
  | "response_latency_change_ms"
  | "interrupt_latency_change_ms"
> {
  const lat = (turns: Turn[], kind: Turn["kind"]) =>
    summarize(turns.filter((t) => t.kind === kind && t.ok && t.latency_ms != null).map((t) => t.latency_ms!));
  const cleanOk = clean.filter((t) => t.ok).length;
  const ok = impaired.filter((t) => t.ok).length;
  const ratios: number[] = [];
  const changes: Record<string, number | null> = {};
  const out = {
    response_latency: lat(impaired, "response"),
    interrupt_latency: lat(impaired, "interrupt"),
  };
  for (const kind of ["response", "interrupt"] as const) {
    const c = lat(clean, kind).median;
    const i = out[`${kind}_latency`].median;
    changes[kind] = c != null && i != null ? round1(i - c) : null;
    if (c != null && i != null && c > 0) ratios.push(i <= 0 ? 1 : Math.min(1, c / i));
  }
  const success = cleanOk > 0 ? Math.min(1, ok / cleanOk) : 0;
  const speed = ratios.length ? ratios.reduce((a, b) => a + b, 0) / ratios.length : ok > 0 ? 1 : 0;
  return {
    ...out,
    score: round1(100 * success * speed),
    turns: impaired.length,
    turns_ok: ok,
    turns_failed: impaired.length - ok,
    clean_turns_failed: clean.length - cleanOk,
    response_latency_change_ms: changes.response,
    interrupt_latency_change_ms: changes.interrupt,
  };
}

/** Which method this host uses, and why the other is not used. */
export async function networkMethod(): Promise<{ method: "netem" | "relay"; why: string }> {
  const forced = Deno.env.get("VOX_NETWORK_METHOD");
  if (forced === "relay") return { method: "relay", why: "VOX_NETWORK_METHOD=relay" };
  const netem = await probeNetem();
  if (netem.ok) return { method: "netem", why: "tc netem is available" };
  return { method: "relay", why: netem.reason };
}

/** A short UDP probe through the profile's delay lines: what the impaired path really was. */
async function probeProfile(profile: ResolvedProfile): Promise<NetworkResult["probe"]> {
  const echo = await udpEcho();
  const relay = await startUdpRelay({ hostname: "127.0.0.1", port: echo.port }, profile);
  try {
    const p = await udpProbe(relay, { count: 150, intervalMs: 5, settleMs: 600 });
    const r = (x: number | null) => (x == null ? null : round1(x));
    return {
      rtt_median_ms: r(p.rtt_median_ms),
      rtt_sd_ms: r(p.rtt_sd_ms),
      loss_pct: round1(p.loss_pct),
      sent: p.sent,
    };
  } finally {
    await relay.close();
    echo.close();
  }
}

/**
 * Runs every application × scenario with `network` profiles again per profile and scores it
 * against the clean runs (`scoreProfile()`); the metric is the mean over profiles.
 */
export async function runNetworkProfiles(
  apps: LoadedConfig[],
  suites: LoadedConfig[],
  clean: RunRecord[],
  options: RunOptions & { outDir: string },
): Promise<
  {
    score: number | null;
    note: string;
    method: "netem" | "relay";
    profiles: NetworkResult[];
    runs: RunRecord[];
  }
> {
  const profiles: NetworkProfile[] = [];
  for (const s of suites) {
    for (const p of s.network ?? []) if (!profiles.some((q) => q.name === p.name)) profiles.push(p);
  }
  const names = profiles.map((p) => p.name).join(", ");
  const { method, why } = await networkMethod();
  const results: NetworkResult[] = [];
  const allRuns: RunRecord[] = [];
  let runNo = clean.length;
  const notes: string[] = [];

  const pairsFor = (profile: NetworkProfile) => {
    const out: { app: LoadedConfig; suite: LoadedConfig }[] = [];
    for (const app of apps) {
      for (const suite of suites.filter((s) => s.network?.some((p) => p.name === profile.name))) {
        out.push({ app, suite });
      }
    }
    return out;
  };
  // Runs every pair under `profile` in `browser`, each run within its deadline, with the
  // impairment method's own run options (`extra`) on top of the caller's.
  const runPairs = async (
    profile: NetworkProfile,
    pairs: { app: LoadedConfig; suite: LoadedConfig }[],
    browser: Parameters<typeof runOnce>[0],
    extra: Partial<RunOptions>,
  ) => {
    const runs: RunRecord[] = [];
    for (const { app, suite } of pairs) {
      for (let r = 0; r < Math.max(1, options.repeat ?? 1); r++) {
        if (options.signal?.aborted) break;
        options.onProgress?.(`network ${profile.name}: ${app.name} × ${suite.name} (repetition ${r + 1})`);
        const no = ++runNo;
        runs.push(
          await withDeadline(
            { app, suite, run: no, repetition: r + 1 },
            options,
            (signal) => runOnce(browser, app, suite, no, r + 1, { ...options, ...extra, signal }),
          ),
        );
      }
    }
    return runs;
  };
  const finish = (
    result: NetworkResult,
    pairs: { app: LoadedConfig; suite: LoadedConfig }[],
    runs: RunRecord[],
  ) => {
    // Scored against the clean runs of the same pairs.
    const same = clean.filter((r) => pairs.some((p) => p.app.path === r.app && p.suite.path === r.suite));
    Object.assign(result, scoreProfile(same.flatMap((r) => r.turns), runs.flatMap((r) => r.turns)));
    for (const r of runs) {
      r.error = r.error ? { ...r.error, message: `[network ${result.profile}] ${r.error.message}` } : null;
    }
    allRuns.push(...runs.map((r) => ({ ...r, turns: [], noise_checks: [] })));
  };

  if (method === "netem") {
    for (const [i, profile] of profiles.entries()) {
      const result: NetworkResult = {
        profile: profile.name,
        method,
        links: profileLinks(profile),
        score: null,
        response_latency: summarize([]),
        turns_ok: 0,
        turns: 0,
      };
      delete (result.links as Partial<ResolvedProfile>).name;
      results.push(result);
      let net: Awaited<ReturnType<typeof impairedNetwork>> | null = null;
      let launched: Awaited<ReturnType<typeof launchChromium>> | null = null;
      try {
        net = await impairedNetwork(profile, i + 1, !!options.egress);
        const pairs: { app: LoadedConfig; suite: LoadedConfig }[] = [];
        const origins = new Set<string>();
        for (const { app, suite } of pairsFor(profile)) {
          if (!app.url && !options.egress) {
            throw new Error("html applications are not served into the namespace");
          }
          if (!app.url) {
            pairs.push({ app, suite });
            continue;
          }
          const url = await net.rewrite(app.url);
          origins.add(new URL(url).origin);
          pairs.push({ app: { ...app, url }, suite });
        }
        launched = await launchChromium({
          headless: options.headless ?? true,
          prefix: net.prefix,
          pipe: true,
          strictEgress: !!options.egress,
          // The rewritten origins are plain-HTTP addresses; getUserMedia needs a secure context.
          args: [`--unsafely-treat-insecure-origin-as-secure=${[...origins].join(",")}`],
        });
        const b = launched.browser;
        const n = net;
        const runs = await runPairs(profile, pairs, b, {
          egressListen: options.egress ? n.hostAddress : undefined,
        });
        // Scored against the clean runs of the original pairs (urls were rewritten).
        finish(result, pairsFor(profile), runs);
      } catch (err) {
        result.error = (err as Error).message;
      } finally {
        await launched?.close();
        await net?.close();
      }
    }
  } else {
    let turn: TurnServer | null = null;
    let launched: Awaited<ReturnType<typeof launchChromium>> | null = null;
    try {
      if (await findTurnServer()) {
        try {
          turn = await startTurnServer({ strict: options.egress });
        } catch (err) {
          notes.push(`WebRTC media was not impaired: ${(err as Error).message}`);
        }
      } else {
        notes.push("WebRTC media was not impaired: coturn (turnserver) is not installed");
      }
      launched = options.browser ? null : await launchChromium({
        headless: options.headless ?? true,
        strictEgress: !!options.egress,
      });
      const browser = options.browser ?? launched!.browser;
      for (const profile of profiles) {
        const links = profileLinks(profile);
        const { name: _, ...both } = links;
        const result: NetworkResult = {
          profile: profile.name,
          method,
          links: both,
          score: null,
          response_latency: summarize([]),
          turns_ok: 0,
          turns: 0,
        };
        results.push(result);
        let udp: Awaited<ReturnType<typeof startUdpRelay>> | null = null;
        try {
          result.probe = await probeProfile(links);
          if (turn) udp = await startUdpRelay({ hostname: turn.host, port: turn.port }, links);
          const t = turn;
          const imposed = t && udp
            ? {
              // Under the strict policy the browser sends no UDP: TURN over TCP through its proxy,
              // which the context reaches through the TCP delay line.
              urls: options.egress
                ? [`turn:${t.host}:${t.port}?transport=tcp`]
                : [`turn:${udp.hostname}:${udp.port}?transport=udp`],
              username: t.username,
              credential: t.credential,
            }
            : null;
          const pairs = pairsFor(profile);
          const runs = await runPairs(profile, pairs, browser, {
            impair: {
              profile: links,
              turn: imposed,
              turnTcp: options.egress && t ? { host: t.host, port: t.port } : undefined,
            },
          });
          finish(result, pairs, runs);
        } catch (err) {
          result.error = (err as Error).message;
        } finally {
          await udp?.close();
        }
      }
    } finally {
      await launched?.close();
      await turn?.close();
    }
  }
  const scored = results.filter((r) => r.score != null).map((r) => r.score!);
  const score = scored.length ? round1(scored.reduce((a, b) => a + b, 0) / scored.length) : null;
  const failed = results.filter((r) => r.error).map((r) => `${r.profile}: ${r.error}`);
  const how = method === "netem"
    ? "with tc netem in a network namespace"
    : `with user-space delay lines (method relay: ${why}); WebRTC forced through a TURN relay`;
  return {
    score,
    method,
    note: `profiles ${names} applied ${how}` + (notes.length ? `; ${notes.join("; ")}` : "") +
      (failed.length ? `; failed: ${failed.join("; ")}` : ""),
    profiles: results,
    runs: allRuns,
  };
}
