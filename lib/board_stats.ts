// How sure a public figure is (issue 13): the 95 % confidence interval of a mean of per-job
// medians, clustered by job, and competition ranks in which figures whose intervals overlap
// share a rank. Pure functions; lib/metrics.ts applies them to the rollups' sums.

/** Confidence level of every interval Vox publishes. */
export const CONFIDENCE = 0.95;

/** A two-sided interval. */
export interface Interval {
  lo: number;
  hi: number;
}

// ln Γ(x), Lanczos (g = 7, n = 9): ~15 significant digits for x > 0.
const LANCZOS = [
  0.99999999999980993,
  676.5203681218851,
  -1259.1392167224028,
  771.32342877765313,
  -176.61502916214059,
  12.507343278686905,
  -0.13857109526572012,
  9.9843695780195716e-6,
  1.5056327351493116e-7,
];
function lnGamma(x: number): number {
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lnGamma(1 - x);
  x -= 1;
  let a = LANCZOS[0];
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += LANCZOS[i] / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

// Continued fraction of the regularized incomplete beta function (modified Lentz).
function betaCf(a: number, b: number, x: number): number {
  const tiny = 1e-300;
  let c = 1;
  let d = 1 - ((a + b) * x) / (a + 1);
  if (Math.abs(d) < tiny) d = tiny;
  d = 1 / d;
  let h = d;
  for (let m = 1; m <= 300; m++) {
    const m2 = 2 * m;
    let aa = (m * (b - m) * x) / ((a + m2 - 1) * (a + m2));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    h *= d * c;
    aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + m2 + 1));
    d = 1 + aa * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = 1 + aa / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-15) break;
  }
  return h;
}

/** The regularized incomplete beta function I_x(a, b). */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const front = Math.exp(lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log(1 - x));
  return x < (a + 1) / (a + b + 2) ? (front * betaCf(a, b, x)) / a : 1 - (front * betaCf(b, a, 1 - x)) / b;
}

/** P(T ≤ t) for Student's t with `df` degrees of freedom. */
export function tCdf(t: number, df: number): number {
  const tail = 0.5 * incompleteBeta(df / (df + t * t), df / 2, 0.5);
  return t >= 0 ? 1 - tail : tail;
}

// Quantiles already computed, by p and df: a bisection costs ~190 µs, and every leaderboard
// answer needs one per figure, with the same few degrees of freedom again and again (the
// public JSON route served 59 req/s under load before this cache). Bounded: cleared when full.
const quantiles = new Map<string, number>();
const MAX_CACHED_QUANTILES = 4096;

/** The `p` quantile of Student's t with `df` degrees of freedom (bisection on the CDF; cached). */
export function tQuantile(p: number, df: number): number {
  if (!(p > 0 && p < 1) || !(df > 0)) throw new RangeError("tQuantile: 0 < p < 1 and df > 0");
  if (p === 0.5) return 0;
  if (p < 0.5) return -tQuantile(1 - p, df);
  const key = `${p}:${df}`;
  const known = quantiles.get(key);
  if (known !== undefined) return known;
  if (quantiles.size >= MAX_CACHED_QUANTILES) quantiles.clear();
  const q = bisectQuantile(p, df);
  quantiles.set(key, q);
  return q;
}

function bisectQuantile(p: number, df: number): number {
  let lo = 0;
  let hi = 1;
  while (tCdf(hi, df) < p) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > 1e-12; i++) {
    const mid = (lo + hi) / 2;
    if (tCdf(mid, df) < p) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/**
 * The 95 % interval of the mean of `k` per-job values given their sum and sum of squares:
 * mean ± t(0.975, k − 1) · s / √k, with s the sample standard deviation across jobs. Each
 * job is one cluster (its turns are not independent of one another: same page, same network,
 * same minute), so the interval is as wide as the spread between jobs says, however many
 * turns each job had. Null below two jobs.
 */
export function meanInterval(k: number, sum: number, sumsq: number): Interval | null {
  if (!(k >= 2)) return null;
  const mean = sum / k;
  const variance = Math.max(0, (sumsq - sum * sum / k) / (k - 1));
  const half = tQuantile(1 - (1 - CONFIDENCE) / 2, k - 1) * Math.sqrt(variance / k);
  return { lo: mean - half, hi: mean + half };
}

/** One figure to rank: lower is better. `interval` null or `eligible` false → not ranked. */
export interface RankInput {
  value: number | null;
  interval: Interval | null;
  eligible: boolean;
}

/**
 * Competition ranks with statistical ties: a ranked figure's rank is 1 + the number of
 * ranked figures that are better beyond doubt (their whole interval lies below its own), so
 * figures whose intervals overlap share a rank. Figures not eligible (below the minimum n,
 * no value, fewer than two jobs) get null. Returns the ranks and whether each is shared.
 */
export function tiedRanks(items: RankInput[]): { rank: number | null; tied: boolean }[] {
  const ranked = items.map((it) => it.eligible && it.value !== null && it.interval !== null);
  const ranks = items.map((it, i) => {
    if (!ranked[i]) return null;
    let better = 0;
    items.forEach((o, j) => {
      if (j !== i && ranked[j] && o.interval!.hi < it.interval!.lo) better++;
    });
    return better + 1;
  });
  return ranks.map((r) => ({ rank: r, tied: r !== null && ranks.filter((x) => x === r).length > 1 }));
}
