/**
 * Network resilience: the same application × scenario turns again with Chromium in a network
 * namespace whose link carries each profile's netem (`network.ts`), scored against the clean
 * runs.
 */
import { launchChromium } from "./browser.ts";
import type { LoadedConfig } from "./config.ts";
import type { NetworkProfile } from "./format.ts";
import { impairedNetwork, probeNetem } from "./network.ts";
import type { NetworkResult, RunRecord } from "./report.ts";
import { runOnce, type RunOptions } from "./runner.ts";
import { summarize } from "./stats.ts";

/**
 * Network resilience (vox-netem/1): every application × scenario with `network` profiles runs
 * again with Chromium inside a namespace whose link carries the profile's netem. Per profile:
 * 100 × (ok turns impaired ÷ ok turns clean, capped at 1) × min(1, clean median ÷ impaired
 * median response latency); the metric is the mean over profiles.
 */
export async function runNetworkProfiles(
  apps: LoadedConfig[],
  suites: LoadedConfig[],
  clean: RunRecord[],
  options: RunOptions & { outDir: string },
): Promise<{ score: number | null; note: string; profiles: NetworkResult[]; runs: RunRecord[] }> {
  const profiles: NetworkProfile[] = [];
  for (const s of suites) {
    for (const p of s.network ?? []) if (!profiles.some((q) => q.name === p.name)) profiles.push(p);
  }
  const names = profiles.map((p) => p.name).join(", ");
  const probe = await probeNetem();
  if (!probe.ok) {
    return {
      score: null,
      note: `network profiles ${names} were not applied: ${probe.reason}`,
      profiles: [],
      runs: [],
    };
  }
  const cleanTurns = clean.flatMap((r) => r.turns);
  const cleanOk = cleanTurns.filter((t) => t.ok).length;
  const cleanMedian = summarize(
    cleanTurns.filter((t) => t.kind === "response" && t.ok).map((t) => t.latency_ms!),
  ).median;
  const results: NetworkResult[] = [];
  const allRuns: RunRecord[] = [];
  let runNo = clean.length;
  for (const [i, profile] of profiles.entries()) {
    const result: NetworkResult = {
      profile: profile.name,
      score: null,
      response_latency: summarize([]),
      turns_ok: 0,
      turns: 0,
    };
    results.push(result);
    let net: Awaited<ReturnType<typeof impairedNetwork>> | null = null;
    let launched: Awaited<ReturnType<typeof launchChromium>> | null = null;
    try {
      net = await impairedNetwork(profile, i + 1, !!options.egress);
      const pairs: { app: LoadedConfig; suite: LoadedConfig }[] = [];
      const origins = new Set<string>();
      for (const app of apps) {
        for (const suite of suites.filter((s) => s.network?.some((p) => p.name === profile.name))) {
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
      }
      launched = await launchChromium({
        headless: options.headless ?? true,
        prefix: net.prefix,
        pipe: true,
        strictEgress: !!options.egress,
        // The rewritten origins are plain-HTTP addresses; getUserMedia needs a secure context.
        args: [`--unsafely-treat-insecure-origin-as-secure=${[...origins].join(",")}`],
      });
      const runs: RunRecord[] = [];
      for (const { app, suite } of pairs) {
        for (let r = 0; r < Math.max(1, options.repeat ?? 1); r++) {
          options.onProgress?.(`network ${profile.name}: ${app.name} × ${suite.name} (repetition ${r + 1})`);
          runs.push(
            await runOnce(launched.browser, app, suite, ++runNo, r + 1, {
              ...options,
              egressListen: options.egress ? net.hostAddress : undefined,
            }),
          );
        }
      }
      const turns = runs.flatMap((r) => r.turns);
      result.turns = turns.length;
      result.turns_ok = turns.filter((t) => t.ok).length;
      result.response_latency = summarize(
        turns.filter((t) => t.kind === "response" && t.ok).map((t) => t.latency_ms!),
      );
      const success = cleanOk > 0 ? Math.min(1, result.turns_ok / cleanOk) : 0;
      const slow = cleanMedian != null && result.response_latency.median != null
        ? Math.min(1, cleanMedian / result.response_latency.median)
        : result.turns_ok > 0
        ? 1
        : 0;
      result.score = Math.round(100 * success * slow * 10) / 10;
      for (const r of runs) {
        r.error = r.error ? { ...r.error, message: `[network ${profile.name}] ${r.error.message}` } : null;
      }
      allRuns.push(...runs.map((r) => ({ ...r, turns: [], noise_checks: [] })));
    } catch (err) {
      result.error = (err as Error).message;
    } finally {
      await launched?.close();
      await net?.close();
    }
  }
  const scored = results.filter((r) => r.score != null).map((r) => r.score!);
  const score = scored.length
    ? Math.round((scored.reduce((a, b) => a + b, 0) / scored.length) * 10) / 10
    : null;
  const failed = results.filter((r) => r.error).map((r) => `${r.profile}: ${r.error}`);
  return {
    score,
    note: `profiles ${names} applied with tc netem in a network namespace` +
      (failed.length ? `; failed: ${failed.join("; ")}` : ""),
    profiles: results,
    runs: allRuns,
  };
}
