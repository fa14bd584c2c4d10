import type { DiscardReason, Exclusion } from "../lib/board_exclusions.ts";
import type { LeaderboardEntry, MethodSet } from "../lib/metrics.ts";
import type { Receipt } from "../lib/receipts.ts";
import { fmtCi, fmtDateTime, fmtMethods, fmtMs, fmtN, fmtRank } from "./metrics_view.ts";

/**
 * What stands behind a provider's public numbers (issue 13): how sure the figure is (n, 95 %
 * interval, rank or "not enough data"), which method versions computed it, what was left out
 * and why (discards per reason, results an administrator excluded, with the reason), and
 * the receipts: the newest counted results with their report's and recordings' SHA-256,
 * and where the full list is.
 */
export function BoardAccountability(
  { providerId, days, total, method, methods, minTurns, exclusions, discards, latest }: {
    providerId: string;
    days: number;
    total: LeaderboardEntry | null;
    method: MethodSet | null;
    methods: MethodSet[];
    minTurns: number;
    exclusions: Exclusion[];
    discards: { reason: DiscardReason; count: number }[];
    /** The newest receipts of the figure, newest first. */
    latest: Receipt[];
  },
) {
  const receipts = `/api/v1/metrics/receipts?providerId=${providerId}&days=${days}${
    method ? `&method=${method.id}` : ""
  }`;
  return (
    <section class="card" data-testid="board-accountability" aria-label="How sure these numbers are">
      <h2>How sure these numbers are</h2>
      {total
        ? (
          <dl class="stat-grid" data-testid="certainty">
            <div>
              <dt>Rank</dt>
              <dd>{total.enoughData ? fmtRank(total) : "not enough data"}</dd>
            </div>
            <div>
              <dt>Response 95 % CI</dt>
              <dd>
                {fmtCi(total.responseLatency)} <small>ms</small>
              </dd>
            </div>
            <div>
              <dt>n</dt>
              <dd>{fmtN(total.responseLatency)}</dd>
            </div>
            <div>
              <dt>Interrupt 95 % CI</dt>
              <dd>
                {fmtCi(total.interruptLatency)} <small>ms</small>
              </dd>
            </div>
          </dl>
        )
        : <p class="muted">No counted results in this period.</p>}
      <p class="muted small">
        A provider is ranked once its figure rests on at least {minTurns}{" "}
        turns; ranks whose intervals overlap are shown as ties. Method versions:{" "}
        <span data-testid="method-versions">{method ? fmtMethods(method.versions) : "—"}</span>
        {methods.length > 1 && (
          <>
            {" "}(older: {methods.slice(1).map((m, i) => (
              <span key={m.id}>
                {i > 0 && ", "}
                <a href={`/leaderboard/provider/${providerId}?days=${days}&method=${m.id}`}>
                  {m.results} results
                </a>
              </span>
            ))})
          </>
        )}. <a href={receipts}>Receipts</a> (each counted result with its report's and recordings' SHA-256).
      </p>
      <h3>Latest receipts</h3>
      {latest.length === 0
        ? <p class="muted small">None in this period.</p>
        : (
          <ul class="receipt-list" data-testid="receipts">
            {latest.map((r) => (
              <li key={r.resultId} data-result={r.resultId}>
                <p>
                  #{r.resultId} · {r.region} · {fmtDateTime(r.createdAt)} · response median{" "}
                  {fmtMs(r.responseLatency.median)} ms (n {r.responseLatency.n})
                </p>
                <p>
                  report <code class="hash" data-receipt="report">{r.reportSha256 ?? "—"}</code>
                </p>
                {r.recordings.map((a) => (
                  <p key={a.name}>
                    {a.name} <code class="hash" data-receipt={a.name}>{a.sha256}</code>
                  </p>
                ))}
              </li>
            ))}
          </ul>
        )}
      {latest.length > 0 && (
        <p class="muted small">
          Check a recording with <code>sha256sum</code> of the file from its result's artifact route;{" "}
          <code>deno task verify</code> re-derives every counted result from its recording.
        </p>
      )}
      <h3>Discarded, by reason</h3>
      <table class="table compact" data-testid="discards">
        <tbody>
          {discards.map((d) => (
            <tr key={d.reason} data-reason={d.reason}>
              <td>{d.reason}</td>
              <td class="num">{d.count}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h3>Excluded from the boards</h3>
      {exclusions.length === 0
        ? <p class="muted small">None in this period.</p>
        : (
          <div class="table-scroll" tabIndex={0} role="region" aria-label="Excluded from the boards">
            <table class="table compact" data-testid="exclusions">
              <thead>
                <tr>
                  <th>Result</th>
                  <th>Region</th>
                  <th>Measured</th>
                  <th>Excluded</th>
                  <th>Reason</th>
                </tr>
              </thead>
              <tbody>
                {exclusions.map((x) => (
                  <tr key={x.resultId} data-result={x.resultId}>
                    <td>#{x.resultId}</td>
                    <td>{x.region}</td>
                    <td>{fmtDateTime(x.createdAt)}</td>
                    <td>{fmtDateTime(x.excludedAt)}</td>
                    <td>{x.reason}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
    </section>
  );
}
