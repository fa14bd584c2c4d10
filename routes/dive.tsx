import { Hono } from "hono";
import type { AppDeps, AppEnv } from "../lib/context.ts";
import { listProviders } from "../lib/providers.ts";
import { renderPage } from "./_render.tsx";

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
      "The same turns replayed under impaired network profiles (latency, jitter, loss) applied at the operating-system level, where they affect WebRTC and WebSockets alike, compared with the clean run: how many turns still succeed and how much slower they are.",
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
];

/** `/dive`: how Vox evaluates voice agents, the providers it tracks, and how to integrate. */
export function diveRoutes(deps: AppDeps) {
  const app = new Hono<AppEnv>();

  app.get("/dive", async (c) => {
    const providers = await listProviders(deps.sql, { order: "sku" });
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
              <pre><code>deno task agent run --app app.yaml --suite suite.yaml --report report.json</code></pre>
            </section>
            <section class="card">
              <h3>Through the API</h3>
              <p>
                Create an API key in the console, then create workflows and eval sets, run them and read
                results over REST. The reference is at <a href="/docs">/docs</a>.
              </p>
              <pre><code>curl -H "Authorization: Bearer vox_live_…" {new URL(c.req.url).origin}/api/v1/user</code></pre>
            </section>
          </div>
        </>
      ),
    });
  });

  return app;
}
