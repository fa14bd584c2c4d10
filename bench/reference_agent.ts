// The reference voice agent as a measuring stick: served over HTTP, with the truth it keeps
// about its own replies paired against what the runner measured. The accuracy bench grades
// the runner with it; the agent tests import it from here (tests/ may import bench/, never
// the other way round).
import { extname, join, normalize } from "node:path";
import type { Turn } from "../agent/report.ts";

const types: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".wav": "audio/wav",
  ".ogg": "audio/ogg",
  ".mp3": "audio/mpeg",
};

// The reference voice agent is the page the bundled demo serves (static/demo/agent/): one
// copy, so the demo measures exactly what the accuracy tests and the bench check.
const DEMO_ROOT = new URL("../static/demo/", import.meta.url).pathname;

/** Serves static/demo/ on a free port: the reference agent at `${url}agent/index.html`; `url` ends with a slash. */
export function serveReferenceAgent(): { url: string; close(): Promise<void> } {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = normalize(decodeURIComponent(new URL(req.url).pathname)).replace(/^\/+/, "");
    if (path.startsWith("..")) return new Response("forbidden", { status: 403 });
    try {
      const body = await Deno.readFile(
        join(DEMO_ROOT, path.endsWith("/") || path === "" ? path + "index.html" : path),
      );
      return new Response(body, {
        headers: { "content-type": types[extname(path)] ?? "application/octet-stream" },
      });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  return { url: `http://127.0.0.1:${server.addr.port}/`, close: () => server.shutdown() };
}

/** Writes an application YAML pointing at `url` into a temp folder and returns its path. */
export async function appFile(url: string, steps = ""): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "vox-app-" });
  const path = join(dir, "reference_agent.yaml");
  await Deno.writeTextFile(path, `url: "${url}"\ntags: [reference]\nsteps:\n${steps || "  []\n"}`);
  return path;
}

/** One truth record the reference agent keeps in window.__truth. */
export interface TruthRecord {
  kind: string;
  latency_ms?: number | null;
  scheduled_latency_ms?: number | null;
  frame?: number;
  /** The agent's stop landed just before a word; its truth cannot tell which end is right. */
  ambiguous?: boolean;
}

/** Pairs the runner's measured turns with the agent's truth: latency per turn kind, in order of occurrence. */
export function pairTurns(
  turns: Turn[],
  truth: TruthRecord[],
): {
  kind: string;
  measured: number | null;
  truth: number | null;
  error: number | null;
  ambiguous: boolean;
}[] {
  const out = [];
  for (const kind of ["response", "interrupt"] as const) {
    const measured = turns.filter((t) => t.kind === kind);
    const real = truth.filter((t) => t.kind === kind);
    for (let i = 0; i < Math.max(measured.length, real.length); i++) {
      const m = measured[i]?.latency_ms ?? null;
      const t = real[i]?.latency_ms ?? null;
      out.push({
        kind,
        measured: m,
        truth: t,
        error: m != null && t != null ? Math.abs(m - t) : null,
        ambiguous: !!real[i]?.ambiguous,
      });
    }
  }
  return out;
}

/** Collects the reference agent's truth from the page before the runner closes it. */
export const collectTruth = (page: { evaluate: (f: () => unknown) => Promise<unknown> }) =>
  page.evaluate(() => (globalThis as unknown as { __truth: unknown }).__truth);
