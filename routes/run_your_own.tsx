// /run-your-own: the entrance (SPEC §9). The page only renders what a visitor needs to start;
// saving, running, watching and cancelling go through /api/v1 from the island.
import { Hono } from "hono";
import { toYaml } from "../agent/format.ts";
import RunYourOwn, { type RunYourOwnProps, type SavedPair } from "../islands/run_your_own.tsx";
import { listPublicAgents } from "../lib/agents.ts";
import type { AppDeps, AppEnv } from "../lib/context.ts";
import { Island } from "../lib/islands/marker.tsx";
import { listProjects } from "../lib/projects.ts";
import { listProviders } from "../lib/providers.ts";
import type { AuthUser } from "../lib/roles.ts";
import { listItems } from "../lib/workflows.ts";
import { renderPage } from "./_render.tsx";

const LAUNCH = " · launch";
const EVAL = " · eval";

/**
 * The pairs this page saved before in the user's projects ("<product> · launch" with its
 * "<product> · eval" in the same project), newest first, so a new run can update one in place
 * instead of creating another pair each time.
 */
async function savedPairs(deps: AppDeps, user: AuthUser): Promise<SavedPair[]> {
  const opts = { scope: "mine" as const, limit: 500, offset: 0 };
  const [workflows, evalSets] = await Promise.all([
    listItems(deps.sql, "workflow", user, opts),
    listItems(deps.sql, "eval_set", user, opts),
  ]);
  const out: SavedPair[] = [];
  for (const w of workflows.items) {
    if (!w.editable || !w.provider || !w.name.endsWith(LAUNCH)) continue;
    const name = w.name.slice(0, -LAUNCH.length);
    const e = evalSets.items.find((e) => e.editable && e.projectId === w.projectId && e.name === name + EVAL);
    if (!e || out.some((o) => o.projectId === w.projectId && o.name === name)) continue;
    const { url, ...launch } = w.config;
    out.push({
      name,
      projectId: w.projectId,
      providerId: w.provider.id,
      workflowId: w.id,
      evalSetId: e.id,
      link: typeof url === "string" ? url : "",
      launchYaml: toYaml(launch),
      evalYaml: toYaml(e.config),
    });
  }
  return out;
}

/** The /run-your-own page: open to everyone, saving and running need an account. */
export function runYourOwnRoutes(deps: AppDeps) {
  const app = new Hono<AppEnv>();

  app.get("/run-your-own", async (c) => {
    const user = c.var.user ?? null;
    const [providers, agents, projects, saved] = await Promise.all([
      listProviders(deps.sql, { viewerId: user?.id ?? null }),
      listPublicAgents(deps.sql),
      user ? listProjects(deps.sql, user) : Promise.resolve([]),
      user ? savedPairs(deps, user) : Promise.resolve([]),
    ]);
    const props: RunYourOwnProps = {
      signedIn: user !== null,
      providers: providers.map((p) => ({ id: p.id, name: p.name, sku: p.sku })),
      regions: [...new Set(agents.map((a) => a.region))].sort(),
      projects: projects.map((p) => ({ id: p.id, name: p.name })),
      saved,
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
            <pre
              tabIndex={0}
            ><code>deno task agent run --app app.yaml --suite suite.yaml --report report.json</code></pre>
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
