// Baseline for the HTTP benchmark: a bare Hono app answering one JSON route, nothing else
// (no middleware, no database). `deno run -A bench/bare_hono_server.ts <port>`
import { Hono } from "hono";

const port = Number(Deno.args[0] ?? 8791);
const app = new Hono();
// About the size of a job as GET /api/v1/jobs/:id returns it.
const job = {
  id: 1,
  status: "completed",
  region: "bench",
  priority: 0,
  attempts: 1,
  workflowId: 1,
  evalSetId: 1,
  createdAt: new Date().toISOString(),
  finishedAt: new Date().toISOString(),
};
app.get("/job", (c) => c.json(job));
Deno.serve({ port, hostname: "127.0.0.1", onListen() {} }, app.fetch);
