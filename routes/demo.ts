// The bundled demo voice agent (static/demo/), served at /demo/ while Vox runs its demo
// (lib/demo.ts). It stands in for a customer's product page, so it carries its own headers
// rather than the app's: a page under test decides its own policy, and the measuring agent
// injects its audio hooks as blob: worklets, which the app's strict script-src would refuse.
import { Hono } from "hono";
import type { AppEnv } from "../lib/context.ts";
import { DEMO_AGENT_PATH, DEMO_DIR } from "../lib/demo.ts";
import { serveFile } from "../lib/static_files.ts";

const POLICY = [
  "default-src 'self'",
  "script-src 'self' blob:",
  "worker-src 'self' blob:",
  "style-src 'self' 'unsafe-inline'",
  "media-src 'self' blob: data:",
  "connect-src 'self'",
  "img-src 'self' data:",
  "frame-ancestors 'none'",
].join("; ");

/** GET /demo (the agent page) and the files under it. */
export function demoRoutes() {
  const app = new Hono<AppEnv>();
  app.get("/", (c) => c.redirect(DEMO_AGENT_PATH));
  app.get("/*", async (c) => {
    return await serveFile(c.req.raw, DEMO_DIR, decodeURIComponent(c.req.path.slice("/demo/".length)), {
      cacheControl: "public, max-age=3600",
      headers: { "content-security-policy": POLICY, "x-content-type-options": "nosniff" },
      only: [".html", ".js", ".wav"],
      missing: "No such demo file",
    });
  });
  return app;
}
