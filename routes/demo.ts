// The bundled demo voice agent (static/demo/), served at /demo/ while Vox runs its demo
// (lib/demo.ts). It stands in for a customer's product page, so it carries its own headers
// rather than the app's: a page under test decides its own policy, and the measuring agent
// injects its audio hooks as blob: worklets, which the app's strict script-src would refuse.
import { Hono } from "hono";
import { extname, join, normalize } from "node:path";
import type { AppEnv } from "../lib/context.ts";
import { errorBody } from "../lib/errors.ts";

/** Folder of the demo page (agent/) and the caller's utterances (caller/). */
export const DEMO_DIR = new URL("../static/demo/", import.meta.url).pathname;
/** How the demo agent behaves: Web Audio output, a 900 ms reply delay, stops 250 ms into a barge-in. */
export const DEMO_AGENT_QUERY = "out=webaudio&delay=900&stop=250";
/** Path of the demo agent page, with its behaviour. */
export const DEMO_AGENT_PATH = `/demo/agent/index.html?${DEMO_AGENT_QUERY}`;

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".wav": "audio/wav",
};

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
    const rel = normalize(decodeURIComponent(c.req.path.slice("/demo/".length)));
    const type = TYPES[extname(rel)];
    if (rel.startsWith("..") || rel.startsWith("/") || rel.includes("\0") || !type) {
      return c.json(errorBody("not_found", "No such demo file"), 404);
    }
    try {
      const body = await Deno.readFile(join(DEMO_DIR, rel));
      return new Response(body, {
        headers: {
          "content-type": type,
          "cache-control": "public, max-age=3600",
          "content-security-policy": POLICY,
          "x-content-type-options": "nosniff",
        },
      });
    } catch (err) {
      if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.IsADirectory) {
        return c.json(errorBody("not_found", "No such demo file"), 404);
      }
      throw err;
    }
  });
  return app;
}
