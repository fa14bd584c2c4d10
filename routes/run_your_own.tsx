// /run-your-own: the entrance (SPEC §9). The page only renders what a visitor needs to start;
// saving, running, watching and cancelling go through /api/v1 from the island.
import { Hono } from "hono";
import RunYourOwn, { type RunYourOwnProps } from "../islands/run_your_own.tsx";
import { listPublicAgents } from "../lib/agents.ts";
import type { AppDeps, AppEnv } from "../lib/context.ts";
import { Island } from "../lib/islands/marker.tsx";
import { listProjects } from "../lib/projects.ts";
import { listProviders } from "../lib/providers.ts";
import { renderPage } from "./_render.tsx";

/** The /run-your-own page: open to everyone, saving and running need an account. */
export function runYourOwnRoutes(deps: AppDeps) {
  const app = new Hono<AppEnv>();

  app.get("/run-your-own", async (c) => {
    const user = c.var.user ?? null;
    const [providers, agents, projects] = await Promise.all([
      listProviders(deps.sql, { viewerId: user?.id ?? null }),
      listPublicAgents(deps.sql),
      user ? listProjects(deps.sql, user) : Promise.resolve([]),
    ]);
    const props: RunYourOwnProps = {
      signedIn: user !== null,
      providers: providers.map((p) => ({ id: p.id, name: p.name, sku: p.sku })),
      regions: [...new Set(agents.map((a) => a.region))].sort(),
      projects: projects.map((p) => ({ id: p.id, name: p.name })),
    };
    return renderPage(c, deps, {
      title: "Run your own",
      body: (
        <>
          <section class="ryo-hero">
            <p class="ryo-kicker">Run your own evaluation</p>
            <h1>Measure your voice agent the way a caller hears it</h1>
            <p class="lead">
              Tell Vox where your agent lives and how to start a call. An eval agent in the region you pick
              opens it in a real browser, speaks to it, and times every answer and interruption.
            </p>
          </section>
          <Island name="run_your_own" component={RunYourOwn} props={props} />
          <section class="card ryo-cli">
            <h2>{user ? "Or run it on your machine" : "No account? Try it on your machine"}</h2>
            <p class="muted">
              The eval agent runs a voice-agent-tester application and scenario pair locally, with no server.
              Download the launch steps as <code>app.yaml</code> and the eval steps as <code>suite.yaml</code>
              {" "}
              above, then:
            </p>
            <pre><code>deno task agent run --app app.yaml --suite suite.yaml --report report.json</code></pre>
            <p class="muted small">
              See <a href="/dive">how it works</a> for what each metric means, and the <a href="/docs">API</a>
              {" "}
              to script the same steps.
            </p>
          </section>
        </>
      ),
    });
  });

  return app;
}
