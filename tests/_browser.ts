// Headless Chromium for tests, with the flags this sandbox needs and a fresh profile.
import puppeteer, { type Browser } from "puppeteer-core";

export const CHROMIUM_FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/** Path of the Chromium binary (CHROMIUM_PATH or Debian's /usr/bin/chromium). */
export function chromiumPath(): string {
  return Deno.env.get("CHROMIUM_PATH") ?? "/usr/bin/chromium";
}

/** Launches headless Chromium; close it with `await closeBrowser(b)`. */
export async function launchBrowser(): Promise<{ browser: Browser; close(): Promise<void> }> {
  const userDataDir = await Deno.makeTempDir({ prefix: "vox-chromium-" });
  const browser = await puppeteer.launch({
    executablePath: chromiumPath(),
    headless: true,
    userDataDir,
    args: CHROMIUM_FLAGS,
  });
  return {
    browser,
    close: async () => {
      await browser.close();
      await Deno.remove(userDataDir, { recursive: true }).catch(() => {});
    },
  };
}
