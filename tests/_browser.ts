// Headless Chromium for tests: the eval agent's own launcher (sandbox flags, fresh profile).
import { launchChromium, type LaunchedBrowser } from "../agent/browser.ts";
import type { Page } from "puppeteer-core";

/** Launches headless Chromium; dispose of it with `close()`. */
export function launchBrowser(): Promise<LaunchedBrowser> {
  return launchChromium();
}

/** Waits until every island on the page has hydrated (its data-hydrated marker is set). */
export async function hydrated(page: Page): Promise<void> {
  await page.waitForFunction(() =>
    [...document.querySelectorAll<HTMLElement>("[data-island]")].every((el) => el.dataset.hydrated)
  );
}
