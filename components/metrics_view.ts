// Presentation of public metrics shared by the server-rendered pages and their islands:
// formatting, combining series, folding live results, sorting rankings. Pure functions
// only, so the server and the browser produce the same text from the same data.
import type { LatencyFigure, LeaderboardEntry, MetricSummary, RealtimeSeries } from "../lib/metrics.ts";
import type { ProductType } from "../lib/providers.ts";

/** One line: points as [time in ms, value]; null values leave a gap. */
export interface LineDataset {
  label: string;
  color: string;
  dashed?: boolean;
  /** Drawn, but left out of the legend (e.g. a p90 line under its median). */
  quiet?: boolean;
  data: [number, number | null][];
}

/** Time ranges offered on /realtime. */
export const RANGES = {
  "1h": { label: "1 h", long: "hour", ms: 3_600_000 },
  "6h": { label: "6 h", long: "6 hours", ms: 6 * 3_600_000 },
  "24h": { label: "24 h", long: "24 hours", ms: 24 * 3_600_000 },
  "7d": { label: "7 d", long: "7 days", ms: 7 * 86_400_000 },
  "30d": { label: "30 d", long: "30 days", ms: 30 * 86_400_000 },
} as const;
export type RangeKey = keyof typeof RANGES;
export const DEFAULT_RANGE: RangeKey = "24h";

/** Ranking periods (whole UTC days) offered on /leaderboard. */
export const PERIODS = [1, 7, 30, 90, 365] as const;
export const DEFAULT_PERIOD = 30;

export const BUCKET_MS = { minute: 60_000, hour: 3_600_000, day: 86_400_000 } as const;
export type Bucket = keyof typeof BUCKET_MS;

/** The same choice the API makes when no bucket is given (lib/metrics.ts autoBucket). */
export function bucketFor(spanMs: number): Bucket {
  if (spanMs <= 6 * BUCKET_MS.hour) return "minute";
  if (spanMs <= 14 * BUCKET_MS.day) return "hour";
  return "day";
}

/** Body of GET /api/v1/metrics/realtime. */
export interface RealtimeData {
  from: string;
  to: string;
  bucket: Bucket;
  series: RealtimeSeries[];
}

/** Payload of a `result` event on /api/v1/metrics/stream. */
export interface ResultEvent {
  resultId: number;
  jobId: number;
  providerId: string;
  region: string;
  createdAt: string;
  responseLatency: number | null;
  interruptLatency: number | null;
  networkResilience: number | null;
  naturalness: number | null;
  noiseReduction: number | null;
}

export interface ProviderRef {
  id: string;
  name: string;
  /** The verified organization it belongs to (the badge), when there is one. */
  verifiedOrganization?: string | null;
}

// Distinct on the dark background and for the common colour-vision deficiencies first.
const PALETTE = ["#6d8dfa", "#22c3a6", "#f5a524", "#f0506e", "#b07cff", "#38bdf8", "#e879c6", "#a3e635"];

/** A provider's colour: its place in the known list, so it is the same on every page and filter. */
export function providerColor(id: string, known: ProviderRef[]): string {
  const i = known.findIndex((p) => p.id === id);
  if (i >= 0) return PALETTE[i % PALETTE.length];
  let h = 0;
  for (const ch of id) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length];
}

/** A colour for the n-th line of a chart that is not per provider (e.g. regions). */
export function paletteColor(n: number): string {
  return PALETTE[n % PALETTE.length];
}

/** Milliseconds as a whole number, or "—". */
export function fmtMs(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? "—" : v.toFixed(0);
}

/** A rate 0..1 as a whole percentage, or "—". */
export function fmtRate(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? "—" : (v * 100).toFixed(0);
}

/** A 95 % interval of a rate as "12–40 %", or "". */
export function fmtRateCi(ci: [number, number] | null | undefined): string {
  return ci ? `${(ci[0] * 100).toFixed(0)}–${(ci[1] * 100).toFixed(0)} %` : "";
}

/** A 95 % interval in ms as "120–480 ms", or "". */
export function fmtMsCi(ci: { lo: number; hi: number } | null | undefined): string {
  return ci ? `${ci.lo.toFixed(0)}–${ci.hi.toFixed(0)} ms` : "";
}

/** A 0–100 score with one decimal, or "—". */
export function fmtScore(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? "—" : v.toFixed(1);
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** "2026-11-22 00:13 UTC": the same text on the server and in any browser. */
export function fmtDateTime(iso: string | null): string {
  return iso ? `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC` : "—";
}

/** A chart tick: "14:05" inside a day, "Nov 22" for days, "Nov 22 14:00" when it helps. */
export function fmtTick(ms: number, stepMs: number): string {
  const d = new Date(ms);
  const day = `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}`;
  const hm = d.toISOString().slice(11, 16);
  if (stepMs >= BUCKET_MS.day) return day;
  if (stepMs >= BUCKET_MS.hour && hm === "00:00") return day;
  return hm;
}

/** A tooltip title for a bucket starting at `ms`. */
export function fmtBucket(ms: number, bucket: Bucket): string {
  const d = new Date(ms);
  const day = `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}`;
  return bucket === "day" ? `${day} (UTC)` : `${day} ${d.toISOString().slice(11, 16)} UTC`;
}

/** One point of a provider's line: a bucket over all its regions shown. */
export interface LinePoint {
  t: number;
  response: number | null;
  p90: number | null;
  interrupt: number | null;
  results: number;
}

/** A provider's figures over the whole range shown. */
export interface ProviderLine {
  providerId: string;
  providerName: string;
  regions: string[];
  points: LinePoint[];
  response: number | null;
  p90: number | null;
  interrupt: number | null;
  results: number;
  lastResultAt: string | null;
}

// Weighted means: a rollup's mean is sum / n, so weighting by n recombines buckets and
// regions exactly. p90 has no count of its own in the API; turns with a median have one.
class Mean {
  sum = 0;
  n = 0;
  add(v: number | null, n: number) {
    if (v === null || n <= 0) return;
    this.sum += v * n;
    this.n += n;
  }
  get value(): number | null {
    return this.n > 0 ? this.sum / this.n : null;
  }
}

class Acc {
  response = new Mean();
  p90 = new Mean();
  interrupt = new Mean();
  results = 0;
  add(s: MetricSummary) {
    this.response.add(s.responseLatency.mean, s.responseLatency.n);
    this.p90.add(s.responseLatency.p90, s.responseLatency.n);
    this.interrupt.add(s.interruptLatency.mean, s.interruptLatency.n);
    this.results += s.results;
  }
}

/** Folds per-region series into one line per provider, ordered like `known`, then by name. */
export function combineByProvider(series: RealtimeSeries[], known: ProviderRef[]): ProviderLine[] {
  const lines = new Map<
    string,
    { name: string; regions: Set<string>; total: Acc; buckets: Map<number, Acc>; last: string | null }
  >();
  for (const s of series) {
    let l = lines.get(s.providerId);
    if (!l) {
      lines.set(
        s.providerId,
        l = { name: s.providerName, regions: new Set(), total: new Acc(), buckets: new Map(), last: null },
      );
    }
    l.regions.add(s.region);
    for (const p of s.points) {
      const t = Date.parse(p.t);
      let b = l.buckets.get(t);
      if (!b) l.buckets.set(t, b = new Acc());
      b.add(p);
      l.total.add(p);
      if (p.lastResultAt && (!l.last || p.lastResultAt > l.last)) l.last = p.lastResultAt;
    }
  }
  const order = (id: string) => {
    const i = known.findIndex((p) => p.id === id);
    return i < 0 ? known.length : i;
  };
  return [...lines.entries()]
    .sort(([a, la], [b, lb]) => order(a) - order(b) || cmp(la.name, lb.name))
    .map(([providerId, l]) => ({
      providerId,
      providerName: l.name,
      regions: [...l.regions].sort(),
      points: [...l.buckets.entries()].sort(([a], [b]) => a - b).map(([t, b]) => ({
        t,
        response: b.response.value,
        p90: b.p90.value,
        interrupt: b.interrupt.value,
        results: b.results,
      })),
      response: l.total.response.value,
      p90: l.total.p90.value,
      interrupt: l.total.interrupt.value,
      results: l.total.results,
      lastResultAt: l.last,
    }));
}

/**
 * Adds one live result to the series it belongs to, as the rollup will: the bucket's
 * results count, and the running means of response and interrupt latency. Returns null
 * when the result cannot be placed (outside the range, or a provider not yet named), in
 * which case the caller refetches.
 */
export function foldResult(
  data: RealtimeData,
  ev: ResultEvent,
  names: ProviderRef[],
): RealtimeData | null {
  const at = Date.parse(ev.createdAt);
  const size = BUCKET_MS[data.bucket];
  const start = Math.floor(Date.parse(data.from) / size) * size;
  if (!Number.isFinite(at) || at < start) return null;
  const t = new Date(Math.floor(at / size) * size).toISOString();
  const series = data.series.map((s) => ({ ...s, points: [...s.points] }));
  let s = series.find((x) => x.providerId === ev.providerId && x.region === ev.region);
  if (!s) {
    const name = names.find((p) => p.id === ev.providerId)?.name ??
      data.series.find((x) => x.providerId === ev.providerId)?.providerName;
    if (!name) return null;
    const methodId = data.series[0]?.methodId ?? "";
    series.push(
      s = { providerId: ev.providerId, providerName: name, region: ev.region, methodId, points: [] },
    );
  }
  const i = s.points.findIndex((p) => p.t === t);
  const old = i >= 0 ? s.points[i] : emptyPoint(t);
  const next = {
    ...old,
    results: old.results + 1,
    responseLatency: addTo(old.responseLatency, ev.responseLatency),
    interruptLatency: addTo(old.interruptLatency, ev.interruptLatency),
    lastResultAt: ev.createdAt,
  };
  if (i >= 0) s.points[i] = next;
  else {
    s.points.push(next);
    s.points.sort((a, b) => a.t < b.t ? -1 : a.t > b.t ? 1 : 0);
  }
  const to = at >= Date.parse(data.to) ? new Date(at + 1).toISOString() : data.to;
  return { ...data, to, series };
}

function addTo<T extends { mean: number | null; min: number | null; max: number | null; n: number }>(
  s: T,
  v: number | null,
): T {
  if (v === null) return s;
  const n = s.n + 1;
  return {
    ...s,
    n,
    mean: ((s.mean ?? 0) * s.n + v) / n,
    min: s.min === null ? v : Math.min(s.min, v),
    max: s.max === null ? v : Math.max(s.max, v),
  };
}

function emptyPoint(t: string) {
  const stats = { mean: null, sd: null, min: null, max: null, n: 0, turns: 0, ci95: null };
  return {
    t,
    results: 0,
    responseLatency: { ...stats, p90: null },
    interruptLatency: { ...stats },
    networkResilience: null,
    naturalness: null,
    noiseReduction: null,
    lastResultAt: null,
  };
}

/** Columns of the rankings, each sortable. */
export const METRICS = [
  {
    key: "response",
    short: "Response",
    label: "Response",
    hint: "Response latency: mean of each job's median, ms",
    unit: "ms",
    lowerIsBetter: true,
    get: (e: LeaderboardEntry) => e.responseLatency.mean,
    fmt: fmtMs,
  },
  {
    key: "p90",
    short: "p90",
    label: "Response p90",
    hint: "Response latency: mean of each job's 90th percentile, ms",
    unit: "ms",
    lowerIsBetter: true,
    get: (e: LeaderboardEntry) => e.responseLatency.p90,
    fmt: fmtMs,
  },
  {
    key: "interrupt",
    short: "Interrupt",
    label: "Interrupt",
    hint: "Interrupt latency: mean of each job's median, ms",
    unit: "ms",
    lowerIsBetter: true,
    get: (e: LeaderboardEntry) => e.interruptLatency.mean,
    fmt: fmtMs,
  },
  {
    key: "resilience",
    short: "Network",
    label: "Network",
    hint: "Network resilience, 0–100",
    unit: "",
    lowerIsBetter: false,
    get: (e: LeaderboardEntry) => e.networkResilience,
    fmt: fmtScore,
  },
  {
    key: "noise",
    short: "Noise",
    label: "Noise",
    hint: "Noise reduction, 0–100",
    unit: "",
    lowerIsBetter: false,
    get: (e: LeaderboardEntry) => e.noiseReduction,
    fmt: fmtScore,
  },
  {
    key: "naturalness",
    short: "Natural.",
    label: "Naturalness",
    hint: "Naturalness heuristic, 0–100",
    unit: "",
    lowerIsBetter: false,
    get: (e: LeaderboardEntry) => e.naturalness,
    fmt: fmtScore,
  },
  // Turn taking (issue 20): pooled event rates, each shown with its n (/dive: definitions).
  {
    key: "takeover",
    short: "Takeover",
    label: "Pause takeover",
    hint: "Pause takeover rate: caller pauses mid-turn the agent talked into, % of pauses (n: pauses)",
    unit: "%",
    lowerIsBetter: true,
    get: (e: LeaderboardEntry) => e.turnTaking?.pauseTakeover.rate ?? null,
    count: (e: LeaderboardEntry) => e.turnTaking?.pauseTakeover.n ?? 0,
    ciText: (e: LeaderboardEntry) => fmtRateCi(e.turnTaking?.pauseTakeover.ci95),
    fmt: fmtRate,
  },
  {
    key: "bc_stop",
    short: "BC stop",
    label: "Backchannel stop",
    hint: "Backchannel stop rate: mm-hmm's the agent stopped talking for, % (n: backchannels)",
    unit: "%",
    lowerIsBetter: true,
    get: (e: LeaderboardEntry) => e.turnTaking?.backchannelStop.rate ?? null,
    count: (e: LeaderboardEntry) => e.turnTaking?.backchannelStop.n ?? 0,
    ciText: (e: LeaderboardEntry) => fmtRateCi(e.turnTaking?.backchannelStop.ci95),
    fmt: fmtRate,
  },
  {
    key: "bystander",
    short: "Bystander",
    label: "Background false trigger",
    hint:
      "Background false-trigger rate: bystander speech the agent answered or stopped for, % (n: segments)",
    unit: "%",
    lowerIsBetter: true,
    get: (e: LeaderboardEntry) => e.turnTaking?.backgroundFalseTrigger.rate ?? null,
    count: (e: LeaderboardEntry) => e.turnTaking?.backgroundFalseTrigger.n ?? 0,
    ciText: (e: LeaderboardEntry) => fmtRateCi(e.turnTaking?.backgroundFalseTrigger.ci95),
    fmt: fmtRate,
  },
  {
    key: "tt_penalty",
    short: "Penalty",
    label: "Turn-taking penalty",
    hint:
      "Turn-taking penalty: mean ms lost per event (false takeovers, false stops, late replies) (n: results)",
    unit: "ms",
    lowerIsBetter: true,
    get: (e: LeaderboardEntry) => e.turnTaking?.penaltyMs.mean ?? null,
    count: (e: LeaderboardEntry) => e.turnTaking?.penaltyMs.n ?? 0,
    ciText: (e: LeaderboardEntry) => fmtMsCi(e.turnTaking?.penaltyMs.ci95),
    fmt: fmtMs,
  },
  {
    key: "results",
    short: "Results",
    label: "Results",
    hint: "Mainline results in the period",
    unit: "",
    lowerIsBetter: false,
    get: (e: LeaderboardEntry) => e.results,
    fmt: (v: number | null) => v === null ? "—" : String(v),
  },
] as const;
export type SortKey = typeof METRICS[number]["key"];
export type SortDir = "asc" | "desc";
export const DEFAULT_SORT: SortKey = "response";

/** Whether `key` names a sortable column. */
export function isSortKey(key: string | undefined | null): key is SortKey {
  return METRICS.some((m) => m.key === key);
}

/** The direction a column sorts in first: best first. */
export function defaultDir(key: SortKey): SortDir {
  return METRICS.find((m) => m.key === key)!.lowerIsBetter ? "asc" : "desc";
}

/** Entries ordered by one metric; rows without a value come last in either direction. */
export function sortEntries(entries: LeaderboardEntry[], key: SortKey, dir: SortDir): LeaderboardEntry[] {
  const get = METRICS.find((m) => m.key === key)!.get;
  const sign = dir === "asc" ? 1 : -1;
  return [...entries].sort((a, b) => {
    const x = get(a), y = get(b);
    if (x === null && y === null) return tieBreak(a, b);
    if (x === null) return 1;
    if (y === null) return -1;
    return (x - y) * sign || tieBreak(a, b);
  });
}

function tieBreak(a: LeaderboardEntry, b: LeaderboardEntry): number {
  return cmp(a.providerName, b.providerName) || cmp(a.region ?? "", b.region ?? "");
}

// Code-point order: the same on the server and in every browser, unlike localeCompare.
function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** "ConvoAI engine" or "RTC engine" for a provider's sku. */
export function skuLabel(sku: number): string {
  return sku === 0 ? "ConvoAI engine" : "RTC engine";
}

/** Which rows the leaderboard ranks: providers, or provider × region. */
export type LeaderboardView = "providers" | "regions";

/** The query string of a leaderboard state, so every state has a URL that renders it. */
export function leaderboardQuery(
  s: {
    days: number;
    region: string | null;
    sort: SortKey;
    dir: SortDir;
    view: LeaderboardView;
    productType?: ProductType | null;
    method?: string | null;
  },
): string {
  const q = new URLSearchParams({ days: String(s.days) });
  if (s.region) q.set("region", s.region);
  if (s.productType) q.set("productType", s.productType);
  if (s.method) q.set("method", s.method);
  q.set("sort", s.sort);
  q.set("dir", s.dir);
  if (s.view === "regions") q.set("view", "regions");
  return `?${q}`;
}

/** Trend of one provider over a ranking period: the realtime API, hourly for a day, else daily. */
export function trendWindow(
  days: number,
  now = Date.now(),
): { from: number; to: number; bucket: "hour" | "day" } {
  const today = Math.floor(now / BUCKET_MS.day) * BUCKET_MS.day;
  return { from: today - (days - 1) * BUCKET_MS.day, to: now, bucket: days === 1 ? "hour" : "day" };
}

/** Lines of a provider's trend chart: response latency per region. */
export function trendDatasets(data: RealtimeData | null): LineDataset[] {
  if (!data) return [];
  return [...data.series]
    .sort((a, b) => a.region < b.region ? -1 : a.region > b.region ? 1 : 0)
    .map((s, i) => ({
      label: s.region,
      color: paletteColor(i + 1),
      data: s.points.map((p) => [Date.parse(p.t), p.responseLatency.mean] as [number, number | null]),
    }));
}

// ---------------------------------------------------------------- certainty (issue 13)

/** A rank as shown: "1", "=1" when shared with another figure, "—" when not ranked. */
export function fmtRank(e: Pick<LeaderboardEntry, "rank" | "tied">): string {
  return e.rank === null ? "—" : `${e.tied ? "=" : ""}${e.rank}`;
}

/** A figure's 95 % interval as "780–826", or "—" below two jobs. */
export function fmtCi(f: Pick<LatencyFigure, "ci95">): string {
  return f.ci95 ? `${fmtMs(f.ci95.lo)}–${fmtMs(f.ci95.hi)}` : "—";
}

/** "n = 120 turns / 12 jobs". */
export function fmtN(f: Pick<LatencyFigure, "turns" | "n">): string {
  return `${f.turns} turn${f.turns === 1 ? "" : "s"} / ${f.n} job${f.n === 1 ? "" : "s"}`;
}

/** Method versions as "response_latency vox-audioclock-response/1 · …", sorted by metric. */
export function fmtMethods(versions: Record<string, string>): string {
  const keys = Object.keys(versions).sort();
  return keys.length ? keys.map((k) => `${k} ${versions[k]}`).join(" · ") : "not recorded";
}
