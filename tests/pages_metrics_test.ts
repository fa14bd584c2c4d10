import assert from "node:assert/strict";
import type { Page } from "puppeteer-core";
import type { RunReport } from "../agent/protocol.ts";
import { completeJob } from "../lib/job_completer.ts";
import { claimJobs, createJob } from "../lib/queue.ts";
import { fmtMs, foldResult, type RealtimeData, type ResultEvent } from "../components/metrics_view.ts";
import { leaderboard, realtime, rollUpResults } from "../lib/metrics.ts";
import { SEEDED_PROVIDERS } from "../lib/seed.ts";
import { sampleReport } from "../bench/sim_agent.ts";
import { createTestApp } from "./_app.ts";
import { launchBrowser } from "./_browser.ts";
import { createTestDatabase } from "./_db.ts";
import { insertEvalPair, restoreResults, startOrchServer } from "./_orch.ts";

const db = await createTestDatabase();
const sql = db.sql;
Deno.test.afterAll(() => db.close());

const [agora, livekit] = SEEDED_PROVIDERS.map((p) => p.id);
const [{ id: pipecat }] =
  await sql`INSERT INTO providers (name, sku) VALUES ('Pipecat Cloud', 0) RETURNING id`;
// A provider measured only privately: neither it nor its numbers may reach a public page.
const [{ id: hidden }] = await sql`INSERT INTO providers (name, sku) VALUES ('Hidden Labs', 1) RETURNING id`;
const [{ id: tokenId }] = await sql`
  INSERT INTO eval_agent_tokens (name, region, token_hash, display_prefix)
  VALUES ('pages', 'eu', ${"1".repeat(64)}, 'x') RETURNING id`;

const pairs = {
  agora: await insertEvalPair(sql, { mainline: true, providerId: agora }),
  livekit: await insertEvalPair(sql, { mainline: true, providerId: livekit }),
  pipecat: await insertEvalPair(sql, { mainline: true, providerId: pipecat }),
  agoraPrivate: await insertEvalPair(sql, { mainline: false, providerId: agora }),
  hidden: await insertEvalPair(sql, { mainline: false, providerId: hidden }),
};
const PRIVATE_MS = 4321.5;

/**
 * Stores one job's result the way the gateway does (create, claim, complete); `agoMs`
 * backdates it, which only counts if done before the rollup folds it.
 */
async function store(
  pair: { workflowId: number; evalSetId: number },
  region: string,
  latency: number,
  opts: { agoMs?: number; metrics?: Partial<RunReport["metrics"]> } = {},
): Promise<number> {
  const [agent] = await sql`
    INSERT INTO eval_agents (token_id, name, region) VALUES (${tokenId}, ${crypto.randomUUID()}, ${region})
    RETURNING id`;
  const job = await createJob(sql, { ...pair, region });
  const offers = await claimJobs(sql, region, [{ agentId: agent.id }]);
  assert.equal(offers.length, 1);
  const report = sampleReport(latency);
  report.metrics = { ...report.metrics, ...opts.metrics };
  const out = await completeJob(sql, job.id, agent.id, report);
  assert.ok(out.ok);
  if (opts.agoMs) {
    await sql`UPDATE eval_results SET created_at = now() - ${opts.agoMs} * interval '1 millisecond'
              WHERE job_id = ${job.id}`;
  }
  return job.id;
}

const MIN = 60_000;
const HOUR = 60 * MIN;
const agoraScores = { naturalness: 80, noise_reduction: 75, network_resilience: 90 };
await store(pairs.agora, "eu", 500, { agoMs: 10 * MIN, metrics: agoraScores });
await store(pairs.agora, "eu", 700, { agoMs: 20 * MIN, metrics: agoraScores });
await store(pairs.agora, "us", 900, { agoMs: 3 * HOUR, metrics: agoraScores });
const livekitScores = { naturalness: 60, noise_reduction: null, network_resilience: 95 };
await store(pairs.livekit, "eu", 400, { agoMs: 5 * MIN, metrics: livekitScores });
await store(pairs.livekit, "us", 600, { agoMs: 2 * HOUR, metrics: livekitScores });
await store(pairs.pipecat, "eu", 1100, {
  agoMs: 30 * MIN,
  metrics: {
    interrupt_latency: { median: null, sd: null, p90: null, n: 0 },
    naturalness: null,
    noise_reduction: null,
    network_resilience: null,
  },
});
await store(pairs.agoraPrivate, "eu", PRIVATE_MS, { agoMs: 5 * MIN });
await store(pairs.hidden, "eu", PRIVATE_MS, { agoMs: 5 * MIN });
await rollUpResults(sql);

function assertNothingPrivate(text: string, where: string) {
  assert.ok(!text.includes("Hidden Labs"), `${where}: the private-only provider's name`);
  assert.ok(!text.includes(hidden), `${where}: the private-only provider's id`);
  assert.ok(!text.includes(String(PRIVATE_MS)), `${where}: a private result's latency`);
}

/** The server-rendered figure of one provider card on /realtime. */
function cardFigure(html: string, providerId: string, metric: string): string | null {
  const card = html.split('<section class="card provider-card"').find((s) =>
    s.startsWith(` data-provider="${providerId}"`)
  );
  const m = card && new RegExp(`data-metric="${metric}">([^<]*)<`).exec(card);
  return m ? m[1] : null;
}

/** Provider ids of the ranking table rows, top to bottom. */
function rowProviders(html: string): string[] {
  // Every board's table (one per product type), in page order.
  const start = html.indexOf('data-testid="rank-table"');
  const body = start < 0 ? "" : html.slice(start, html.lastIndexOf("</tbody>"));
  return [...body.matchAll(/<tr[^>]* data-provider="([0-9a-z]{12})"/g)].map((m) => m[1]);
}

Deno.test(
  "GET /realtime renders each provider's mainline figures for the range before any script runs",
  async () => {
    const { app } = await createTestApp(sql);
    const res = await app.request("/realtime");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
    const html = await res.text();
    assert.match(html, /data-island="realtime_charts"/);
    assert.match(html, /<h1>Realtime latency<\/h1>/);
    // 24 h by default: all three Agora results (500, 700, 900), the private 4321.5 left out.
    assert.equal(cardFigure(html, agora, "response"), "700");
    assert.equal(cardFigure(html, agora, "p90"), "740");
    assert.equal(cardFigure(html, agora, "interrupt"), "350");
    assert.equal(cardFigure(html, agora, "results"), "3");
    assert.equal(cardFigure(html, livekit, "response"), "500");
    assert.equal(cardFigure(html, livekit, "results"), "2");
    assert.equal(cardFigure(html, pipecat, "response"), "1100");
    assert.equal(cardFigure(html, pipecat, "interrupt"), "—");
    assert.match(html, /<option value="eu">eu<\/option><option value="us">us<\/option>/);
    assertNothingPrivate(html, "/realtime");

    const lastHour = await (await app.request("/realtime?range=1h")).text();
    assert.equal(cardFigure(lastHour, agora, "response"), "600");
    assert.equal(cardFigure(lastHour, agora, "results"), "2");
    assert.equal(cardFigure(lastHour, livekit, "response"), "400");

    const us = await (await app.request("/realtime?range=24h&region=us")).text();
    assert.equal(cardFigure(us, agora, "response"), "900");
    assert.equal(cardFigure(us, livekit, "response"), "600");
    assert.equal(cardFigure(us, pipecat, "response"), null, "Pipecat has no result in us");
    assert.match(us, /<option selected value="us">/);
  },
);

Deno.test(
  "GET /realtime says so when the range has no mainline results, and links onwards",
  async () => {
    const { app } = await createTestApp(sql);
    const res = await app.request("/realtime?range=1h&region=us");
    assert.equal(res.status, 200);
    const html = await res.text();
    assert.match(html, /No mainline results in this range/);
    assert.match(html, /href="\/dive"/);
    assert.match(html, /href="\/run-your-own"/);
    assert.ok(!html.includes('class="card provider-card"'));
    // Unknown values fall back to the defaults instead of failing.
    const odd = await app.request("/realtime?range=forever&region=EU!");
    assert.equal(odd.status, 200);
    assert.equal(cardFigure(await odd.text(), agora, "results"), "3");
  },
);

Deno.test(
  "GET /leaderboard ranks providers by the chosen metric, with missing values last",
  async () => {
    const { app } = await createTestApp(sql);
    const res = await app.request("/leaderboard");
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
    const html = await res.text();
    assert.match(html, /data-island="leaderboard_table"/);
    // A board per product type: ConvoAI (agora, pipecat) first, then RTC (livekit).
    assert.deepEqual(rowProviders(html), [agora, pipecat, livekit]);
    assert.match(html, /ConvoAI engines/);
    assert.match(html, /RTC engines/);
    assert.match(html, /data-metric="response">500</);
    assertNothingPrivate(html, "/leaderboard");

    const byNaturalness = await (await app.request("/leaderboard?sort=naturalness&dir=desc")).text();
    assert.deepEqual(rowProviders(byNaturalness), [agora, pipecat, livekit]);
    const ascending = await (await app.request("/leaderboard?sort=naturalness&dir=asc")).text();
    assert.deepEqual(rowProviders(ascending), [agora, pipecat, livekit], "— sorts last in both directions");
    assert.match(ascending, /data-metric="naturalness">—</);

    const regions = await (await app.request("/leaderboard?view=regions&sort=response&dir=desc")).text();
    assert.deepEqual(rowProviders(regions), [pipecat, agora, agora, livekit, livekit]);
    assertNothingPrivate(regions, "/leaderboard?view=regions");

    const us = await (await app.request("/leaderboard?region=us&days=7")).text();
    assert.deepEqual(rowProviders(us), [agora, livekit]);
    const none = await (await app.request("/leaderboard?region=ap-south")).text();
    assert.match(none, /No mainline results in this period/);
  },
);

Deno.test(
  "GET /leaderboard/provider/:id shows a provider's numbers per region; unknown or private ones are 404",
  async () => {
    const { app } = await createTestApp(sql);
    const res = await app.request(`/leaderboard/provider/${agora}?days=30`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
    const html = await res.text();
    assert.match(html, /Agora ConvoAI Engine/);
    assert.match(html, /data-island="line_chart"/);
    const rows = [
      ...html.matchAll(
        /<tr data-region="([a-z]+)"><td>[a-z]+<\/td><td class="num" data-metric="response">(\d+)</g,
      ),
    ]
      .map((m) => [m[1], m[2]]);
    assert.deepEqual(rows, [["eu", "600"], ["us", "900"]]);
    assertNothingPrivate(html, "provider page");
    assert.equal((await app.request(`/leaderboard/provider/${hidden}`)).status, 404);
    assert.equal((await app.request("/leaderboard/provider/zzzzzzzzzzzz")).status, 404);
  },
);

// ---------------------------------------------------------------- in Chromium

async function openPage(baseUrl: string, path: string, browser: Awaited<ReturnType<typeof launchBrowser>>) {
  const page = await browser.browser.newPage();
  await page.setViewport({ width: 1280, height: 900 });
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  await page.goto(`${baseUrl}${path}`);
  return { page, errors };
}

function waitFor<T>(page: Page, fn: (arg: T) => boolean, arg: T, timeout = 15_000) {
  return page.waitForFunction(fn as never, { timeout }, arg);
}

/** What a chart drew: its lines and how many points each has. */
async function drawn(page: Page, label: string): Promise<{ label: string; points: number }[]> {
  const raw = await page.$eval(`canvas[aria-label="${label}"]`, (c) => c.getAttribute("data-drawn"));
  return raw ? JSON.parse(raw) : [];
}

const cardText = (page: Page, providerId: string, metric: string) =>
  page.$eval(
    `.provider-card[data-provider="${providerId}"] [data-metric="${metric}"]`,
    (el) => el.firstChild?.textContent ?? "",
  ).catch(() => null);

Deno.test(
  "/realtime in Chromium: charts per provider, region and range change the data, new results arrive live",
  async () => {
    await using _restored = await restoreResults(sql);
    const server = await startOrchServer(sql);
    const browser = await launchBrowser();
    try {
      const { page, errors } = await openPage(server.baseUrl, "/realtime", browser);
      await page.waitForSelector('[data-island="realtime_charts"][data-hydrated="true"]', {
        timeout: 15_000,
      });
      const RESPONSE = "Response latency per provider over time";
      const INTERRUPT = "Interrupt latency per provider over time";
      await page.waitForSelector(`canvas[aria-label="${RESPONSE}"][data-drawn]`, { timeout: 15_000 });
      await page.waitForSelector(`canvas[aria-label="${INTERRUPT}"][data-drawn]`, { timeout: 15_000 });
      const lines = await drawn(page, RESPONSE);
      for (const name of ["Agora ConvoAI Engine", "LiveKit Agents", "Pipecat Cloud"]) {
        assert.ok(lines.find((l) => l.label === name)!.points > 0, `${name} has a response line`);
        assert.ok(lines.find((l) => l.label === `${name} p90`)!.points > 0, `${name} has a p90 line`);
      }
      const interrupts = Object.fromEntries((await drawn(page, INTERRUPT)).map((l) => [l.label, l.points]));
      assert.ok(interrupts["Agora ConvoAI Engine"] > 0 && interrupts["LiveKit Agents"] > 0);
      assert.equal(interrupts["Pipecat Cloud"], undefined, "Pipecat measured no interruptions");
      const box = await page.$eval(
        `canvas[aria-label="${RESPONSE}"]`,
        (c) => [c.clientWidth, c.clientHeight],
      );
      assert.ok(box[0] > 300 && box[1] > 100, `the canvas is laid out: ${box}`);
      assert.equal(await cardText(page, agora, "response"), "700", "hydration keeps the server's numbers");

      // Region filter: fetched from the API, no navigation.
      await page.evaluate(() => (globalThis as unknown as { marker: number }).marker = 42);
      await page.select('select[name="region"]', "us");
      await waitFor(page, (id) => {
        const el = document.querySelector(`.provider-card[data-provider="${id}"] [data-metric="response"]`);
        return el?.firstChild?.textContent === "900";
      }, agora);
      assert.equal(await page.$$eval(".provider-card", (els) => els.length), 2);
      assert.equal(await cardText(page, livekit, "response"), "600");
      assert.match(page.url(), /region=us/);

      // Range: the last hour of all regions.
      await page.select('select[name="region"]', "");
      await page.click('[data-range="1h"]');
      await waitFor(page, (id) => {
        const el = document.querySelector(`.provider-card[data-provider="${id}"] [data-metric="results"]`);
        return el?.textContent === "2";
      }, agora);
      assert.equal(await cardText(page, agora, "response"), "600");
      assert.match(page.url(), /range=1h/);
      assert.ok(!page.url().includes("region="));

      // Live: a private result, then a mainline one, stored while the page is open.
      await waitFor(
        page,
        () => document.querySelector('[data-testid="live-mode"]')?.getAttribute("data-mode") === "live",
        null,
      );
      const before = (await drawn(page, RESPONSE)).find((l) => l.label === "Agora ConvoAI Engine")!.points;
      await store(pairs.hidden, "eu", PRIVATE_MS);
      await store(pairs.agora, "eu", 800, { metrics: agoraScores });
      await waitFor(page, (id) => {
        const el = document.querySelector(`.provider-card[data-provider="${id}"] [data-metric="results"]`);
        return el?.textContent === "3";
      }, agora);
      assert.equal(await cardText(page, agora, "response"), "667", "(500 + 700 + 800) / 3");
      await waitFor(page, ([label, want]) => {
        const raw = document.querySelector(`canvas[aria-label="${label}"]`)?.getAttribute("data-drawn");
        const line = raw &&
          JSON.parse(raw).find((l: { label: string }) => l.label === "Agora ConvoAI Engine");
        return !!line && line.points === want;
      }, [RESPONSE, before + 1] as const);
      assert.equal(
        await page.evaluate(() => (globalThis as unknown as { marker: number }).marker),
        42,
        "no reload",
      );
      assertNothingPrivate(await page.content(), "live /realtime");
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
      await server.stop();
    }
  },
);

Deno.test(
  "/leaderboard in Chromium: sorting reorders rows, filters refetch, a provider's detail opens on click",
  async () => {
    const server = await startOrchServer(sql);
    const browser = await launchBrowser();
    try {
      const { page, errors } = await openPage(server.baseUrl, "/leaderboard", browser);
      await page.waitForSelector('[data-island="leaderboard_table"][data-hydrated="true"]', {
        timeout: 15_000,
      });
      const order = () =>
        page.$$eval(
          '[data-testid="rank-table"] tbody tr',
          (rows) => rows.map((r) => r.getAttribute("data-provider")),
        );
      const waitOrder = (ids: string[]) =>
        waitFor(page, (want) => {
          const got = [...document.querySelectorAll('[data-testid="rank-table"] tbody tr')]
            .map((r) => r.getAttribute("data-provider"));
          return JSON.stringify(got) === JSON.stringify(want);
        }, ids);
      // A board per product type: ConvoAI (agora, pipecat), then RTC (livekit).
      assert.deepEqual(await order(), [agora, pipecat, livekit]);

      await page.click('[data-sort="naturalness"]');
      await waitOrder([agora, pipecat, livekit]);
      assert.match(page.url(), /sort=naturalness&dir=desc/);
      await page.click('[data-sort="naturalness"]');
      await waitOrder([agora, pipecat, livekit]);
      await page.click('[data-sort="interrupt"]');
      await waitOrder([agora, pipecat, livekit]);
      await page.click('[data-sort="interrupt"]');
      await waitOrder([agora, pipecat, livekit]);
      await page.click('[data-sort="results"]');
      await waitOrder([agora, pipecat, livekit]);
      // The product-type filter shows one board.
      await page.select('select[name="productType"]', "rtc");
      await waitOrder([livekit]);
      assert.match(page.url(), /productType=rtc/);
      await page.select('select[name="productType"]', "");
      await waitOrder([agora, pipecat, livekit]);

      await page.click('[data-view="regions"]');
      await waitFor(
        page,
        () => document.querySelectorAll('[data-testid="rank-table"] tbody tr').length === 5,
        null,
      );
      await page.select('select[name="region"]', "us");
      await waitFor(
        page,
        () => document.querySelectorAll('[data-testid="rank-table"] tbody tr').length === 2,
        null,
      );
      await page.select('select[name="region"]', "");
      await waitFor(
        page,
        () => document.querySelectorAll('[data-testid="rank-table"] tbody tr').length === 5,
        null,
      );

      await page.click(`tr[data-provider="${agora}"] .provider-link`);
      await page.waitForSelector(`[data-testid="provider-detail"][data-provider="${agora}"]`, {
        timeout: 15_000,
      });
      const regionRows = await page.$$eval(
        '[data-testid="provider-regions"] tbody tr',
        (rows) =>
          rows.map((
            r,
          ) => [r.getAttribute("data-region"), r.querySelector('[data-metric="response"]')!.textContent]),
      );
      // Figures as the API computes them (the live test before this one added a result).
      const expected = (await leaderboard(sql, { days: 30 })).entries
        .filter((e) => e.providerId === agora)
        .map((e) => [e.region, fmtMs(e.responseLatency.mean)]);
      assert.equal(expected.length, 2);
      assert.deepEqual(regionRows.sort(), expected.sort());
      const detail = '[data-testid="provider-detail"] canvas[data-drawn]';
      await page.waitForSelector(detail, { timeout: 15_000 });
      const trend = JSON.parse(
        await page.$eval(detail, (c) => c.getAttribute("data-drawn")!),
      );
      assert.deepEqual(
        trend.map((l: { label: string }) => l.label),
        ["eu", "us"],
      );
      assert.ok(trend.every((l: { points: number }) => l.points > 0));
      assertNothingPrivate(await page.content(), "/leaderboard in the browser");

      const other = await openPage(server.baseUrl, `/leaderboard/provider/${livekit}`, browser);
      await other.page.waitForSelector('[data-island="line_chart"][data-hydrated="true"]', {
        timeout: 15_000,
      });
      await other.page.waitForSelector("canvas[data-drawn]", { timeout: 15_000 });
      assert.deepEqual(errors, []);
      assert.deepEqual(other.errors, []);
    } finally {
      await browser.close();
      await server.stop();
    }
  },
);

Deno.test("/realtime without a live stream on the server falls back to a slow refresh", async () => {
  const { app } = await createTestApp(sql);
  const server = Deno.serve({ port: 0, hostname: "127.0.0.1", onListen: () => {} }, app.fetch);
  const browser = await launchBrowser();
  try {
    const { page, errors } = await openPage(`http://127.0.0.1:${server.addr.port}`, "/realtime", browser);
    await page.waitForSelector('[data-island="realtime_charts"][data-hydrated="true"]', { timeout: 15_000 });
    const mode = await page.$eval(
      '[data-testid="live-mode"]',
      (el) => [el.getAttribute("data-mode"), el.textContent],
    );
    assert.deepEqual(mode, ["polling", "Refreshing every minute"]);
    await page.waitForSelector("canvas[data-drawn]", { timeout: 15_000 });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    await server.shutdown();
  }
});

Deno.test("foldResult() places a live result exactly where the rollup puts it", async () => {
  await using _restored = await restoreResults(sql);
  const to = new Date(Date.now() + 60_000);
  const from = new Date(to.getTime() - HOUR);
  const names = SEEDED_PROVIDERS.map((p) => ({ id: p.id, name: p.name }));
  const data = (series: Awaited<ReturnType<typeof realtime>>): RealtimeData => ({
    from: from.toISOString(),
    to: to.toISOString(),
    bucket: "minute",
    series,
  });
  const before = data(await realtime(sql, { from, to, bucket: "minute" }));
  const jobId = await store(pairs.livekit, "ap-south", 321, { metrics: livekitScores });
  const [r] = await sql`SELECT * FROM eval_results WHERE job_id = ${jobId}`;
  const event: ResultEvent = {
    resultId: Number(r.id),
    jobId,
    providerId: r.providerId,
    region: r.region,
    createdAt: (r.createdAt as Date).toISOString(),
    responseLatency: r.responseLatencyMedian,
    interruptLatency: r.interruptLatencyMedian,
    networkResilience: r.networkResilience,
    naturalness: r.naturalness,
    noiseReduction: r.noiseReduction,
  };
  const folded = foldResult(before, event, names)!;
  await rollUpResults(sql);
  const after = data(await realtime(sql, { from, to, bucket: "minute" }));
  const shape = (d: RealtimeData) =>
    d.series.flatMap((s) =>
      s.points.map((
        p,
      ) => [s.providerId, s.region, p.t, p.results, p.responseLatency.mean, p.interruptLatency.mean])
    ).sort();
  assert.deepEqual(shape(folded), shape(after));
  assert.equal(
    foldResult(before, { ...event, createdAt: "2000-01-01T00:00:00Z" }, names),
    null,
    "out of range",
  );
  assert.equal(
    foldResult(before, { ...event, providerId: hidden }, names),
    null,
    "a provider without a name",
  );
});
