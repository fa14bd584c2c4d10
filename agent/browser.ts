/** Headless Chromium for the runner. */
import puppeteer, { type Browser } from "puppeteer-core";

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
  const browser = await puppeteer.launch({
    executablePath: opts.executablePath ?? Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium",
    headless: opts.headless ?? true,
    userDataDir,
    // A pipe instead of a DevTools port works when Chromium lives in another network namespace.
    pipe: opts.pipe ?? false,
    args: [...CHROMIUM_FLAGS, ...(opts.args ?? [])],
    ...(opts.keepOnSignals ? { handleSIGINT: false, handleSIGTERM: false, handleSIGHUP: false } : {}),
  });
  return {
    browser,
    close: async () => {
      await browser.close().catch(() => {});
      await Deno.remove(userDataDir, { recursive: true }).catch(() => {});
    },
  };
}
