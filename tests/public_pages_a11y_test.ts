// The public pages in Chromium, with results on the boards: each passes axe-core without serious
// or critical violations, logs no console errors, and on a phone (390 px) nothing scrolls
// sideways and every navigation link is in sight.
import assert from "node:assert/strict";
import { completeJob } from "../lib/job_completer.ts";
import { rollUpResults } from "../lib/metrics.ts";
import { claimJobs, createJob } from "../lib/queue.ts";
import { SEEDED_PROVIDERS } from "../lib/seed.ts";
import { sampleReport } from "../bench/sim_agent.ts";
import { axeProblems, sidewaysProblems } from "./_a11y.ts";
import { createTestApp } from "./_app.ts";
import { launchBrowser } from "./_browser.ts";
import { createTestDatabase } from "./_db.ts";
import { insertEvalPair } from "./_orch.ts";

const db = await createTestDatabase();
const sql = db.sql;
const { app } = await createTestApp(sql);
const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen() {} }, app.fetch);
const origin = `http://127.0.0.1:${server.addr.port}`;
const chromium = await launchBrowser();
Deno.test.afterAll(async () => {
  await chromium.close();
  await server.shutdown();
  await db.close();
});

// Two providers measured in two regions, so the boards, charts and provider pages have rows.
const [{ id: tokenId }] = await sql`
  INSERT INTO eval_agent_tokens (name, region, token_hash, display_prefix)
  VALUES ('a11y', 'eu', ${"2".repeat(64)}, 'x') RETURNING id`;
for (const [i, provider] of SEEDED_PROVIDERS.slice(0, 2).entries()) {
  const pair = await insertEvalPair(sql, { mainline: true, providerId: provider.id });
  for (const region of ["eu", "us"]) {
    const [agent] = await sql`
      INSERT INTO eval_agents (token_id, name, region) VALUES (${tokenId}, ${crypto.randomUUID()}, ${region})
      RETURNING id`;
    const job = await createJob(sql, { ...pair, region });
    await claimJobs(sql, region, [{ agentId: agent.id }]);
    assert.ok((await completeJob(sql, job.id, agent.id, sampleReport(600 + 200 * i))).ok);
  }
}
await rollUpResults(sql);

const PAGES = ["/", "/realtime", "/leaderboard", "/dive", "/agents", "/run-your-own", "/docs", "/login"];

for (const [label, width, height] of [["desktop", 1280, 800], ["phone", 390, 844]] as const) {
  Deno.test(`public pages at ${label} width: axe, console errors, nothing sideways`, async () => {
    const context = await chromium.browser.createBrowserContext();
    const page = await context.newPage();
    await page.setViewport({ width, height });
    const errors: string[] = [];
    page.on("console", (m) => m.type() === "error" && errors.push(`${page.url()}: ${m.text()}`));
    page.on("pageerror", (e) => errors.push(`${page.url()}: ${e}`));
    const problems: string[] = [];
    for (const path of PAGES) {
      await page.goto(`${origin}${path}`, { waitUntil: "networkidle0" });
      await page.waitForFunction(() =>
        [...document.querySelectorAll<HTMLElement>("[data-island]")].every((el) => el.dataset.hydrated)
      );
      for (const p of await axeProblems(page)) problems.push(`${path}: ${p}`);
      if (label === "phone") { for (const p of await sidewaysProblems(page)) problems.push(`${path}: ${p}`); }
    }
    assert.deepEqual(problems, []);
    assert.deepEqual(errors, []);
    await context.close();
  });
}
