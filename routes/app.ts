// The whole HTTP application: request-scoped middleware in order, then every route module.
import { Hono } from "hono";
import { secureHeaders } from "hono/secure-headers";
import { createAuthenticator } from "../lib/auth/authenticate.ts";
import { csrfProtection } from "../lib/auth/csrf.ts";
import { oauthProviders } from "../lib/auth/oauth_providers.ts";
import { generalRateLimit } from "../lib/auth/rate_limit.ts";
import type { AppDeps, AppEnv, ResolvedDeps } from "../lib/context.ts";
import { requestBodyLimits } from "../lib/body_limits.ts";
import { errorBody, handleError } from "../lib/errors.ts";
import { createMailer } from "../lib/mailer.ts";
import { requestCounter } from "../lib/ops_metrics.ts";
import { serveFile } from "../lib/static_files.ts";
import { adminJobsApi } from "./api/admin_jobs.ts";
import { adminSettingsApi } from "./api/admin_settings.ts";
import { adminUsersApi } from "./api/admin_users.ts";
import { agentGateway } from "./api/agent_gateway.ts";
import { artifactStoreFromConfig } from "../lib/artifact_store.ts";
import { agentTokensApi } from "./api/agent_tokens.ts";
import { adminPlanLimitsApi } from "./api/admin_plan_limits.ts";
import { userSessionsApi } from "./api/user_sessions.ts";
import { adminAgentsApi, agentsApi } from "./api/agents.ts";
import { apiKeysApi } from "./api/api_keys.ts";
import { audioApi } from "./api/audio.ts";
import { authApi } from "./api/auth.ts";
import { adminFundReturnsApi, billingApi, stripeWebhookApi } from "./api/billing.ts";
import { jobsApi } from "./api/jobs.ts";
import { metricsApi } from "./api/metrics.ts";
import { boardsAdminApi, boardsPublicApi } from "./api/boards.ts";
import { projectsApi } from "./api/projects.ts";
import { providersApi } from "./api/providers.ts";
import { resultsApi } from "./api/results.ts";
import { schedulesApi } from "./api/schedules.ts";
import { setupApi } from "./api/setup.ts";
import { userApi } from "./api/user.ts";
import { itemsApi } from "./api/workflows.ts";
import { workflowSecretsApi } from "./api/workflow_secrets.ts";
import { authPageRoutes } from "./auth_pages.tsx";
import { apiGetter } from "./console/_api.ts";
import { adminConsoleRoutes } from "./console/admin.tsx";
import { billingConsoleRoutes } from "./console/billing.tsx";
import { consoleRoutes } from "./console/user.tsx";
import { consoleAudioRoutes } from "./console/audio.tsx";
import { consoleProviderRoutes } from "./console/providers.tsx";
import { demoRoutes } from "./demo.ts";
import { diveRoutes } from "./dive.tsx";
import { docsRoutes } from "./docs.tsx";
import { healthRoutes } from "./health.ts";
import { metricsPageRoutes } from "./metrics_pages.tsx";
import { pageRoutes } from "./pages.tsx";
import { prometheusRoutes } from "./prometheus.ts";
import { runYourOwnRoutes } from "./run_your_own.tsx";
import { adminOrganizationsApi, invitesApi, organizationsApi } from "./api/orgs.ts";
import { adminPricingApi, pricingApi } from "./api/pricing.ts";
import { pricingPageRoutes } from "./pricing.tsx";
import { orgPageRoutes } from "./console/org.tsx";

const STATIC_DIR = new URL("../static/", import.meta.url).pathname;

/** Builds the whole HTTP application without listening; main.ts and tests serve it. */
export function createApp(given: AppDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const deps = resolveDeps(given);
  const requests = requestCounter();

  app.use("*", async (c, next) => {
    const given = c.req.header("x-request-id");
    const requestId = given && /^[A-Za-z0-9._-]{8,64}$/.test(given) ? given : crypto.randomUUID();
    const log = deps.log.child({ requestId });
    c.set("requestId", requestId);
    c.set("log", log);
    c.set("user", null);
    const started = performance.now();
    await next();
    c.header("X-Request-Id", requestId);
    requests.inc({ method: c.req.method, code: String(c.res.status) });
    log.info("request", {
      method: c.req.method,
      // Activation and invite links carry their single-use token in the path; it must not reach the log.
      path: c.req.path.replace(/^\/(activate|invite)\/[^/]+/, "/$1/[redacted]"),
      status: c.res.status,
      ms: Math.round((performance.now() - started) * 10) / 10,
    });
  });

  // Before anything reads a body: an oversized one is refused unread (lib/body_limits.ts).
  app.use("*", requestBodyLimits(deps.config));

  // The demo voice agent sets its own headers (routes/demo.ts), so it is mounted before the
  // app's; it exists only while the demo runs (embedded database and VOX_DEMO).
  if (deps.config.VOX_DEMO && !deps.config.DATABASE_URL) app.route("/demo", demoRoutes());

  app.use(
    "*",
    secureHeaders({
      contentSecurityPolicy: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", "data:"],
        connectSrc: ["'self'"],
        mediaSrc: ["'self'", "blob:", "data:"],
        frameAncestors: ["'none'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
      },
      strictTransportSecurity: deps.config.PUBLIC_URL?.startsWith("https:")
        ? "max-age=31536000; includeSubDomains"
        : false,
      referrerPolicy: "strict-origin-when-cross-origin",
      crossOriginEmbedderPolicy: false,
    }),
  );

  app.use("*", csrfProtection(deps.config));

  app.use("*", async (c, next) => {
    // Static assets need no caller; skipping them saves a session lookup per file.
    if (!c.req.path.startsWith("/static/") && !c.req.path.startsWith("/_islands/")) {
      c.set("user", await deps.authenticate(c));
    }
    await next();
  });
  // Stripe's deliveries come in bursts from a few addresses and are verified by signature
  // before anything else, so the per-address limit (meant for people) does not apply to them.
  app.route("/api/webhooks/stripe", stripeWebhookApi(deps));
  app.use("/api/*", generalRateLimit(deps));

  app.route("/", healthRoutes(deps));
  app.route("/", prometheusRoutes(deps, requests));
  app.route("/api/v1/agents", agentsApi(deps));
  app.route("/api/setup", setupApi(deps));
  app.route("/api/auth", authApi(deps));
  app.route("/api/v1/user", userApi(deps));
  app.route("/api/v1/api-keys", apiKeysApi(deps));
  app.route("/api/admin/users", adminUsersApi(deps));
  app.route("/api/admin/jobs", adminJobsApi(deps));
  app.route("/api/admin/settings", adminSettingsApi(deps));
  app.route("/api/v1/metrics", metricsApi(deps));
  app.route("/api/v1/metrics", boardsPublicApi(deps));
  app.route("/api/admin", boardsAdminApi(deps));
  app.route("/api/v1/providers", providersApi(deps));
  app.route("/api/v1/projects", projectsApi(deps));
  app.route("/api/v1/workflows", itemsApi(deps, "workflow"));
  app.route("/api/v1/eval-sets", itemsApi(deps, "eval_set"));
  app.route("/api/v1/workflows", workflowSecretsApi(deps));
  app.route("/api/v1/schedules", schedulesApi(deps));
  app.route("/api/v1/jobs", jobsApi(deps));
  app.route("/api/v1/results", resultsApi(deps));
  app.route("/api/admin/agent-tokens", agentTokensApi(deps));
  app.route("/api/v1", audioApi(deps));
  // Job offers carry the workflow's sealed secrets, opened with the same key (lib/workflow_secrets.ts).
  deps.orchestrator?.useSecretKey(deps.secretKey);
  app.route("/api/v1/organizations", organizationsApi(deps));
  app.route("/api/v1/invites", invitesApi(deps));
  app.route("/api/admin/organizations", adminOrganizationsApi(deps));
  app.route("/api/pricing", pricingApi(deps));
  app.route("/api/admin/pricing", adminPricingApi(deps));
  app.route("/", billingApi(deps));
  app.route("/api/admin/fund-returns", adminFundReturnsApi(deps));
  app.route("/api/admin/agents", adminAgentsApi(deps));
  app.route("/api/admin/plan-limits", adminPlanLimitsApi(deps));
  app.route("/api/v1/user/sessions", userSessionsApi(deps));
  if (deps.orchestrator) {
    app.route(
      "/api/agent",
      agentGateway(deps.orchestrator, deps.artifactStore, {
        perJob: deps.config.VOX_ARTIFACTS_PER_JOB,
        bytesPerJob: deps.config.VOX_ARTIFACT_BYTES_PER_JOB,
      }),
    );
  }
  app.route("/", docsRoutes(deps));

  app.get("/_islands/:buildId/*", async (c) => {
    if (c.req.param("buildId") !== deps.assets.buildId) return c.notFound();
    const rel = c.req.path.slice(`/_islands/${deps.assets.buildId}/`.length);
    return await serveFile(c.req.raw, deps.assets.dir, rel, {
      cacheControl: "public, max-age=31536000, immutable",
    });
  });
  app.get("/static/*", async (c) => {
    return await serveFile(c.req.raw, STATIC_DIR, c.req.path.slice("/static/".length), {
      cacheControl: "public, max-age=3600",
    });
  });

  app.route("/", pageRoutes(deps));
  app.route("/", runYourOwnRoutes(deps));
  app.route("/", metricsPageRoutes(deps));
  app.route("/", diveRoutes(deps));
  app.route("/", authPageRoutes(deps));
  // The consoles ask the API through this same app, as the browser's caller (console/_api.ts).
  const apiGet = apiGetter((req, env) => app.fetch(req, env));
  app.route("/", consoleRoutes(deps, apiGet));
  app.route("/", consoleAudioRoutes(deps, apiGet));
  app.route("/", consoleProviderRoutes(deps, apiGet));
  app.route("/", adminConsoleRoutes(deps, apiGet));
  app.route("/", pricingPageRoutes(deps, apiGet));
  app.route("/", orgPageRoutes(deps, apiGet));
  app.route("/", billingConsoleRoutes(deps, apiGet));

  app.notFound((c) => {
    if (c.req.path.startsWith("/api/")) {
      return c.json(errorBody("not_found", `No route for ${c.req.method} ${c.req.path}`), 404);
    }
    return c.html(
      `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Not found · Vox</title>` +
        `<link rel="stylesheet" href="/static/vox.css"></head><body><main><h1>Not found</h1>` +
        `<p>There is no page here. <a href="/">Home</a> · <a href="/run-your-own">Run your own</a></p>` +
        `</main></body></html>`,
      404,
    );
  });
  app.onError(handleError);
  return app;
}

/** Fills in the identity defaults: real authentication, the configured mailer and sign-in providers. */
function resolveDeps(given: AppDeps): ResolvedDeps {
  const deps = {
    ...given,
    mailer: given.mailer ?? createMailer(given.config, given.log),
    oauthProviders: given.oauthProviders ?? oauthProviders(given.config),
    artifactStore: given.artifactStore ?? artifactStoreFromConfig(given.config),
  } as ResolvedDeps;
  deps.authenticate = given.authenticate ?? createAuthenticator(deps);
  return deps;
}
