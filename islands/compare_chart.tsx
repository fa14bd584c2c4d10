/// <reference lib="dom" />
// Results side by side as grouped bars: response and interrupt latency (median, with p90 as
// a lighter bar) per result. chart.js loads only on the comparison page, in the browser.
import { useEffect, useRef } from "preact/hooks";

export interface CompareChartProps {
  [key: string]: unknown;
  labels: string[];
  series: { label: string; values: (number | null)[]; color: string }[];
}

export default function CompareChart(props: CompareChartProps) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    let chart: { destroy(): void } | null = null;
    let cancelled = false;
    import("chart.js").then((m) => {
      if (cancelled || !canvas.current) return;
      m.Chart.register(m.BarController, m.BarElement, m.CategoryScale, m.LinearScale, m.Legend, m.Tooltip);
      chart = new m.Chart(canvas.current, {
        type: "bar",
        data: {
          labels: props.labels,
          datasets: props.series.map((s) => ({ label: s.label, data: s.values, backgroundColor: s.color })),
        },
        options: {
          responsive: true,
          maintainAspectRatio: false,
          animation: false,
          scales: {
            y: {
              beginAtZero: true,
              title: { display: true, text: "ms", color: "#9aa1b5" },
              ticks: { color: "#9aa1b5" },
            },
            x: { ticks: { color: "#9aa1b5" } },
          },
          plugins: { legend: { labels: { color: "#e6e8ef" } } },
        },
      });
      canvas.current.dataset.drawn = String(props.labels.length);
    });
    return () => {
      cancelled = true;
      chart?.destroy();
    };
  }, []);
  return (
    <div class="c-chart" style={{ height: "280px", position: "relative" }}>
      <canvas ref={canvas} role="img" aria-label="Latency of the compared results, in milliseconds" />
    </div>
  );
}
