/// <reference lib="dom" />
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import {
  BUCKET_MS,
  combineByProvider,
  fmtDateTime,
  fmtMs,
  foldResult,
  type LineDataset,
  providerColor,
  type ProviderLine,
  type ProviderRef,
  type RangeKey,
  RANGES,
  type RealtimeData,
  type ResultEvent,
} from "../components/metrics_view.ts";
import LineChart from "./line_chart.tsx";

export interface RealtimeProps {
  [key: string]: unknown;
  range: RangeKey;
  region: string | null;
  regions: string[];
  providers: ProviderRef[];
  data: RealtimeData;
  /** Whether this server runs the live stream; without it the page refreshes slowly. */
  live: boolean;
}

type Mode = "connecting" | "live" | "polling";

const POLL_MS = 60_000;
// The window slides even when nothing new arrives; and p90s, which live events do not
// carry, catch up with the rollups.
const SLIDE_MS = 5 * 60_000;
// Refetches after live results are throttled: the API is rate limited per client and a
// burst of results must not turn into a burst of requests.
const RECONCILE_MIN_MS = 20_000;
const RECONCILE_DELAY_MS = 2_000;

function pageUrl(range: RangeKey, region: string | null): string {
  const q = new URLSearchParams({ range });
  if (region) q.set("region", region);
  return `/realtime?${q}`;
}

/** Live latency charts per provider with a region filter and a time range. */
export default function RealtimeCharts(props: RealtimeProps) {
  const [range, setRange] = useState(props.range);
  const [region, setRegion] = useState(props.region);
  const [regions, setRegions] = useState(props.regions);
  const [data, setData] = useState(props.data);
  const [mode, setMode] = useState<Mode>(props.live ? "connecting" : "polling");
  const [loading, setLoading] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [updated, setUpdated] = useState<string | null>(null);
  const view = useRef({
    range,
    region,
    seq: 0,
    lastFetch: 0,
    timer: undefined as ReturnType<typeof setTimeout> | undefined,
  });
  // The data the next live result folds into, ahead of the render that shows it.
  const current = useRef(data);
  current.current = data;
  view.current.range = range;
  view.current.region = region;

  async function load(r: RangeKey, reg: string | null): Promise<void> {
    const v = view.current;
    const seq = ++v.seq;
    v.lastFetch = Date.now();
    const to = new Date();
    const q = new URLSearchParams({
      from: new Date(to.getTime() - RANGES[r].ms).toISOString(),
      to: to.toISOString(),
    });
    if (reg) q.set("region", reg);
    setLoading(true);
    try {
      const res = await fetch(`/api/v1/metrics/realtime?${q}`);
      if (!res.ok) throw new Error(`the server answered ${res.status}`);
      const body = await res.json() as RealtimeData;
      if (seq !== v.seq) return;
      current.current = body;
      setData(body);
      setError(null);
      setUpdated(new Date().toISOString());
    } catch (err) {
      if (seq === v.seq) setError(`Could not refresh: ${(err as Error).message}`);
    } finally {
      if (seq === v.seq) setLoading(false);
    }
  }

  function reconcileSoon() {
    const v = view.current;
    if (v.timer) return;
    const wait = Math.max(RECONCILE_DELAY_MS, v.lastFetch + RECONCILE_MIN_MS - Date.now());
    v.timer = setTimeout(() => {
      v.timer = undefined;
      load(v.range, v.region);
    }, wait);
  }

  function choose(r: RangeKey, reg: string | null) {
    setRange(r);
    setRegion(reg);
    history.replaceState(null, "", pageUrl(r, reg));
    load(r, reg);
  }

  useEffect(() => {
    const v = view.current;
    const slide = setInterval(() => load(v.range, v.region), SLIDE_MS);
    let poll: ReturnType<typeof setInterval> | undefined;
    const startPolling = () => {
      setMode("polling");
      if (!poll) poll = setInterval(() => load(v.range, v.region), POLL_MS);
    };
    if (!props.live || typeof EventSource === "undefined") {
      startPolling();
      return () => clearInterval(slide);
    }
    const es = new EventSource("/api/v1/metrics/stream");
    let readies = 0;
    es.addEventListener("ready", () => {
      setMode("live");
      if (poll) clearInterval(poll), poll = undefined;
      // After a reconnection, results that arrived while the stream was down were missed.
      if (readies++ > 0) load(v.range, v.region);
    });
    es.addEventListener("result", (msg) => {
      const ev = JSON.parse((msg as MessageEvent).data) as ResultEvent;
      setRegions((rs) => rs.includes(ev.region) ? rs : [...rs, ev.region].sort());
      if (v.region && ev.region !== v.region) return;
      const next = foldResult(current.current, ev, props.providers);
      if (next) {
        current.current = next;
        setData(next);
        reconcileSoon();
      } else load(v.range, v.region);
      setUpdated(new Date().toISOString());
    });
    es.onerror = () => {
      // CLOSED means the server refused the stream (e.g. 503): it will not come back by itself.
      if (es.readyState === EventSource.CLOSED) startPolling();
      else setMode("connecting");
    };
    return () => {
      es.close();
      clearInterval(slide);
      if (poll) clearInterval(poll);
      if (v.timer) clearTimeout(v.timer);
    };
  }, []);

  const lines = useMemo(() => combineByProvider(data.series, props.providers), [data]);
  const size = BUCKET_MS[data.bucket];
  const xMin = Math.floor(Date.parse(data.from) / size) * size;
  const xMax = Date.parse(data.to);
  const { response, interrupt } = useMemo(() => chartLines(lines, props.providers), [lines]);
  const hasInterrupt = interrupt.length > 0;
  const bucketWord = data.bucket === "day" ? "day" : data.bucket === "hour" ? "hour" : "minute";

  return (
    <div class="rt" data-testid="realtime">
      <form class="toolbar rt-toolbar" method="get" action="/realtime" onSubmit={(e) => e.preventDefault()}>
        <div class="seg" role="group" aria-label="Time range">
          {(Object.keys(RANGES) as RangeKey[]).map((r) => (
            <a
              key={r}
              href={pageUrl(r, region)}
              class={r === range ? "on" : undefined}
              aria-current={r === range ? "true" : undefined}
              data-range={r}
              onClick={(e) => {
                e.preventDefault();
                choose(r, region);
              }}
            >
              {RANGES[r].label}
            </a>
          ))}
        </div>
        <input type="hidden" name="range" value={range} />
        <label class="field">
          Region
          <select
            name="region"
            value={region ?? ""}
            onChange={(e) => choose(range, (e.target as HTMLSelectElement).value || null)}
          >
            <option value="">All regions</option>
            {regions.map((r) => <option key={r} value={r}>{r}</option>)}
          </select>
        </label>
        <noscript>
          <button class="button" type="submit">Apply</button>
        </noscript>
        <span class="spacer"></span>
        {loading && <span class="muted small">Loading…</span>}
        <span class={`live-badge ${mode}`} data-testid="live-mode" data-mode={mode}>
          <span class="dot" aria-hidden="true"></span>
          {mode === "live" ? "Live" : mode === "connecting" ? "Connecting…" : "Refreshing every minute"}
        </span>
      </form>
      {error && <p class="error-box">{error}</p>}

      {lines.length === 0
        ? (
          <section class="card empty-state" data-testid="rt-empty">
            <h2>No mainline results in this range</h2>
            <p class="muted">
              Nothing was measured {region ? `in ${region} ` : ""}in the last{" "}
              {RANGES[range].label}. Pick a longer range, read <a href="/dive">how Vox measures</a>, or{" "}
              <a href="/run-your-own">run your own evaluation</a>.
            </p>
          </section>
        )
        : (
          <>
            <div class="provider-cards" data-testid="rt-summary">
              {lines.map((l) => (
                <section
                  class="card provider-card"
                  key={l.providerId}
                  data-provider={l.providerId}
                  style={`--c:${providerColor(l.providerId, props.providers)}`}
                >
                  <h2>
                    <span class="swatch" aria-hidden="true"></span>
                    {l.providerName}
                  </h2>
                  <div class="figures">
                    <div>
                      <div class="big" data-metric="response">
                        {fmtMs(l.response)}
                        {l.response !== null && <small>ms</small>}
                      </div>
                      <div class="muted small">response</div>
                    </div>
                    <div>
                      <div class="big dim" data-metric="p90">
                        {fmtMs(l.p90)}
                        {l.p90 !== null && <small>ms</small>}
                      </div>
                      <div class="muted small">p90</div>
                    </div>
                    <div>
                      <div class="big dim" data-metric="interrupt">
                        {fmtMs(l.interrupt)}
                        {l.interrupt !== null && <small>ms</small>}
                      </div>
                      <div class="muted small">interrupt</div>
                    </div>
                  </div>
                  <p class="muted small meta">
                    <span data-metric="results">{l.results}</span> result{l.results === 1 ? "" : "s"} ·{" "}
                    {l.regions.join(", ")} · last {fmtDateTime(l.lastResultAt)}
                  </p>
                </section>
              ))}
            </div>

            <section class="card chart-card">
              <div class="chart-head">
                <h2>Response latency</h2>
                <span class="muted small">
                  mean of each job's median per {bucketWord} (solid) and of its p90 (dashed), UTC
                </span>
              </div>
              <LineChart
                label="Response latency per provider over time"
                unit="ms"
                bucket={data.bucket}
                xMin={xMin}
                xMax={xMax}
                datasets={response}
              />
            </section>
            <section class="card chart-card">
              <div class="chart-head">
                <h2>Interrupt latency</h2>
                <span class="muted small">
                  from barge-in to the agent falling silent, mean of job medians per {bucketWord}
                </span>
              </div>
              {hasInterrupt
                ? (
                  <LineChart
                    label="Interrupt latency per provider over time"
                    unit="ms"
                    bucket={data.bucket}
                    xMin={xMin}
                    xMax={xMax}
                    datasets={interrupt}
                    height={220}
                  />
                )
                : <p class="empty">No interruptions were measured in this range.</p>}
            </section>
          </>
        )}
      {updated && <p class="muted small updated">Updated {fmtDateTime(updated)}</p>}
    </div>
  );
}

/** The lines of both charts: response median and p90 per provider, and interrupt latency. */
function chartLines(lines: ProviderLine[], providers: ProviderRef[]) {
  const response: LineDataset[] = lines.flatMap((l) => {
    const color = providerColor(l.providerId, providers);
    return [
      {
        label: l.providerName,
        color,
        data: l.points.map((p) => [p.t, p.response] as [number, number | null]),
      },
      {
        label: `${l.providerName} p90`,
        color,
        dashed: true,
        quiet: true,
        data: l.points.map((p) => [p.t, p.p90] as [number, number | null]),
      },
    ];
  });
  // Providers that measured no interruption in the range get no line rather than an empty legend entry.
  const interrupt: LineDataset[] = lines.map((l) => ({
    label: l.providerName,
    color: providerColor(l.providerId, providers),
    data: l.points.filter((p) => p.interrupt !== null).map((p) => [p.t, p.interrupt] as [number, number]),
  })).filter((d) => d.data.length > 0);
  return { response, interrupt };
}
