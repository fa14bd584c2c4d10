// How sure the public numbers are (issue 13): n and a 95 % interval on every figure, no rank
// below the minimum n, ties where intervals overlap, a board per product type, and figures
// of different method versions never pooled. The interval is checked against a reference
// computation (SciPy's t interval on the same values).
import assert from "node:assert/strict";
import type { RunReport } from "../agent/protocol.ts";
import { METHODS } from "../agent/report.ts";
import { meanInterval, tiedRanks, tQuantile } from "../lib/board_stats.ts";
import { DEMO } from "../lib/demo.ts";
import { METHOD_NOTES } from "../lib/method_transparency.ts";
import { completeJob } from "../lib/job_completer.ts";
import { leaderboard, realtime, rebuildRollups, rollUpResults } from "../lib/metrics.ts";
import { claimJobs, createJob } from "../lib/queue.ts";
import { createTestApp } from "./_app.ts";
import { createTestDatabase, setSetting } from "./_db.ts";
import { insertEvalPair } from "./_orch.ts";

const db = await createTestDatabase();
const sql = db.sql;
Deno.test.afterAll(() => db.close());
const { app } = await createTestApp(sql);
const [{ id: tokenId }] = await sql`
  INSERT INTO eval_agent_tokens (name, region, token_hash, display_prefix)
  VALUES ('ci', 'ci', ${"c".repeat(64)}, 'x') RETURNING id`;

async function provider(name: string, sku: number): Promise<string> {
  const [p] =
    await sql`INSERT INTO providers (name, sku, curated) VALUES (${name}, ${sku}, true) RETURNING id`;
  return p.id;
}

function report(median: number, turns: number, methods: Record<string, string>): RunReport {
  return {
    metrics: {
      response_latency: { median, sd: 10, p90: median + 20, n: turns },
      interrupt_latency: { median: null, sd: null, p90: null, n: 0 },
      network_resilience: null,
      noise_reduction: null,
      naturalness: null,
    },
    turns: [],
    methods,
  };
}

const V1 = { response_latency: "vox-audioclock-response/1", interrupt_latency: "vox-audioclock-interrupt/1" };

/** Stores one board result per median for `providerId` in `region` (a principal's mainline pair). */
async function results(
  providerId: string,
  region: string,
  medians: number[],
  opts: { turns?: number; methods?: Record<string, string> } = {},
): Promise<void> {
  const pair = await insertEvalPair(sql, { mainline: true, providerId });
  for (const m of medians) {
    const [agent] = await sql`
      INSERT INTO eval_agents (token_id, name, region) VALUES (${tokenId}, ${crypto.randomUUID()}, ${region})
      RETURNING id`;
    const job = await createJob(sql, { ...pair, region });
    await claimJobs(sql, region, [{ agentId: agent.id }]);
    const out = await completeJob(sql, job.id, agent.id, report(m, opts.turns ?? 30, opts.methods ?? V1));
    assert.ok(out.ok);
  }
  await rollUpResults(sql);
}

// The reference: scipy.stats.t.interval(0.95, 11, loc=mean, scale=sem(x)) for these 12 values
// (SciPy 1.17.1), and scipy.stats.t.ppf(0.975, df).
const SEEDED = [812.5, 790.25, 845.0, 770.75, 802.0, 833.5, 798.0, 781.25, 826.75, 809.5, 795.0, 850.25];
const REFERENCE = { mean: 809.5625, lo: 793.6814169290429, hi: 825.4435830709571 };
const T975: [number, number][] = [[1, 12.706204736174694], [4, 2.7764451051977934], [9, 2.262157162798205], [
  29,
  2.045229642132703,
], [99, 1.9842169515864174]];

Deno.test("the 95 % interval of a seeded distribution matches the reference computation", async () => {
  for (const [df, t] of T975) assert.ok(Math.abs(tQuantile(0.975, df) - t) < 1e-9, `t(0.975, ${df})`);
  // Asked again (the cached answer) and from the other tail: the same figures.
  for (const [df, t] of T975) {
    assert.equal(tQuantile(0.975, df), tQuantile(0.975, df));
    assert.ok(Math.abs(tQuantile(0.025, df) + t) < 1e-9, `t(0.025, ${df})`);
  }
  const sum = SEEDED.reduce((a, b) => a + b, 0);
  const sumsq = SEEDED.reduce((a, b) => a + b * b, 0);
  const ci = meanInterval(SEEDED.length, sum, sumsq)!;
  assert.ok(
    Math.abs(ci.lo - REFERENCE.lo) < 1e-6 && Math.abs(ci.hi - REFERENCE.hi) < 1e-6,
    JSON.stringify(ci),
  );
  assert.equal(meanInterval(1, 800, 640_000), null, "no interval from one job");

  // The same values as per-job medians through the rollups: the published interval is the reference.
  const p = await provider("Seeded Co", 0);
  await results(p, "seeded", SEEDED, { turns: 10 });
  const lb = await leaderboard(sql, { days: 1, region: "seeded" });
  const e = lb.providers.find((x) => x.providerId === p)!;
  assert.equal(e.responseLatency.mean, Math.round(REFERENCE.mean * 100) / 100);
  assert.deepEqual(e.responseLatency.ci95, {
    lo: Math.round(REFERENCE.lo * 100) / 100,
    hi: Math.round(REFERENCE.hi * 100) / 100,
  });
  assert.equal(e.responseLatency.n, 12);
  assert.equal(e.responseLatency.turns, 120);
  assert.deepEqual(lb, await leaderboard(sql, { days: 1, region: "seeded", onRead: true }));
});

Deno.test("tiedRanks: overlapping intervals share a rank; the unranked get none", () => {
  const iv = (lo: number, hi: number) => ({ value: (lo + hi) / 2, interval: { lo, hi }, eligible: true });
  assert.deepEqual(
    tiedRanks([iv(100, 120), iv(110, 130), iv(200, 220), { ...iv(10, 20), eligible: false }]),
    [{ rank: 1, tied: true }, { rank: 1, tied: true }, { rank: 3, tied: false }, { rank: null, tied: false }],
  );
});

Deno.test("below the minimum n a provider is listed, not ranked; overlapping providers share a rank; ConvoAI and RTC are separate boards", async () => {
  await setSetting(sql, "boards.min_turns", 100);
  const fast = await provider("Fast Co", 0);
  const twin = await provider("Twin Co", 0);
  const slow = await provider("Slow Co", 0);
  const thin = await provider("Thin Co", 0);
  const rtc = await provider("Wire Co", 1);
  await results(fast, "rank", [500, 510, 490, 505, 495]);
  await results(twin, "rank", [505, 515, 495, 510, 500]);
  await results(slow, "rank", [900, 910, 890, 905, 895]);
  // The fastest, but 2 jobs × 10 turns = 20 turns < 100.
  await results(thin, "rank", [300, 310], { turns: 10 });
  await results(rtc, "rank", [700, 720, 710, 705]);

  const lb = await leaderboard(sql, { days: 1, region: "rank" });
  assert.equal(lb.minTurns, 100);
  const row = (id: string) => lb.providers.find((e) => e.providerId === id)!;
  assert.deepEqual([row(fast).rank, row(fast).tied], [1, true]);
  assert.deepEqual([row(twin).rank, row(twin).tied], [1, true], "intervals overlap: a shared rank");
  assert.deepEqual([row(slow).rank, row(slow).tied], [3, false]);
  assert.deepEqual([row(thin).rank, row(thin).enoughData, row(thin).responseLatency.turns], [
    null,
    false,
    20,
  ]);
  assert.deepEqual([row(rtc).rank, row(rtc).productType], [1, "rtc"], "RTC is ranked on its own board");
  // Order: ConvoAI ranked, ConvoAI unranked, then RTC.
  assert.deepEqual(lb.providers.map((e) => e.providerId), [fast, twin, slow, thin, rtc]);

  const convo = await leaderboard(sql, { days: 1, region: "rank", productType: "convoai" });
  assert.ok(convo.providers.every((e) => e.productType === "convoai") && convo.providers.length === 4);
  const wire = await leaderboard(sql, { days: 1, region: "rank", productType: "rtc" });
  assert.deepEqual(wire.providers.map((e) => e.providerId), [rtc]);

  // The API carries the same fields; the page shows n, the interval, ties and "not enough data".
  const res = await app.request("/api/v1/metrics/leaderboard?days=1&region=rank&productType=convoai");
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.deepEqual(body, JSON.parse(JSON.stringify(convo)));
  assert.equal((await app.request("/api/v1/metrics/leaderboard?productType=fax")).status, 400);
  const page = await (await app.request("/leaderboard?days=1&region=rank")).text();
  assert.match(page, /not enough data/i);
  assert.match(page, /=1/, "a tied rank is marked");
  assert.match(page, /ConvoAI engines/);
  assert.match(page, /RTC engines/);

  // Raising the minimum unranks everyone.
  await setSetting(sql, "boards.min_turns", 1000);
  const strict = await leaderboard(sql, { days: 1, region: "rank" });
  assert.ok(strict.providers.every((e) => e.rank === null));
  await setSetting(sql, "boards.min_turns", 100);
});

Deno.test("figures of different method versions are never pooled: the newest is shown, older on request", async () => {
  const p = await provider("Method Co", 0);
  const V2 = { ...V1, response_latency: "vox-audioclock-response/2" };
  await results(p, "methods", [800, 810, 790], { methods: V1 });
  await results(p, "methods", [400, 410, 390], { methods: V2 });
  const lb = await leaderboard(sql, { days: 1, region: "methods" });
  assert.equal(lb.methods.length, 2);
  assert.deepEqual(lb.method!.versions, V2);
  const e = lb.providers.find((x) => x.providerId === p)!;
  assert.deepEqual([e.results, e.responseLatency.mean], [3, 400], "only the newest method's results");
  const older = await leaderboard(sql, { days: 1, region: "methods", method: lb.methods[1].id });
  assert.deepEqual(older.method!.versions, V1);
  assert.equal(older.providers.find((x) => x.providerId === p)!.responseLatency.mean, 800);
  // Realtime series are per method set too.
  const from = new Date(Date.now() - 3_600_000);
  const to = new Date(Date.now() + 60_000);
  const series = await realtime(sql, { from, to, bucket: "hour", providerId: p });
  assert.equal(series.length, 1);
  assert.equal(series[0].methodId, lb.method!.id);
  assert.equal(series[0].points[0].responseLatency.mean, 400);
  assert.deepEqual(series, await realtime(sql, { from, to, bucket: "hour", providerId: p, onRead: true }));
  // A point carries the same certainty as a board row over the same results: jobs, turns and the
  // interval, through the REST API too.
  const point = series[0].points[0].responseLatency;
  assert.deepEqual([point.n, point.turns, point.ci95], [
    e.responseLatency.n,
    e.responseLatency.turns,
    e.responseLatency.ci95,
  ]);
  assert.ok(point.ci95 && point.ci95.lo <= 400 && point.ci95.hi >= 400, JSON.stringify(point));
  const api = await (await app.request(
    `/api/v1/metrics/realtime?providerId=${p}&region=methods&bucket=hour&from=${from.toISOString()}&to=${to.toISOString()}`,
  )).json();
  const viaApi = api.series[0].points[0].responseLatency;
  assert.deepEqual([viaApi.n, viaApi.turns, viaApi.ci95], [point.n, point.turns, point.ci95]);
  // Rollups keep the sets apart, and a rebuild reproduces them.
  const rows = async () => [
    ...await sql`SELECT * FROM eval_rollups ORDER BY bucket_size, provider_id, region, method_set, bucket`,
  ];
  const before = await rows();
  await rebuildRollups(sql);
  assert.deepEqual(await rows(), before);
  // The API names the method set of its figures.
  const body = await (await app.request("/api/v1/metrics/leaderboard?days=1&region=methods")).json();
  assert.equal(body.method.versions.response_latency, "vox-audioclock-response/2");
  const res = await app.request(
    `/api/v1/metrics/leaderboard?days=1&region=methods&method=${lb.methods[1].id}`,
  );
  assert.equal((await res.json()).method.versions.response_latency, "vox-audioclock-response/1");
});

Deno.test("/dive states how the numbers are computed: n, interval, minimum n, ties, versions, accuracy, blind check", async () => {
  await setSetting(sql, "boards.min_turns", 150);
  // The blind check reads the reference agent's latest board result.
  const demo = await provider(DEMO.provider, 0);
  await results(demo, "local", [900.25]);
  const html = await (await app.request("/dive")).text();
  assert.match(html, /data-testid="min-turns">150</);
  assert.match(html, /95 % confidence interval/);
  assert.match(html, /share a rank/);
  for (const [key, version] of Object.entries(METHODS)) {
    assert.match(
      html,
      new RegExp(`data-metric="${key}"[^]*?<code>${version.replace(/[./]/g, "\\$&")}</code>`),
    );
  }
  assert.match(html, /data-testid="dive-method">[^<]*response_latency vox-audioclock-response\/1/);
  assert.match(html, /answers 900[^]*?latest measurement is[^]*?900\.25 ms response/);
  assert.match(html, /deno task verify/);
  // Accuracy comes from the committed benchmark output, per output path, for both latencies.
  const rows = JSON.parse(await Deno.readTextFile("bench/accuracy.json")) as {
    path: string;
    kind: string;
    n: number;
    p50: number;
    p95: number;
  }[];
  assert.ok(rows.length >= 6, "bench/accuracy.json has the three paths' response and interrupt rows");
  for (const r of rows) {
    const row = new RegExp(`data-metric="${r.kind}_latency"[^]*?</tr>`).exec(html)?.[0] ?? "";
    const cell = `data-path="${r.path}">${r.path}: ${r.p50.toFixed(2)} ms / ${
      r.p95.toFixed(2)
    } ms (n = ${r.n})`;
    assert.ok(row.includes(cell), `${r.kind} on ${r.path}: ${cell}`);
  }
  // Each metric says what it does not capture.
  const entities: Record<string, string> = {
    "&#39;": "'",
    "&quot;": '"',
    "&amp;": "&",
    "&lt;": "<",
    "&gt;": ">",
  };
  const text = html.replace(/&(#39|quot|amp|lt|gt);/g, (e) => entities[e]);
  for (const note of METHOD_NOTES) {
    assert.ok(text.includes(note.notCaptured), `${note.key}: what it does not capture`);
  }
  await setSetting(sql, "boards.min_turns", 100);
});
