import { Hono } from "hono";
import AgentsTable from "../islands/agents_table.tsx";
import { listPublicAgents } from "../lib/agents.ts";
import type { AppDeps, AppEnv } from "../lib/context.ts";
import { Island } from "../lib/islands/marker.tsx";
import { renderPage } from "./_render.tsx";

/** Public pages rendered on the server. */
export function pageRoutes(deps: AppDeps) {
  const app = new Hono<AppEnv>();

  app.get("/", (c) =>
    renderPage(c, deps, {
      title: "Vox",
      body: (
        <>
          <section class="hero">
            <h1>How fast does your voice agent answer?</h1>
            <p class="lead">
              Vox calls voice agents from real browsers in many regions and measures what a caller hears:
              response latency, how quickly they stop when interrupted, how they hold up on a bad network and
              in noise.
            </p>
            <p>
              <a class="button primary" href="/run-your-own">Run your own evaluation</a>{" "}
              <a class="button" href="/agents">See the eval agents</a>
            </p>
          </section>
          <section class="grid3">
            <div class="card">
              <h2>Sample-accurate</h2>
              <p>
                Caller speech and agent voice are timed at the page's boundary on one audio clock, not by
                polling.
              </p>
            </div>
            <div class="card">
              <h2>Everywhere</h2>
              <p>Eval agents in each region run your workflow on a schedule or on demand.</p>
            </div>
            <div class="card">
              <h2>Open</h2>
              <p>
                Self-host it, script it through the REST API, and bring your voice-agent-tester YAML files
                unchanged.
              </p>
            </div>
          </section>
        </>
      ),
    }));

  app.get("/agents", async (c) => {
    const agents = await listPublicAgents(deps.sql);
    return renderPage(c, deps, {
      title: "Eval agents",
      body: (
        <>
          <h1>Eval agents</h1>
          <p class="lead">
            Every agent that runs evaluations for this Vox, by region. An agent is idle when it can take a
            job, occupied while it runs one, offline when it stopped reporting.
          </p>
          <Island name="agents_table" component={AgentsTable} props={{ agents }} />
        </>
      ),
    });
  });

  return app;
}
