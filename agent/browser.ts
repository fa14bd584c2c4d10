/** Headless Chromium for the runner. */
import puppeteer, { type Browser } from "puppeteer-core";
import { dieWithAgentArgs } from "./die_with_agent.ts";

/** Flags every Vox browser gets; autoplay is allowed because no one clicks in a headless run. */
export const CHROMIUM_FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--autoplay-policy=no-user-gesture-required",
  "--disable-background-timer-throttling",
  "--disable-renderer-backgrounding",
  "--disable-backgrounding-occluded-windows",
];

/** A launched browser and how to dispose of it (and its temporary profile). */
export interface LaunchedBrowser {
  browser: Browser;
  close(): Promise<void>;
}

/** Launches Chromium (CHROMIUM_PATH or /usr/bin/chromium) with a fresh profile and extra `args`. */
export async function launchChromium(
  opts: {
    headless?: boolean;
    executablePath?: string;
    pipe?: boolean;
    args?: string[];
    /** Leave SIGINT/SIGTERM/SIGHUP to the caller (the daemon drains before the browser goes). */
    keepOnSignals?: boolean;
  } = {},
): Promise<LaunchedBrowser> {
  const userDataDir = await Deno.makeTempDir({ prefix: "vox-agent-chromium-" });
  const chromium = opts.executablePath ?? Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";
  const wrapper = await dieWithAgent(chromium, userDataDir);
  const browser = await puppeteer.launch({
    executablePath: wrapper ?? chromium,
    headless: opts.headless ?? true,
    userDataDir,
    // A pipe instead of a DevTools port works when Chromium lives in another network namespace.
    pipe: opts.pipe ?? false,
    args: [...CHROMIUM_FLAGS, ...(opts.args ?? [])],
    ...(opts.keepOnSignals ? { handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false } : {}),
  });
  if (!wrapper) console.error("setpriv not found: Chromium may outlive an agent killed with SIGKILL");
  return {
    browser,
    close: async () => {
      await browser.close().catch(() => {});
      await Deno.remove(userDataDir, { recursive: true }).catch(() => {});
      if (wrapper) await Deno.remove(wrapper).catch(() => {});
    },
  };
}

/**
 * A launcher for Chromium that dies with the agent. Puppeteer starts the browser in its own
 * process group, so a signal to the agent's group does not reach it; the parent-death signal
 * (kept across exec) does. Chromium's helpers (zygote, renderers) exit when the browser does.
 * Null without setpriv.
 */
async function dieWithAgent(chromium: string, dir: string): Promise<string | null> {
  const prefix = dieWithAgentArgs();
  if (prefix.length === 0) return null;
  const path = `${dir}.launch.sh`;
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  await Deno.writeTextFile(path, `#!/bin/sh\nexec ${[...prefix, chromium].map(quote).join(" ")} "$@"\n`, {
    mode: 0o700,
  });
  return path;
}
