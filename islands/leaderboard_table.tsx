/// <reference lib="dom" />
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { Leaderboard } from "../lib/metrics.ts";
import type { ComponentChildren } from "preact";
import type { LeaderboardEntry } from "../lib/metrics.ts";
import { PRODUCT_TYPE_LABELS, PRODUCT_TYPES, type ProductType } from "../lib/providers.ts";
import { VerifiedBadge } from "../components/verified_badge.tsx";
import {
  DEFAULT_SORT,
  defaultDir,
  fmtCi,
  fmtMethods,
  fmtN,
  fmtRank,
  leaderboardQuery,
  type LeaderboardView,
  METRICS,
  PERIODS,
  providerColor,
  type ProviderRef,
  type RealtimeData,
  type SortDir,
  sortEntries,
  type SortKey,
  trendDatasets,
  trendWindow,
} from "../components/metrics_view.ts";
import { ProviderDetail } from "../components/provider_detail.tsx";
import LineChart from "./line_chart.tsx";

export interface LeaderboardProps {
  [key: string]: unknown;
  days: number;
  region: string | null;
  regions: string[];
  providers: ProviderRef[];
  data: Leaderboard;
  sort: SortKey;
  dir: SortDir;
  view: LeaderboardView;
  productType: ProductType | null;
  method: string | null;
}

/** Sortable rankings by provider or provider × region, with a detail panel per provider. */
export default function LeaderboardTable(props: LeaderboardProps) {
  const [days, setDays] = useState(props.days);
  const [region, setRegion] = useState(props.region);
  const [data, setData] = useState(props.data);
  const [sort, setSort] = useState(props.sort);
  const [dir, setDir] = useState(props.dir);
  const [view, setView] = useState(props.view);
  const [productType, setProductType] = useState(props.productType);
  const [method, setMethod] = useState(props.method);
  const [selected, setSelected] = useState<string | null>(null);
  const [trend, setTrend] = useState<RealtimeData | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const seq = useRef(0);
  const panel = useRef<HTMLDivElement>(null);

  const state = { days, region, sort, dir, view, productType, method };
  const url = (over: Partial<typeof state>) => `/leaderboard${leaderboardQuery({ ...state, ...over })}`;
  const remember = (over: Partial<typeof state>) => history.replaceState(null, "", url(over));

  async function load(d: number, reg: string | null, type = productType, m = method) {
    const n = ++seq.current;
    const q = new URLSearchParams({ days: String(d) });
    if (reg) q.set("region", reg);
    if (type) q.set("productType", type);
    if (m) q.set("method", m);
    setLoading(true);
    try {
      const res = await fetch(`/api/v1/metrics/leaderboard?${q}`);
      if (!res.ok) throw new Error(`the server answered ${res.status}`);
      const body = await res.json() as Leaderboard;
      if (n !== seq.current) return;
      setData(body);
      setError(null);
    } catch (err) {
      if (n === seq.current) setError(`Could not load the rankings: ${(err as Error).message}`);
    } finally {
      if (n === seq.current) setLoading(false);
    }
  }

  useEffect(() => {
    if (!selected) return;
    let stale = false;
    const w = trendWindow(days);
    const q = new URLSearchParams({
      from: new Date(w.from).toISOString(),
      to: new Date(w.to).toISOString(),
      bucket: w.bucket,
      providerId: selected,
    });
    if (region) q.set("region", region);
    setTrend(null);
    fetch(`/api/v1/metrics/realtime?${q}`)
      .then((res) => res.ok ? res.json() : null)
      .then((body) => !stale && setTrend(body as RealtimeData | null))
      .catch(() => {});
    return () => {
      stale = true;
    };
  }, [selected, days, region]);

  useEffect(() => {
    if (selected) panel.current?.scrollIntoView({ block: "nearest", behavior: "smooth" });
  }, [selected]);

  function sortBy(key: SortKey) {
    const d = key === sort ? (dir === "asc" ? "desc" : "asc") : defaultDir(key);
    setSort(key);
    setDir(d);
    remember({ sort: key, dir: d });
  }

  const rows = sortEntries(view === "providers" ? data.providers : data.entries, sort, dir);
  // One board per product type, ranked first (by rank), then the rest in the chosen order.
  const boards = PRODUCT_TYPES.map((type) => ({
    type,
    rows: sort === DEFAULT_SORT && dir === "asc"
      ? rows.filter((e) => e.productType === type).sort((a, b) =>
        (a.rank ?? Infinity) - (b.rank ?? Infinity) || rows.indexOf(a) - rows.indexOf(b)
      )
      : rows.filter((e) => e.productType === type),
  })).filter((b) => b.rows.length > 0);
  const sel = selected
    ? data.providers.find((p) => p.providerId === selected) ??
      data.entries.find((p) => p.providerId === selected) ?? null
    : null;
  // Recomputed with each new trend, not each render, so the chart is redrawn only for new data.
  const w = useMemo(() => trendWindow(days), [days, trend]);

  return (
    <div class="lb" data-testid="leaderboard">
      <form class="toolbar" method="get" action="/leaderboard" onSubmit={(e) => e.preventDefault()}>
        <div class="seg" role="group" aria-label="Rank">
          {(["providers", "regions"] as const).map((v) => (
            <a
              key={v}
              href={url({ view: v })}
              class={v === view ? "on" : undefined}
              aria-current={v === view ? "true" : undefined}
              data-view={v}
              onClick={(e) => {
                e.preventDefault();
                setView(v);
                remember({ view: v });
              }}
            >
              {v === "providers" ? "By provider" : "By provider × region"}
            </a>
          ))}
        </div>
        <label class="field">
          Region
          <select
            name="region"
            value={region ?? ""}
            onChange={(e) => {
              const r = (e.target as HTMLSelectElement).value || null;
              setRegion(r);
              remember({ region: r });
              load(days, r);
            }}
          >
            <option value="">All regions</option>
            {props.regions.map((r) => <option key={r} value={r}>{r}</option>)}
          </select>
        </label>
        <label class="field">
          Period
          <select
            name="days"
            value={String(days)}
            onChange={(e) => {
              const d = Number((e.target as HTMLSelectElement).value);
              setDays(d);
              remember({ days: d });
              load(d, region);
            }}
          >
            {PERIODS.map((p) => (
              <option key={p} value={String(p)}>{p === 1 ? "Today" : `Last ${p} days`}</option>
            ))}
          </select>
        </label>
        <label class="field">
          Product type
          <select
            name="productType"
            value={productType ?? ""}
            onChange={(e) => {
              const t = ((e.target as HTMLSelectElement).value || null) as ProductType | null;
              setProductType(t);
              setMethod(null);
              remember({ productType: t, method: null });
              load(days, region, t, null);
            }}
          >
            <option value="">Every type (separate boards)</option>
            {PRODUCT_TYPES.map((t) => <option key={t} value={t}>{PRODUCT_TYPE_LABELS[t]}</option>)}
          </select>
        </label>
        {data.methods.length > 1 && (
          <label class="field">
            Method versions
            <select
              name="method"
              value={data.method?.id ?? ""}
              onChange={(e) => {
                const m = (e.target as HTMLSelectElement).value || null;
                setMethod(m);
                remember({ method: m });
                load(days, region, productType, m);
              }}
            >
              {data.methods.map((m, i) => (
                <option key={m.id} value={m.id}>
                  {i === 0 ? "Newest" : `Older (${m.results} results)`}: {fmtMethods(m.versions)}
                </option>
              ))}
            </select>
          </label>
        )}
        <input type="hidden" name="sort" value={sort} />
        <input type="hidden" name="dir" value={dir} />
        {view === "regions" && <input type="hidden" name="view" value="regions" />}
        <noscript>
          <button class="button" type="submit">Apply</button>
        </noscript>
        <span class="spacer"></span>
        {loading && <span class="muted small">Loading…</span>}
      </form>
      {error && <p class="error-box">{error}</p>}

      {rows.length === 0
        ? (
          <section class="card empty-state" data-testid="lb-empty">
            <h2>No mainline results in this period</h2>
            <p class="muted">
              Nothing was ranked {region ? `in ${region} ` : ""}over{" "}
              {days === 1 ? "today" : `the last ${days} days`}. Try a longer period, read{" "}
              <a href="/dive">how Vox measures</a>, or <a href="/run-your-own">run your own evaluation</a>.
            </p>
          </section>
        )
        : (
          <>
            {boards.map((b) => (
              <section class="card table-card" key={b.type} data-product-type={b.type}>
                <h2 class="board-title">{PRODUCT_TYPE_LABELS[b.type]}</h2>
                <div class="table-scroll">
                  <table class="table rank-table" data-testid="rank-table" data-view={view}>
                    <thead>
                      <tr>
                        <th class="pos" title="Rank by response latency; =N: statistically tied">#</th>
                        <th>Provider</th>
                        {view === "regions" && <th>Region</th>}
                        {METRICS.map((m) => (
                          <th
                            key={m.key}
                            class="num"
                            title={m.hint}
                            aria-sort={m.key === sort
                              ? (dir === "asc" ? "ascending" : "descending")
                              : undefined}
                          >
                            <a
                              class={`sort${m.key === sort ? " on" : ""}`}
                              href={url({
                                sort: m.key,
                                dir: m.key === sort ? (dir === "asc" ? "desc" : "asc") : defaultDir(m.key),
                              })}
                              data-sort={m.key}
                              onClick={(e) => {
                                e.preventDefault();
                                sortBy(m.key);
                              }}
                            >
                              {m.short}
                              {m.unit && <span class="unit">{m.unit}</span>}
                              <span class="arrow" aria-hidden="true">
                                {m.key === sort ? (dir === "asc" ? "▲" : "▼") : "↕"}
                              </span>
                            </a>
                          </th>
                        ))}
                        {CERTAINTY.map((c) => <th key={c.key} class="num" title={c.hint}>{c.label}</th>)}
                      </tr>
                    </thead>
                    <tbody>
                      {b.rows.map((e) => (
                        <tr
                          key={`${e.providerId}/${e.region ?? ""}`}
                          data-provider={e.providerId}
                          data-region={e.region ?? undefined}
                          data-rank={e.rank ?? undefined}
                          class={e.providerId === selected ? "selected" : undefined}
                          style={`--c:${providerColor(e.providerId, props.providers)}`}
                          onClick={() => setSelected(e.providerId)}
                        >
                          <td class="pos">{fmtRank(e)}</td>
                          <td>
                            <a
                              class="provider-link"
                              href={`/leaderboard/provider/${e.providerId}?days=${days}`}
                              onClick={(ev) => {
                                ev.preventDefault();
                                ev.stopPropagation();
                                setSelected(e.providerId);
                              }}
                            >
                              <span class="swatch" aria-hidden="true"></span>
                              {e.providerName}
                            </a>
                            <VerifiedBadge
                              organization={props.providers.find((p) => p.id === e.providerId)
                                ?.verifiedOrganization}
                            />
                            {!e.enoughData && <span class="badge muted small">not enough data</span>}
                          </td>
                          {view === "regions" && <td>{e.region}</td>}
                          {METRICS.map((m) => (
                            <td
                              key={m.key}
                              class={`num${m.key === sort ? " sorted" : ""}`}
                              data-metric={m.key}
                            >
                              {m.fmt(m.get(e))}
                              {"count" in m && m.get(e) !== null && (
                                <span
                                  class="n muted small"
                                  data-n={m.count(e)}
                                  title={"ciText" in m && m.ciText(e)
                                    ? `95 % interval ${m.ciText(e)}`
                                    : undefined}
                                >
                                  {` n ${m.count(e)}`}
                                </span>
                              )}
                            </td>
                          ))}
                          {CERTAINTY.map((c) => (
                            <td key={c.key} class="num" data-metric={c.key}>{c.cell(e)}</td>
                          ))}
                        </tr>
                      ))}
                    </tbody>
                  </table>
                </div>
              </section>
            ))}
            <p class="muted small table-note">
              Latencies are means of each job's median (p90: of its 90th percentile) in ms, lower is better;
              scores 0–100, higher is better. Turn-taking rates are % of events (n: events; hover for the 95 %
              interval), lower is better. “—” means not measured; such rows sort last. Ranks are by response
              latency within each product type: “=N” marks providers whose 95 % intervals overlap
              (statistically tied); a provider with fewer than {data.minTurns}{" "}
              turns is listed as not enough data, not ranked. Method versions:{" "}
              <span data-testid="lb-method">{data.method ? fmtMethods(data.method.versions) : "—"}</span>{" "}
              (never pooled with other versions). <a href="/dive#method">How these are computed</a>.
            </p>
          </>
        )}

      <div ref={panel}>
        {sel && (
          <ProviderDetail
            provider={{
              id: sel.providerId,
              name: sel.providerName,
              sku: sel.sku,
              verifiedOrganization: props.providers.find((p) => p.id === sel.providerId)
                ?.verifiedOrganization,
            }}
            total={data.providers.find((p) => p.providerId === sel.providerId) ?? null}
            regions={sortEntries(
              data.entries.filter((e) => e.providerId === sel.providerId),
              sort,
              dir,
            )}
            days={days}
            color={providerColor(sel.providerId, props.providers)}
            onClose={() => setSelected(null)}
            chart={trend
              ? (
                <LineChart
                  label={`${sel.providerName} response latency per region`}
                  unit="ms"
                  bucket={w.bucket}
                  xMin={w.from}
                  xMax={w.to}
                  datasets={trendDatasets(trend)}
                  height={200}
                />
              )
              : <p class="muted small chart-loading">Loading the trend…</p>}
          />
        )}
      </div>
    </div>
  );
}

/** The certainty columns beside the metrics (n and interval of the ranked figure). */
const CERTAINTY: {
  key: string;
  label: string;
  hint: string;
  cell: (e: LeaderboardEntry) => ComponentChildren;
}[] = [
  {
    key: "ci",
    label: "95 % CI",
    hint: "95 % confidence interval of the response latency, clustered by job, ms",
    cell: (e) => fmtCi(e.responseLatency),
  },
  {
    key: "n",
    label: "n",
    hint: "Turns and jobs behind the response latency",
    cell: (e) => fmtN(e.responseLatency),
  },
];
