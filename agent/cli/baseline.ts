/**
 * Is a new set of turn latencies worse than a baseline's beyond noise? The test, stated once:
 *
 * - One-sided Mann-Whitney U test (rank-sum) that the new latencies tend to be larger. With up to
 *   200,000 ways to split the pooled values, the p-value is exact: every split is enumerated on the
 *   pooled values themselves, so ties are handled without approximation. Beyond that, the normal
 *   approximation with tie and continuity corrections.
 * - Effect size: the Hodges-Lehmann shift (median of every new − baseline difference, in ms) and
 *   the common-language effect size U / (n₁·n₂) (the chance a new turn is slower than a baseline turn).
 * - A regression needs both: p ≤ alpha (default 0.05) *and* a shift above a minimum effect
 *   (default 25 ms). A 5 ms wobble fails neither build nor test of meaning; an 80 ms regression
 *   over a handful of turns is significant and far above the effect floor.
 *
 * When the samples are too small for any split to reach alpha (1 / C(n₁+n₂, n₁) > alpha), the
 * verdict is "insufficient": the test cannot tell, and saying "no regression" would be a lie.
 */

/** Options of the baseline test. */
export interface BaselineOptions {
  /** Significance level of the one-sided test (default 0.05). */
  alpha?: number;
  /** The smallest Hodges-Lehmann shift in ms that counts as a regression (default 25). */
  minEffectMs?: number;
}

/** The outcome of comparing one kind of turn. */
export interface ShiftTest {
  verdict: "regression" | "no regression" | "insufficient";
  nBaseline: number;
  nNew: number;
  /** U of the new sample (pairs where new > baseline, ties count one half). */
  u: number;
  /** One-sided p-value that new latencies are stochastically larger. */
  p: number;
  /** "exact" (every split enumerated) or "normal" (approximation with tie correction). */
  method: "exact" | "normal";
  /** Hodges-Lehmann estimate of the shift new − baseline, in ms. */
  shiftMs: number;
  /** U / (n₁·n₂): probability that a new turn is slower than a baseline turn (ties half). */
  cles: number;
  alpha: number;
  minEffectMs: number;
  /** One sentence a CI log can show. */
  summary: string;
}

const EXACT_LIMIT = 200_000;

function binomial(n: number, k: number): number {
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return Math.round(r);
}

/** U of `b` against `a`: pairs with b > a, ties counted one half. */
export function mannWhitneyU(a: number[], b: number[]): number {
  let u = 0;
  for (const y of b) for (const x of a) u += y > x ? 1 : y === x ? 0.5 : 0;
  return u;
}

function median(sorted: number[]): number {
  const m = sorted.length >> 1;
  return sorted.length % 2 ? sorted[m] : (sorted[m - 1] + sorted[m]) / 2;
}

/** Hodges-Lehmann shift estimate: the median of all pairwise differences b − a. */
export function hodgesLehmann(a: number[], b: number[]): number {
  const d: number[] = [];
  for (const y of b) for (const x of a) d.push(y - x);
  return median(d.sort((p, q) => p - q));
}

// P(U ≥ observed) over every way to choose which nB of the pooled values are "new".
function exactP(pooled: number[], nB: number, observed: number): number {
  const n = pooled.length;
  // U of a chosen subset = (sum of its midranks) − nB(nB+1)/2; midranks handle ties exactly.
  const order = pooled.map((v, i) => [v, i] as const).sort((x, y) => x[0] - y[0]);
  const ranks = new Array<number>(n);
  for (let i = 0; i < n;) {
    let j = i;
    while (j + 1 < n && order[j + 1][0] === order[i][0]) j++;
    for (let k = i; k <= j; k++) ranks[order[k][1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  const offset = (nB * (nB + 1)) / 2;
  let atLeast = 0;
  let total = 0;
  const walk = (start: number, left: number, sum: number) => {
    if (left === 0) {
      total++;
      if (sum - offset >= observed - 1e-9) atLeast++;
      return;
    }
    for (let i = start; i <= n - left; i++) walk(i + 1, left - 1, sum + ranks[i]);
  };
  walk(0, nB, 0);
  return atLeast / total;
}

function normalP(a: number[], b: number[], u: number): number {
  const n1 = a.length;
  const n2 = b.length;
  const n = n1 + n2;
  const counts = new Map<number, number>();
  for (const v of [...a, ...b]) counts.set(v, (counts.get(v) ?? 0) + 1);
  let ties = 0;
  for (const t of counts.values()) ties += t ** 3 - t;
  const variance = (n1 * n2 / 12) * ((n + 1) - ties / (n * (n - 1)));
  if (variance <= 0) return 1;
  const z = (u - n1 * n2 / 2 - 0.5) / Math.sqrt(variance);
  return 1 - normalCdf(z);
}

/** Standard normal CDF (Abramowitz-Stegun 7.1.26 erf, |error| < 1.5e-7). */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf = 1 -
    (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t *
      Math.exp(-x * x);
  return z >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

/** Tests whether `next` latencies are worse than `baseline` beyond noise (see the module comment). */
export function shiftTest(baseline: number[], next: number[], opts: BaselineOptions = {}): ShiftTest {
  const alpha = opts.alpha ?? 0.05;
  const minEffectMs = opts.minEffectMs ?? 25;
  const n1 = baseline.length;
  const n2 = next.length;
  const base = { nBaseline: n1, nNew: n2, alpha, minEffectMs };
  if (n1 === 0 || n2 === 0 || 1 / binomial(n1 + n2, n2) > alpha) {
    return {
      ...base,
      verdict: "insufficient",
      u: n1 && n2 ? mannWhitneyU(baseline, next) : 0,
      p: 1,
      method: "exact",
      shiftMs: n1 && n2 ? hodgesLehmann(baseline, next) : 0,
      cles: n1 && n2 ? mannWhitneyU(baseline, next) / (n1 * n2) : 0.5,
      summary: `too few turns to judge (baseline ${n1}, new ${n2}): even a complete separation could not ` +
        `reach p ≤ ${alpha}; measure more turns (--repeat)`,
    };
  }
  const u = mannWhitneyU(baseline, next);
  const exact = binomial(n1 + n2, n2) <= EXACT_LIMIT;
  const p = exact ? exactP([...baseline, ...next], n2, u) : normalP(baseline, next, u);
  const shiftMs = Math.round(hodgesLehmann(baseline, next) * 100) / 100;
  const cles = u / (n1 * n2);
  const regression = p <= alpha && shiftMs > minEffectMs;
  const why = regression
    ? "slower beyond noise"
    : p > alpha
    ? `not significant (p > ${alpha})`
    : `shift within the ${minEffectMs} ms effect floor`;
  return {
    ...base,
    verdict: regression ? "regression" : "no regression",
    u,
    p,
    method: exact ? "exact" : "normal",
    shiftMs,
    cles,
    summary: `shift ${shiftMs >= 0 ? "+" : ""}${shiftMs} ms (Hodges-Lehmann), Mann-Whitney U = ${u}, ` +
      `one-sided p = ${p.toPrecision(3)} (${exact ? "exact" : "normal approx."}), P(new slower) = ` +
      `${cles.toFixed(2)}, n = ${n1} vs ${n2}: ${why}`,
  };
}
