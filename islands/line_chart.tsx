/// <reference lib="dom" />
import { useEffect, useRef } from "preact/hooks";
import type { Chart as ChartT } from "chart.js";
import { type Bucket, BUCKET_MS, fmtBucket, fmtTick, type LineDataset } from "../components/metrics_view.ts";

export interface LineChartProps {
  [key: string]: unknown;
  /** Accessible name of the chart. */
  label: string;
  unit: string;
  bucket: Bucket;
  xMin: number;
  xMax: number;
  datasets: LineDataset[];
  height?: number;
}

const STEPS = [1, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080].map((m) => m * 60_000);

// Ticks on round UTC times (every 5 min, 1 h, 1 day…) rather than chart.js's round numbers
// of milliseconds; at most about eight of them.
function timeTicks(min: number, max: number): number[] {
  const step = STEPS.find((s) => (max - min) / s <= 8) ?? STEPS[STEPS.length - 1];
  const out: number[] = [];
  for (let t = Math.ceil(min / step) * step; t <= max; t += step) out.push(t);
  return out;
}

/**
 * A time-series line chart (chart.js on a canvas). Renders the canvas on the server and
 * draws once hydrated; later prop changes update the same chart in place. After each
 * draw the canvas carries `data-drawn`: the label and point count of every line drawn.
 */
export default function LineChart(props: LineChartProps) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const chart = useRef<ChartT<"line", { x: number; y: number | null }[]> | null>(null);
  const step = useRef<number>(BUCKET_MS.hour);
  const latest = useRef(props);
  latest.current = props;

  useEffect(() => {
    let cancelled = false;
    // chart.js loads only in the browser, as its own chunk, after the page is usable.
    import("chart.js").then((m) => {
      if (cancelled || !canvas.current) return;
      m.Chart.register(
        m.LineController,
        m.LineElement,
        m.PointElement,
        m.LinearScale,
        m.Tooltip,
        m.Legend,
      );
      m.Chart.defaults.color = "#9aa1b5";
      m.Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';
      chart.current = new m.Chart(canvas.current, {
        type: "line",
        data: { datasets: [] },
        options: {
          responsive: true,
          maintainAspectRatio: false,
          animation: false,
          parsing: false,
          normalized: true,
          spanGaps: true,
          interaction: { mode: "nearest", axis: "x", intersect: false },
          scales: {
            x: {
              type: "linear",
              grid: { color: "#262b3866" },
              border: { color: "#262b38" },
              afterBuildTicks: (scale) => {
                const ticks = timeTicks(scale.min, scale.max);
                step.current = ticks.length > 1 ? ticks[1] - ticks[0] : BUCKET_MS.day;
                scale.ticks = ticks.map((value) => ({ value }));
              },
              ticks: {
                maxRotation: 0,
                autoSkip: true,
                callback: (v) => fmtTick(Number(v), step.current),
              },
            },
            y: {
              beginAtZero: true,
              grid: { color: "#262b38" },
              border: { display: false },
              ticks: { callback: (v) => `${v}${latest.current.unit ? ` ${latest.current.unit}` : ""}` },
            },
          },
          plugins: {
            legend: {
              position: "bottom",
              labels: {
                boxWidth: 10,
                boxHeight: 10,
                usePointStyle: true,
                pointStyle: "circle",
                filter: (item, data) => !(data.datasets[item.datasetIndex!] as { quiet?: boolean }).quiet,
              },
            },
            tooltip: {
              backgroundColor: "#0d0f15ee",
              borderColor: "#262b38",
              borderWidth: 1,
              padding: 10,
              callbacks: {
                title: (items) =>
                  items.length ? fmtBucket(items[0].parsed.x ?? 0, latest.current.bucket) : "",
                label: (item) => {
                  const y = item.parsed.y;
                  const u = latest.current.unit;
                  return ` ${item.dataset.label}: ${y === null ? "—" : y.toFixed(0)}${u ? ` ${u}` : ""}`;
                },
              },
            },
          },
        },
      });
      draw();
    }).catch((err) => console.error("chart.js failed to load", err));
    return () => {
      cancelled = true;
      chart.current?.destroy();
      chart.current = null;
    };
  }, []);

  function draw() {
    const c = chart.current;
    if (!c || !canvas.current) return;
    const p = latest.current;
    c.data.datasets = p.datasets.map((d) => ({
      label: d.label,
      quiet: d.quiet,
      data: d.data.map(([x, y]) => ({ x, y })),
      borderColor: d.dashed ? `${d.color}99` : d.color,
      backgroundColor: d.color,
      borderWidth: d.dashed ? 1.5 : 2.25,
      borderDash: d.dashed ? [5, 4] : [],
      pointRadius: d.dashed ? 0 : d.data.length > 60 ? 0 : 2.5,
      pointHoverRadius: 4,
      tension: 0.25,
    }));
    const xs = c.options.scales!.x!;
    xs.min = p.xMin;
    xs.max = p.xMax;
    c.update("none");
    canvas.current.dataset.drawn = JSON.stringify(
      c.data.datasets.map((d) => ({ label: d.label, points: d.data.filter((pt) => pt.y !== null).length })),
    );
  }

  useEffect(draw, [props.datasets, props.xMin, props.xMax, props.bucket, props.unit]);

  return (
    <div class="chart-box" style={`height:${props.height ?? 280}px`}>
      <canvas ref={canvas} role="img" aria-label={props.label}></canvas>
    </div>
  );
}
