// Headless Chromium for tests: the eval agent's own launcher (sandbox flags, fresh profile).
import { launchChromium, type LaunchedBrowser } from "../agent/browser.ts";

/** Launches headless Chromium; dispose of it with `close()`. */
export function launchBrowser(): Promise<LaunchedBrowser> {
  return launchChromium();
}
