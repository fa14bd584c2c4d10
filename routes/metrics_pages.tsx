import { Hono } from "hono";
import { regionSchema } from "../agent/protocol.ts";
import {
  bucketFor,
  DEFAULT_PERIOD,
  DEFAULT_RANGE,
  DEFAULT_SORT,
  defaultDir,
  isSortKey,
  type LeaderboardView,
  PERIODS,
  providerColor,
  type ProviderRef,
  type RangeKey,
  RANGES,
  type RealtimeData,
  trendDatasets,
  trendWindow,
} from "../components/metrics_view.ts";
import { ProviderDetail } from "../components/provider_detail.tsx";
import { verifiedProviders } from "../lib/orgs.ts";
import LeaderboardTable from "../islands/leaderboard_table.tsx";
import LineChart from "../islands/line_chart.tsx";
import RealtimeCharts from "../islands/realtime_charts.tsx";
import type { AppDeps, AppEnv } from "../lib/context.ts";
import { Island } from "../lib/islands/marker.tsx";
import { discards, listExclusions } from "../lib/board_exclusions.ts";
import { leaderboard, realtime } from "../lib/metrics.ts";
import { getProvider, PRODUCT_TYPES, type ProductType } from "../lib/providers.ts";
import { receiptRows } from "../lib/receipts.ts";
import { BoardAccountability } from "../components/board_accountability.tsx";
import { renderPage } from "./_render.tsx";

// How far back the filters look for regions and providers to offer.
const KNOWN_DAYS = 365;
// The provider page lists this many receipts; the receipts API has the rest.
const LATEST_RECEIPTS = 10;

function regionParam(v: string | undefined): string | null {
  return v && regionSchema.safeParse(v).success ? v : null;
}

function productTypeParam(v: string | undefined): ProductType | null {
  return (PRODUCT_TYPES as readonly string[]).includes(v ?? "") ? v as ProductType : null;
}

function methodParam(v: string | undefined): string | null {
  return v && /^[0-9a-f]{12}$/.test(v) ? v : null;
}

function periodParam(v: string | undefined): number {
  const n = Number(v);
  return (PERIODS as readonly number[]).includes(n) ? n : DEFAULT_PERIOD;
}

/** `/realtime`, `/leaderboard` and `/leaderboard/provider/:id`: the public boards, mainline data only. */
export function metricsPageRoutes(deps: AppDeps) {
  const app = new Hono<AppEnv>();

  // Regions and providers with mainline results in the last year, for the filters and for
  // colours that stay the same across pages. Only mainline data, so private products never
  // show up here.
  async function known(): Promise<{ regions: string[]; providers: ProviderRef[] }> {
    const [lb, verified] = await Promise.all([
      leaderboard(deps.sql, { days: KNOWN_DAYS }),
      verifiedProviders(deps.sql),
    ]);
    const regions = [...new Set(lb.entries.map((e) => e.region!))].sort();
    const providers = [...lb.providers]
      .sort((a, b) => a.sku - b.sku || (a.providerName < b.providerName ? -1 : 1))
      .map((p) => ({
        id: p.providerId,
        name: p.providerName,
        verifiedOrganization: verified.get(p.providerId) ?? null,
      }));
    return { regions, providers };
  }

  app.get("/realtime", async (c) => {
    const r = c.req.query("range");
    const range: RangeKey = r && r in RANGES ? r as RangeKey : DEFAULT_RANGE;
    const region = regionParam(c.req.query("region"));
    const to = new Date();
    const from = new Date(to.getTime() - RANGES[range].ms);
    const bucket = bucketFor(to.getTime() - from.getTime());
    const [series, k] = await Promise.all([realtime(deps.sql, { from, to, bucket, region }), known()]);
    const data: RealtimeData = { from: from.toISOString(), to: to.toISOString(), bucket, series };
    const regions = region && !k.regions.includes(region) ? [...k.regions, region].sort() : k.regions;
    return renderPage(c, deps, {
      title: "Realtime",
      body: (
        <>
          <div class="page-head">
            <h1>Realtime latency</h1>
            <p class="lead">
              How fast each voice-agent platform answers, and how fast it stops when interrupted, measured by
              mainline evaluations and updated as they land. Times are UTC.
            </p>
          </div>
          <Island
            name="realtime_charts"
            component={RealtimeCharts}
            props={{ range, region, regions, providers: k.providers, data, live: !!deps.orchestrator }}
          />
        </>
      ),
    });
  });

  app.get("/leaderboard", async (c) => {
    const days = periodParam(c.req.query("days"));
    const region = regionParam(c.req.query("region"));
    const s = c.req.query("sort");
    const sort = isSortKey(s) ? s : DEFAULT_SORT;
    const d = c.req.query("dir");
    const dir = d === "asc" || d === "desc" ? d : defaultDir(sort);
    const view: LeaderboardView = c.req.query("view") === "regions" ? "regions" : "providers";
    const productType = productTypeParam(c.req.query("productType"));
    const method = methodParam(c.req.query("method"));
    const [data, k] = await Promise.all([
      leaderboard(deps.sql, { days, region, productType, method }),
      known(),
    ]);
    return renderPage(c, deps, {
      title: "Leaderboard",
      body: (
        <>
          <div class="page-head">
            <h1>Leaderboard</h1>
            <p class="lead">
              Mainline rankings of voice-agent platforms by provider and region. Sort by any metric; click a
              provider for its numbers per region and its trend.
            </p>
          </div>
          <Island
            name="leaderboard_table"
            component={LeaderboardTable}
            props={{
              days,
              region,
              regions: k.regions,
              providers: k.providers,
              data,
              sort,
              dir,
              view,
              productType,
              method,
            }}
          />
        </>
      ),
    });
  });

  app.get("/leaderboard/provider/:id", async (c) => {
    const id = c.req.param("id");
    const days = periodParam(c.req.query("days"));
    const method = methodParam(c.req.query("method"));
    const [board, k, excluded, discarded] = await Promise.all([
      leaderboard(deps.sql, { days, method }),
      known(),
      listExclusions(deps.sql, id, days),
      discards(deps.sql, id, days),
    ]);
    const total = board.providers.find((p) => p.providerId === id) ?? null;
    const ref = k.providers.find((p) => p.id === id);
    // Only providers with mainline results have a public page.
    if (!ref && !total && excluded.length === 0) return c.notFound();
    const provider = await getProvider(deps.sql, id);
    if (!provider) return c.notFound();
    const latest = board.method
      ? await receiptRows(deps.sql, {
        providerId: id,
        days,
        methodId: board.method.id,
        newest: LATEST_RECEIPTS,
      })
      : [];
    const sku = provider.sku;
    const w = trendWindow(days);
    const series = await realtime(deps.sql, {
      from: new Date(w.from),
      to: new Date(w.to),
      bucket: w.bucket,
      providerId: id,
    });
    const name = total?.providerName ?? ref?.name ?? provider.name;
    const regions = board.entries.filter((e) => e.providerId === id)
      .sort((a, b) => (a.region! < b.region! ? -1 : 1));
    return renderPage(c, deps, {
      title: name,
      body: (
        <>
          <p class="crumbs">
            <a href={`/leaderboard?days=${days}`}>Leaderboard</a> <span aria-hidden="true">›</span> {name}
          </p>
          <nav class="seg period-links" aria-label="Period">
            {PERIODS.map((p) => (
              <a
                key={p}
                href={`/leaderboard/provider/${id}?days=${p}`}
                class={p === days ? "on" : undefined}
                aria-current={p === days ? "page" : undefined}
              >
                {p === 1 ? "Today" : `${p} days`}
              </a>
            ))}
          </nav>
          <ProviderDetail
            provider={{ id, name, sku, verifiedOrganization: provider.verifiedOrganization }}
            total={total}
            regions={regions}
            days={days}
            color={providerColor(id, k.providers)}
            chart={
              <Island
                name="line_chart"
                component={LineChart}
                props={{
                  label: `${name} response latency per region`,
                  unit: "ms",
                  bucket: w.bucket,
                  xMin: w.from,
                  xMax: w.to,
                  datasets: trendDatasets({
                    from: new Date(w.from).toISOString(),
                    to: new Date(w.to).toISOString(),
                    bucket: w.bucket,
                    series,
                  }),
                  height: 240,
                }}
              />
            }
          />
          <BoardAccountability
            providerId={id}
            days={days}
            total={total}
            method={board.method}
            methods={board.methods}
            minTurns={board.minTurns}
            exclusions={excluded}
            discards={discarded.byReason}
            latest={latest}
          />
        </>
      ),
    });
  });

  return app;
}
