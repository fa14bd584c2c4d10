/// <reference lib="dom" />
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { Leaderboard } from "../lib/metrics.ts";
import {
  defaultDir,
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
}

/** Sortable rankings by provider or provider × region, with a detail panel per provider. */
export default function LeaderboardTable(props: LeaderboardProps) {
  const [days, setDays] = useState(props.days);
  const [region, setRegion] = useState(props.region);
  const [data, setData] = useState(props.data);
  const [sort, setSort] = useState(props.sort);
  const [dir, setDir] = useState(props.dir);
  const [view, setView] = useState(props.view);
  const [selected, setSelected] = useState<string | null>(null);
  const [trend, setTrend] = useState<RealtimeData | null>(null);
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const seq = useRef(0);
  const panel = useRef<HTMLDivElement>(null);

  const state = { days, region, sort, dir, view };
  const url = (over: Partial<typeof state>) => `/leaderboard${leaderboardQuery({ ...state, ...over })}`;
  const remember = (over: Partial<typeof state>) => history.replaceState(null, "", url(over));

  async function load(d: number, reg: string | null) {
    const n = ++seq.current;
    const q = new URLSearchParams({ days: String(d) });
    if (reg) q.set("region", reg);
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
              aria-pressed={v === view ? "true" : "false"}
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
          <section class="card table-card">
            <div class="table-scroll">
              <table class="table rank-table" data-testid="rank-table" data-view={view}>
                <thead>
                  <tr>
                    <th class="pos">#</th>
                    <th>Provider</th>
                    {view === "regions" && <th>Region</th>}
                    {METRICS.map((m) => (
                      <th
                        key={m.key}
                        class="num"
                        title={m.hint}
                        aria-sort={m.key === sort ? (dir === "asc" ? "ascending" : "descending") : undefined}
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
                  </tr>
                </thead>
                <tbody>
                  {rows.map((e, i) => (
                    <tr
                      key={`${e.providerId}/${e.region ?? ""}`}
                      data-provider={e.providerId}
                      data-region={e.region ?? undefined}
                      class={e.providerId === selected ? "selected" : undefined}
                      style={`--c:${providerColor(e.providerId, props.providers)}`}
                      onClick={() => setSelected(e.providerId)}
                    >
                      <td class="pos">{i + 1}</td>
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
                      </td>
                      {view === "regions" && <td>{e.region}</td>}
                      {METRICS.map((m) => (
                        <td key={m.key} class={`num${m.key === sort ? " sorted" : ""}`} data-metric={m.key}>
                          {m.fmt(m.get(e))}
                        </td>
                      ))}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <p class="muted small table-note">
              Latencies are means of each job's median (p90: of its 90th percentile) in ms, lower is better;
              scores 0–100, higher is better. “—” means not measured; such rows sort last. Click a provider
              for details.
            </p>
          </section>
        )}

      <div ref={panel}>
        {sel && (
          <ProviderDetail
            provider={{ id: sel.providerId, name: sel.providerName, sku: sel.sku }}
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
