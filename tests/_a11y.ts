// Page checks the browser tests share: axe-core's serious and critical violations, and whether
// anything sticks out sideways at the width the page is shown at (a phone's 390 px).
import axe from "axe-core";
import type { Page } from "puppeteer-core";

/** axe-core's serious and critical violations on the page, as "id (impact) at targets". */
export async function axeProblems(page: Page): Promise<string[]> {
  await page.evaluate(axe.source);
  const result = await page.evaluate(async () => {
    // deno-lint-ignore no-explicit-any
    const r = await (globalThis as any).axe.run(document, { resultTypes: ["violations"] });
    return r.violations.map((v: { id: string; impact: string; nodes: { target: string[] }[] }) => ({
      id: v.id,
      impact: v.impact,
      targets: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
    }));
  }) as { id: string; impact: string; targets: string[] }[];
  return result.filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => `${v.id} (${v.impact}) at ${v.targets.join(", ")}`);
}

/**
 * What sticks out sideways: the page itself when it is wider than the window, and each
 * top-navigation link that ends past the window's edge (a nav that scrolls sideways hides them).
 */
export function sidewaysProblems(page: Page): Promise<string[]> {
  return page.evaluate(() => {
    const out: string[] = [];
    const width = document.documentElement.clientWidth;
    if (document.documentElement.scrollWidth > width) {
      out.push(`page is ${document.documentElement.scrollWidth} px wide in a ${width} px window`);
    }
    for (const a of document.querySelectorAll<HTMLElement>("header.top a, header.top button")) {
      const box = a.getBoundingClientRect();
      if (box.right > width + 0.5 || box.left < -0.5) {
        out.push(`"${a.textContent?.trim()}" ends at ${box.right} px`);
      }
    }
    for (const a of document.querySelectorAll<HTMLElement>(".console-nav a")) {
      const box = a.getBoundingClientRect();
      if (box.right > width + 0.5) out.push(`console nav "${a.textContent?.trim()}" ends at ${box.right} px`);
    }
    return out;
  });
}
