// Headless Chromium for tests: the eval agent's own launcher (sandbox flags, fresh profile).
import { launchChromium, type LaunchedBrowser } from "../agent/browser.ts";
import type { Browser, Page } from "puppeteer-core";

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

/**
 * A page in a fresh browser context carrying the session `cookie` (`name=value`; none when
 * null), and the console errors and page errors it logs, for a test to assert there are none.
 */
export async function pageWithSession(
  browser: Browser,
  cookie: string | null,
): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.createBrowserContext();
  const page = await context.newPage();
  if (cookie) {
    const at = cookie.indexOf("=");
    await context.setCookie({
      name: cookie.slice(0, at),
      value: cookie.slice(at + 1),
      domain: "127.0.0.1",
      path: "/",
      httpOnly: true,
    });
  }
  const errors: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error") errors.push(m.text());
  });
  page.on("pageerror", (e) => errors.push(String(e)));
  return { page, errors };
}
