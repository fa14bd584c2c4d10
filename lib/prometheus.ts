// The Prometheus text exposition format (version 0.0.4): in-process counters and histograms,
// and rendering metric families with their HELP and TYPE lines. Only what /metrics needs.

/** Label names and values of one sample. */
export type Labels = Record<string, string>;

/** One metric family: its samples, rendered under one HELP and TYPE. */
export interface MetricFamily {
  name: string;
  help: string;
  type: "counter" | "gauge" | "histogram";
  samples: { suffix?: string; labels?: Labels; value: number }[];
}

/** The content type Prometheus expects for the text format. */
export const EXPOSITION_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

/** Counts per label set, only ever going up. */
export class Counter {
  #values = new Map<string, { labels: Labels; value: number }>();

  constructor(readonly name: string, readonly help: string) {}

  /** Adds `by` (default 1) to the sample with these labels. */
  inc(labels: Labels = {}, by = 1): void {
    const key = labelText(labels);
    const v = this.#values.get(key);
    if (v) v.value += by;
    else this.#values.set(key, { labels, value: by });
  }

  /** The family with every label set seen so far. */
  family(): MetricFamily {
    return {
      name: this.name,
      help: this.help,
      type: "counter",
      samples: [...this.#values.values()].map((v) => ({ labels: v.labels, value: v.value })),
    };
  }
}

/** Observations counted into fixed cumulative buckets (upper bounds in the metric's unit). */
export class Histogram {
  #counts: number[];
  #sum = 0;
  #count = 0;

  constructor(readonly name: string, readonly help: string, readonly bounds: readonly number[]) {
    this.#counts = bounds.map(() => 0);
  }

  /** Records one observation. */
  observe(value: number): void {
    this.#sum += value;
    this.#count++;
    for (let i = 0; i < this.bounds.length; i++) if (value <= this.bounds[i]) this.#counts[i]++;
  }

  /** How many observations so far. */
  get count(): number {
    return this.#count;
  }

  /** The family: cumulative `_bucket` samples up to `+Inf`, `_sum` and `_count`. */
  family(): MetricFamily {
    return {
      name: this.name,
      help: this.help,
      type: "histogram",
      samples: [
        ...this.bounds.map((b, i) => ({
          suffix: "_bucket",
          labels: { le: String(b) },
          value: this.#counts[i],
        })),
        { suffix: "_bucket", labels: { le: "+Inf" }, value: this.#count },
        { suffix: "_sum", value: this.#sum },
        { suffix: "_count", value: this.#count },
      ],
    };
  }
}

/** Renders families as the text exposition format, one HELP and TYPE line per family. */
export function renderExposition(families: MetricFamily[]): string {
  const lines: string[] = [];
  for (const f of families) {
    lines.push(`# HELP ${f.name} ${f.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")}`);
    lines.push(`# TYPE ${f.name} ${f.type}`);
    for (const s of f.samples) {
      lines.push(`${f.name}${s.suffix ?? ""}${labelText(s.labels ?? {})} ${numberText(s.value)}`);
    }
  }
  return lines.join("\n") + "\n";
}

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) =>
    `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`
  );
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

function numberText(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}
