// The README's benchmark table, rendered from bench/results.json so the two cannot disagree:
// `deno task bench:table` prints it, `--write` puts it between the README's markers, and
// tests/bench_table_test.ts fails when the README holds anything else.
import { fileURLToPath } from "node:url";

type Figures = Record<string, unknown>;

export const BEGIN = "<!-- bench:table (deno task bench:table --write; from bench/results.json) -->";
export const END = "<!-- /bench:table -->";

const num = (v: unknown): number | null => typeof v === "number" && Number.isFinite(v) ? v : null;
const at = (o: unknown, ...path: string[]): unknown =>
  path.reduce<unknown>((v, k) => (v && typeof v === "object" ? (v as Figures)[k] : undefined), o);

/** A figure with thousands separators and at most `digits` decimals; "—" when not measured. */
function f(v: unknown, digits = 2): string {
  const n = num(v);
  if (n === null) return "—";
  return n.toLocaleString("en-US", { maximumFractionDigits: digits });
}
const pair = (a: unknown, b: unknown, unit: string) =>
  num(a) === null && num(b) === null ? "—" : `${f(a)} / ${f(b)} ${unit}`;

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  return [line(header), `| ${widths.map((w) => "-".repeat(w)).join(" | ")} |`, ...rows.map(line)].join("\n");
}

/** The markdown tables (queue peers, HTTP, then Vox against its own baselines) of one bench run. */
export function renderBenchTable(r: Figures): string {
  const gw = (k: string) => at(r, "peers", "graphile_worker", k);
  const pb = (k: string) => at(r, "peers", "pg_boss", k);
  const ratio = (k: string) => f(at(r, "ratios", k, "value"));
  const queue = table(
    ["measurement", "Vox", "graphile-worker", "pg-boss", "raw SQL, same run", "Vox ÷ peer / raw", "goal"],
    [
      [
        "job inserted → at the worker, idle workers, p50 / p99",
        pair(r.dispatch_p50_ms, r.dispatch_p99_ms, "ms"),
        pair(gw("dispatch_p50_ms"), gw("dispatch_p99_ms"), "ms"),
        pair(pb("dispatch_p50_ms"), pb("dispatch_p99_ms"), "ms"),
        `insert + NOTIFY → claim ${pair(r.raw_notify_claim_p50_ms, r.raw_notify_claim_p99_ms, "ms")}`,
        `${ratio("dispatch_p50_over_graphile_worker")} / ${ratio("dispatch_p50_over_pg_boss")} / ${
          ratio("dispatch_p50_over_raw_notify_claim")
        }`,
        "p50 ≤ graphile-worker's",
      ],
      [
        "insert → start → complete from a backlog, jobs/s",
        f(r.throughput_jobs_per_s, 0),
        f(gw("jobs_per_s"), 0),
        f(pb("jobs_per_s"), 0),
        `claim + complete ${f(r.raw_claim_complete_per_s, 0)}`,
        `${ratio("throughput_over_graphile_worker")} / ${ratio("throughput_over_pg_boss")} / ${
          ratio("throughput_over_raw_claim_complete")
        }`,
        "≥ pg-boss; ≥ 0.5 of raw",
      ],
    ],
  );
  const http = (k: string, field: string) => at(r, "http", k, field);
  const js = at(r, "http", "page_javascript") as Record<string, { gzip_bytes?: number }> | undefined;
  const jsRow = js
    ? Object.entries(js).map(([page, v]) => `${page} ${f((num(v?.gzip_bytes) ?? NaN) / 1024, 1)}`).join(", ")
    : "—";
  const httpTable = table(
    ["measurement", "Vox", "bare Hono, same run", "ratio", "goal"],
    [
      [
        "`GET /api/v1/jobs/:id` with an API key, req/s",
        f(http("job_by_api_key", "requests_per_s"), 0),
        f(http("bare_hono", "requests_per_s"), 0),
        ratio("job_route_over_bare_hono"),
        "≥ 0.3",
      ],
      [
        "`GET /api/v1/metrics/leaderboard` (public JSON), req/s",
        f(http("leaderboard_json", "requests_per_s"), 0),
        f(http("bare_hono", "requests_per_s"), 0),
        ratio("leaderboard_json_over_bare_hono"),
        "for reference",
      ],
      [
        "`/leaderboard` page, time to first byte p50 / p99",
        pair(http("ttfb_leaderboard", "p50_ms"), http("ttfb_leaderboard", "p99_ms"), "ms"),
        "",
        "",
        "",
      ],
      [
        "`/realtime` page, time to first byte p50 / p99",
        pair(http("ttfb_realtime", "p50_ms"), http("ttfb_realtime", "p99_ms"), "ms"),
        "",
        "",
        "",
      ],
      ["JavaScript per page, KB gzip", jsRow, "", "", ""],
    ],
  );
  const own = table(
    ["measurement", "Vox", "baseline, same run", "ratio", "goal"],
    [
      [
        "RSS per idle agent, 10,000 agents heartbeating",
        `${f(r.rss_per_agent_kb, 1)} KB`,
        `bare \`Deno.upgradeWebSocket\` ${f(r.raw_rss_per_socket_kb, 1)} KB`,
        f(r.rss_ratio),
        "≤ 1.5",
      ],
      [
        "heartbeat → `last_seen_at` visible, max",
        `${f(r.last_seen_visible_max_ms, 0)} ms`,
        "",
        "",
        "≤ 2,000 ms",
      ],
      [
        "leaderboard (30 days) from rollups, p50 / p99",
        pair(r.leaderboard_p50_ms, r.leaderboard_p99_ms, "ms"),
        `computed on read ${f(r.leaderboard_on_read_p50_ms, 0)} ms`,
        `${f(r.leaderboard_speedup, 0)}× faster`,
        "p99 ≤ 20 ms",
      ],
      [
        "realtime (24 h, hourly) from rollups, p50 / p99",
        pair(r.realtime_p50_ms, r.realtime_p99_ms, "ms"),
        `computed on read ${f(r.realtime_on_read_p50_ms, 0)} ms`,
        `${f(r.realtime_speedup, 0)}× faster`,
        "p99 ≤ 20 ms",
      ],
      [
        "a new result → 1,000 dashboard streams, p50 / p99",
        pair(r.push_p50_ms, r.push_p99_ms, "ms"),
        "",
        "",
        "p99 ≤ 250 ms",
      ],
    ],
  );
  const scale = r.scale as Figures | undefined;
  const setting = scale
    ? `${f(scale.dispatchAgents)} idle agents/workers for latency; ${
      f(scale.throughputAgents)
    } concurrent through a backlog (Vox ${f(scale.backlog)}, peers ${f(scale.peerBacklog)} jobs); ${
      f(scale.httpConcurrency)
    } HTTP clients; pages over ${f(scale.results)} results`
    : "";
  return [
    `Measured ${String(r.measured_at ?? "?").slice(0, 10)}${r.quick ? " (quick run)" : ""}: ${setting}.`,
    "",
    queue,
    "",
    httpTable,
    "",
    own,
  ].join("\n");
}

/** The README with its bench table section replaced by `rendered`. */
export function replaceSection(readme: string, rendered: string): string {
  const a = readme.indexOf(BEGIN);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error(`README.md has no ${BEGIN} … ${END} section`);
  return `${readme.slice(0, a + BEGIN.length)}\n\n${rendered}\n\n${readme.slice(b)}`;
}

if (import.meta.main) {
  const root = fileURLToPath(new URL("..", import.meta.url));
  const results = JSON.parse(await Deno.readTextFile(`${root}bench/results.json`));
  const rendered = renderBenchTable(results);
  if (Deno.args.includes("--write")) {
    const readme = await Deno.readTextFile(`${root}README.md`);
    await Deno.writeTextFile(`${root}README.md`, replaceSection(readme, rendered));
    console.log("README.md: bench table written from bench/results.json");
  } else console.log(rendered);
}
