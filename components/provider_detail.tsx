import type { ComponentChildren } from "preact";
import type { LeaderboardEntry } from "../lib/metrics.ts";
import { fmtDateTime, METRICS, skuLabel } from "./metrics_view.ts";
import { VerifiedBadge } from "./verified_badge.tsx";

/**
 * One provider's figures over a period: totals, a row per region and a trend chart (passed
 * in, since charts live in islands). Used by the leaderboard's detail panel and by the
 * provider page, so both show the same numbers.
 */
export function ProviderDetail(
  { provider, total, regions, days, color, chart, onClose }: {
    provider: { id: string; name: string; sku: number; verifiedOrganization?: string | null };
    total: LeaderboardEntry | null;
    regions: LeaderboardEntry[];
    days: number;
    color: string;
    chart: ComponentChildren;
    onClose?: () => void;
  },
) {
  return (
    <section
      class="card provider-detail"
      data-testid="provider-detail"
      data-provider={provider.id}
      style={`--c:${color}`}
      aria-label={`${provider.name} details`}
    >
      <header class="detail-head">
        <div>
          <h2>
            <span class="swatch" aria-hidden="true"></span>
            {provider.name}
            <VerifiedBadge organization={provider.verifiedOrganization} />
          </h2>
          <p class="muted small">
            {skuLabel(provider.sku)} · last {days === 1 ? "day" : `${days} days`} · last result{" "}
            {fmtDateTime(total?.lastResultAt ?? null)}
          </p>
        </div>
        <div class="detail-actions">
          {onClose && (
            <>
              <a class="button small" href={`/leaderboard/provider/${provider.id}?days=${days}`}>
                Open page
              </a>
              <button class="button small" type="button" onClick={onClose} aria-label="Close details">
                Close
              </button>
            </>
          )}
        </div>
      </header>
      <dl class="stat-grid">
        {METRICS.map((m) => (
          <div key={m.key} title={m.hint}>
            <dt>{m.label}</dt>
            <dd data-metric={m.key}>
              {total ? m.fmt(m.get(total)) : "—"}
              {m.unit && total && m.get(total) !== null && <small>{m.unit}</small>}
            </dd>
          </div>
        ))}
      </dl>
      <div class="detail-body">
        <div class="detail-chart">
          <h3>Response latency trend</h3>
          {chart}
        </div>
        <div class="detail-regions">
          <h3>By region</h3>
          {regions.length === 0 ? <p class="empty">No results in this period.</p> : (
            <div class="table-scroll">
              <table class="table compact" data-testid="provider-regions">
                <thead>
                  <tr>
                    <th>Region</th>
                    {METRICS.map((m) => <th key={m.key} class="num" title={m.hint}>{m.short}</th>)}
                  </tr>
                </thead>
                <tbody>
                  {regions.map((e) => (
                    <tr key={e.region} data-region={e.region}>
                      <td>{e.region}</td>
                      {METRICS.map((m) => (
                        <td key={m.key} class="num" data-metric={m.key}>{m.fmt(m.get(e))}</td>
                      ))}
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </div>
      </div>
    </section>
  );
}
