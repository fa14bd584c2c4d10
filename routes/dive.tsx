import { Hono } from "hono";
import type { AppDeps, AppEnv } from "../lib/context.ts";
import { CONFIDENCE } from "../lib/board_stats.ts";
import { leaderboard } from "../lib/metrics.ts";
import { blindCheck, METHOD_NOTES, readAccuracy } from "../lib/method_transparency.ts";
import { listProviders } from "../lib/providers.ts";
import { readSetting } from "../lib/settings.ts";
import { TOLERANCE_MS } from "../lib/verify.ts";
import { renderPage } from "./_render.tsx";
import { VerifiedBadge } from "../components/verified_badge.tsx";

const METHODS = [
  {
    name: "Response latency",
    unit: "ms, lower is better",
    text:
      "From the last voiced sample of the caller's utterance, as the page's microphone delivers it, to the first voiced sample the page plays back. Both moments are sample indices on the page's own audio clock, so trailing silence in the prompt file and delays inside the test harness are not counted against the agent.",
  },
  {
    name: "Interrupt latency",
    unit: "ms, lower is better",
    text:
      "The caller starts speaking while the agent talks (a barge-in). Measured from the first voiced sample of the barge-in to the moment the agent's voice stops. An agent that keeps talking past the timeout is a failed interruption and is reported as such, not averaged away.",
  },
  {
    name: "Network resilience",
    unit: "0–100, higher is better",
    text:
      "The same turns replayed under impaired network profiles (delay, jitter, loss, rate per direction) compared with the clean run: how many turns still succeed and how much slower responses and interruptions are. The profile is applied by the kernel's netem where the host has it, otherwise by the agent's own delay lines, with WebRTC forced through its TURN relay, so WebRTC, WebSockets and HTTP are all impaired; each report names the method used.",
  },
  {
    name: "Noise reduction",
    unit: "0–100, higher is better",
    text:
      "Speech mixed with background noise at set signal-to-noise ratios must still get timely answers, and noise alone must neither trigger a reply nor stop the agent mid-sentence.",
  },
  {
    name: "Naturalness",
    unit: "0–100, higher is better",
    text:
      "A documented heuristic computed from the agent's recorded speech. It describes delivery (pauses, pacing, level), not what was said: it does not judge correctness, helpfulness or voice quality.",
  },
  // Turn taking (issue 20; method vox-turntaking/1, docs/agent.md "Turn taking").
  {
    name: "Pause takeover rate",
    unit: "% of pauses, lower is better (shown with n)",
    text:
      "The caller stops mid-sentence to think (“I'd like to book… a table for four”) for a set time, then goes on. If the agent's voice starts inside that pause, it took the turn. The rate is takeovers ÷ pauses; each takeover's time after the pause began is kept. The reply after the caller's resumed speech is timed as a response. Not measured: what the agent said, or whether the caller would have yielded to it.",
  },
  {
    name: "Backchannel stop rate",
    unit: "% of backchannels, lower is better (shown with n)",
    text:
      "While the agent talks, the caller says a short acknowledgement (“mm-hmm”). The agent should keep talking; its voice ending within a window (1.5 s by default) after the acknowledgement began is a false stop, with its stop latency. Not measured: an agent whose reply happens to end inside the window cannot be told apart from one that stopped, so eval sets place backchannels early in long replies.",
  },
  {
    name: "Background false-trigger rate",
    unit: "% of bystander segments, lower is better (shown with n)",
    text:
      "Speech not addressed to the agent (a bystander, a television) at a lower level. A reply starting during it or within two seconds after, or the agent stopping while it plays (within 1.5 s of its start), counts against the agent. Not measured: whether the agent understood it was not addressed; only whether it reacted.",
  },
  {
    name: "Turn-taking penalty",
    unit: "ms per event, lower is better",
    text:
      "One number for the trade-off between responsiveness and robustness, in the spirit of an average penalty time: every false takeover, false stop or answered bystander costs 2000 ms, every reply costs its latency beyond 800 ms (a missing reply 2000 ms), averaged over the pauses, backchannels, bystander segments and replies of a job. The constants are a convention, documented with the method version, not a measurement of what callers feel.",
  },
];

/** `/dive`: how Vox evaluates voice agents, the providers it tracks, and how to integrate. */
export function diveRoutes(deps: AppDeps) {
  const app = new Hono<AppEnv>();

  app.get("/dive", async (c) => {
    const [providers, minTurns, board, accuracy, blind] = await Promise.all([
      listProviders(deps.sql, { order: "sku" }),
      readSetting(deps.sql, "boards.min_turns"),
      leaderboard(deps.sql, { days: 365 }),
      readAccuracy(),
      blindCheck(deps.sql),
    ]);
    const acc = (kind: string) => accuracy?.filter((r) => r.kind === kind) ?? [];
    const ms = (v: number | null | undefined) => v === null || v === undefined ? "—" : `${v.toFixed(2)} ms`;
    return renderPage(c, deps, {
      title: "How it works",
      body: (
        <>
          <h1>How Vox evaluates voice agents</h1>
          <p class="lead">
            An eval agent opens the voice agent's page in headless Chromium, speaks into its microphone,
            listens to what it plays, and times both sides of the call on one audio clock. Every job reports
            the median, standard deviation, 90th percentile and number of turns for each latency, and records
            which version of each method produced it.
          </p>

          <section class="card">
            <h2>One call, step by step</h2>
            <ol class="steps">
              <li>
                The <strong>workflow</strong>{" "}
                (an application config: URL or HTML plus the steps that start the agent — clicks, waits,
                typing) opens the product.
              </li>
              <li>
                The <strong>eval set</strong>{" "}
                (a scenario config) says what the caller says and what to wait for: <code>speak</code>,{" "}
                <code>wait_for_voice</code>,{" "}
                <code>wait_for_silence</code>, barge-ins, background noise, network profiles.
              </li>
              <li>
                Speech is fed into the page's microphone before any page script runs; every way the page can
                play sound is tapped: <code>&lt;audio&gt;</code>/<code>&lt;video&gt;</code> by{" "}
                <code>src</code> or <code>srcObject</code>, WebRTC tracks and Web Audio graphs.
              </li>
              <li>
                Both signals meet in one audio worklet, so each voice onset and offset is a sample index on
                the same clock, not a timestamp from a poll.
              </li>
              <li>
                The result, per-turn measurements and a stereo recording (caller left, agent right) go back to
                the server and feed the realtime dashboard and the leaderboard.
              </li>
            </ol>
          </section>

          <h2 class="section-title">What each metric means</h2>
          <div class="grid2">
            {METHODS.map((m) => (
              <section class="card" key={m.name}>
                <h3>{m.name}</h3>
                <p class="muted">{m.unit}</p>
                <p>{m.text}</p>
              </section>
            ))}
          </div>

          <h2 class="section-title" id="method">How the public numbers are computed</h2>
          <section class="card" data-testid="method-transparency">
            <ul>
              <li>
                <strong>Per job</strong>: each latency is the median over the job's measured turns; turns that
                failed are not averaged in but counted as discards (no voice detected, ambiguous turn,
                interruption not honoured, measurement unreliable because the agent's host was overloaded), as
                are failed runs.
              </li>
              <li>
                <strong>Per figure</strong>: a provider's figure is the mean of its jobs' medians over the
                period, of results from mainline items run by a principal, fellow or the admin.{" "}
                <strong>n</strong> is shown as turns and jobs.
              </li>
              <li>
                <strong>{Math.round(CONFIDENCE * 100)} % confidence interval</strong>: mean ± t(0.975, jobs −
                1) · s / √jobs, with s the spread of the per-job medians. Each job is one cluster (its turns
                share a page, a network and a minute), so many turns in one job do not narrow the interval.
              </li>
              <li>
                <strong>Minimum n</strong>: a figure is ranked once it rests on at least{" "}
                <span data-testid="min-turns">{minTurns}</span>{" "}
                turns (and two jobs); below that it is listed as “not enough data”.
              </li>
              <li>
                <strong>Ties</strong>: a rank is 1 + the number of providers whose whole interval lies below
                this one's, so providers whose intervals overlap share a rank (shown “=N”).
              </li>
              <li>
                <strong>Boards per product type</strong>: ConvoAI engines and RTC engines are ranked
                separately.
              </li>
              <li>
                <strong>Method versions</strong>: results computed with different method versions are never
                pooled in one figure; the boards show the newest set (now:{" "}
                <span data-testid="dive-method">
                  {board.method
                    ? Object.entries(board.method.versions).map(([k, v]) => `${k} ${v}`).join(", ")
                    : "no results yet"}
                </span>
                ) and older ones on request.
              </li>
              <li>
                <strong>Exclusions</strong>: the administrator can take a result or a time window off the
                boards, always with a reason, which the provider's page lists next to its discards. Every
                exclusion is audited.
              </li>
              <li>
                <strong>Receipts</strong>: every result keeps the SHA-256 of its report and of each stereo
                recording (caller left, agent right); a provider's receipts list each counted result.{" "}
                <code>deno task verify</code>{" "}
                re-derives each response turn from its recording with the meter's own detector and reports any
                that differs by more than {TOLERANCE_MS}{" "}
                ms, any hash that no longer matches, and any published figure that differs from a computation
                from scratch.
              </li>
            </ul>
          </section>

          <section class="card" data-testid="method-table">
            <h3>Each metric's method</h3>
            {/* Focusable so a keyboard can scroll it on a narrow screen (axe: scrollable-region-focusable). */}
            <div class="table-scroll" tabIndex={0} role="region" aria-label="Each metric's method">
              <table class="table compact">
                <thead>
                  <tr>
                    <th>Metric</th>
                    <th>Method version</th>
                    <th>Measured accuracy (|error| p50 / p95)</th>
                    <th>What it does not capture</th>
                  </tr>
                </thead>
                <tbody>
                  {METHOD_NOTES.map((m) => (
                    <tr key={m.key} data-metric={m.key}>
                      <td>{m.key}</td>
                      <td>
                        <code>{m.version}</code>
                      </td>
                      <td>
                        {acc(m.key.replace("_latency", "")).length === 0
                          ? <span class="muted">not benchmarked</span>
                          : acc(m.key.replace("_latency", "")).map((r) => (
                            <div key={r.path} data-path={r.path}>
                              {r.path}: {ms(r.p50)} / {ms(r.p95)} (n = {r.n})
                            </div>
                          ))}
                      </td>
                      <td>{m.notCaptured}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
            <p class="muted small">
              Accuracy is read from <code>bench/accuracy.json</code> (the output of{" "}
              <code>deno task bench:accuracy --json</code>): Vox's measurement against the reference agent's
              known truth, per audio output path.
            </p>
            <h3>Blind check</h3>
            <p data-testid="blind-check">
              The bundled reference agent answers {blind.truth.responseMs} ms after the caller stops and stops
              {" "}
              {blind.truth.interruptMs}{" "}
              ms into a barge-in; the detector is not told. Through the production path (server, eval agent,
              result), its latest measurement is {blind.measured
                ? `${ms(blind.measured.responseMs)} response and ${
                  ms(blind.measured.interruptMs)
                } interrupt (result ${blind.measured.resultId}, ${blind.measured.at.slice(0, 16)} UTC)`
                : "not there yet (the demo measures it within minutes of a fresh start)"}.
            </p>
          </section>

          <h2 class="section-title">Providers</h2>
          <section class="card">
            <table class="table">
              <thead>
                <tr>
                  <th>Provider</th>
                  <th>Kind</th>
                  <th>Id</th>
                </tr>
              </thead>
              <tbody>
                {providers.map((p) => (
                  <tr key={p.id}>
                    <td>
                      {p.website ? <a href={p.website} rel="noopener">{p.name}</a> : p.name}
                      <VerifiedBadge organization={p.verifiedOrganization} />
                      {p.description && <div class="muted">{p.description}</div>}
                    </td>
                    <td>{p.sku === 0 ? "ConvoAI engine" : "RTC engine"}</td>
                    <td>
                      <code>{p.id}</code>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            <p class="muted">
              Only mainline workflows, curated by Vox's principals and fellows, feed the public boards. Anyone
              can measure their own product from <a href="/run-your-own">Run your own</a>.
            </p>
          </section>

          <h2 class="section-title">Integrate Vox into your own product</h2>
          <div class="grid2">
            <section class="card">
              <h3>Locally, no server</h3>
              <p>Run a voice-agent-tester application and scenario pair and get a JSON report:</p>
              <pre
                tabIndex={0}
              ><code>deno task agent run --app app.yaml --suite suite.yaml --report report.json</code></pre>
            </section>
            <section class="card">
              <h3>Through the API</h3>
              <p>
                Create an API key in the console, then create workflows and eval sets, run them and read
                results over REST. The reference is at <a href="/docs">/docs</a>.
              </p>
              <pre
                tabIndex={0}
              ><code>curl -H "Authorization: Bearer vox_live_…" {new URL(c.req.url).origin}/api/v1/user</code></pre>
            </section>
          </div>
        </>
      ),
    });
  });

  return app;
}
