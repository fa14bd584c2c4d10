/** Summary statistics as the run report states them. */

/** `{ median, sd, p90, n }` in the input's unit; nulls and n = 0 for no values. */
export interface Summary {
  median: number | null;
  sd: number | null;
  p90: number | null;
  n: number;
}

/** Quantile by linear interpolation between closest ranks (R type 7, numpy's default). */
export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 1) return sorted[0];
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/** Median, sample standard deviation (n − 1; 0 for one value), p90 and n, rounded to 0.01. */
export function summarize(values: number[]): Summary {
  if (values.length === 0) return { median: null, sd: null, p90: null, n: 0 };
  const sorted = [...values].sort((a, b) => a - b);
  const mean = sorted.reduce((s, x) => s + x, 0) / sorted.length;
  const variance = sorted.length > 1
    ? sorted.reduce((s, x) => s + (x - mean) ** 2, 0) / (sorted.length - 1)
    : 0;
  const r = (x: number) => Math.round(x * 100) / 100;
  return {
    median: r(quantile(sorted, 0.5)),
    sd: r(Math.sqrt(variance)),
    p90: r(quantile(sorted, 0.9)),
    n: sorted.length,
  };
}
