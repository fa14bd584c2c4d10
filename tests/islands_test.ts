import assert from "node:assert/strict";
import { createTestApp } from "./_app.ts";
import { launchBrowser } from "./_browser.ts";
import { createTestDatabase } from "./_db.ts";

Deno.test("the /agents island hydrates in Chromium and filters by region", async () => {
  const db = await createTestDatabase();
  const { app } = await createTestApp(db.sql);
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, app.fetch);
  const { browser, close } = await launchBrowser();
  try {
    const [token] = await db.sql`
      INSERT INTO eval_agent_tokens (name, region, token_hash, display_prefix)
      VALUES ('t', 'eu-west', ${"a".repeat(64)}, 'vox_agent_a') RETURNING id`;
    await db.sql`
      INSERT INTO eval_agents (token_id, name, region, state, last_seen_at) VALUES
        (${token.id}, 'fra-1', 'eu-west', 'IDLE', now()),
        (${token.id}, 'iad-1', 'us-east', 'OCCUPIED', now()),
        (${token.id}, 'iad-2', 'us-east', 'OFFLINE', null)`;

    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    await page.goto(`http://127.0.0.1:${server.addr.port}/agents`);
    await page.waitForSelector('[data-island="agents_table"][data-hydrated="true"]', { timeout: 15_000 });

    const summary = () => page.$eval('[data-testid="agent-summary"]', (el) => el.textContent ?? "");
    assert.match(await summary(), /^3 agents · 1 idle · 1 busy · 1 offline/);
    await page.select('select[name="region"]', "us-east");
    await page.waitForFunction(
      () => document.querySelectorAll("tbody tr").length === 2,
      { timeout: 5_000 },
    );
    assert.match(await summary(), /^2 agents · 0 idle · 1 busy · 1 offline/);
    const regions = await page.$$eval("tbody tr", (rows) => rows.map((r) => r.getAttribute("data-region")));
    assert.deepEqual(regions, ["us-east", "us-east"]);
    // Only the island is hydrated: the marker carries its props, the rest is static HTML.
    const markers = await page.$$eval(
      "[data-island]",
      (els) => els.map((e) => e.getAttribute("data-island")),
    );
    assert.deepEqual(markers, ["agents_table"]);
    assert.deepEqual(errors, []);
  } finally {
    await close();
    await server.shutdown();
    await db.close();
  }
});
