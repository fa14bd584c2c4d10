import { Hono } from "hono";
import { z } from "zod";
import type { AppDeps, AppEnv } from "../../lib/context.ts";
import { requireUser } from "../../lib/guards.ts";
import { doc, valid } from "../../lib/openapi.ts";
import { getArtifact, getResult, listResults } from "../../lib/results.ts";
import { idParam, page, regionSchema } from "./_schemas.ts";

const listQuery = z.object({
  scope: z.enum(["mine", "mainline"]).default("mine"),
  jobId: z.coerce.number().int().positive().optional().describe("the result of one job"),
  workflowId: z.coerce.number().int().positive().optional(),
  evalSetId: z.coerce.number().int().positive().optional(),
  providerId: z.string().regex(/^[0-9a-z]{12}$/, "a 12-character provider id").optional(),
  region: regionSchema.optional(),
  ...page,
});
const artifactParam = z.object({
  id: idParam.shape.id,
  name: z.string().regex(/^[A-Za-z0-9._-]{1,200}$/, "an artifact name"),
});

const stats = z.object({
  median: z.number().nullable(),
  sd: z.number().nullable(),
  p90: z.number().nullable(),
  n: z.number(),
});
const resultSchema = z.object({
  id: z.number(),
  jobId: z.number(),
  workflowId: z.number(),
  evalSetId: z.number(),
  providerId: z.string(),
  region: z.string(),
  scheduleId: z.number().nullable(),
  agentId: z.number().nullable(),
  isMainline: z.boolean(),
  responseLatency: stats,
  interruptLatency: stats,
  networkResilience: z.number().nullable(),
  naturalness: z.number().nullable(),
  noiseReduction: z.number().nullable(),
  methods: z.record(z.string(), z.string()),
  createdAt: z.string(),
});

const tag = "results";
doc({
  method: "get",
  path: "/api/v1/results",
  summary: "Results of the caller's jobs and projects, or public mainline results",
  tag,
  auth: "user",
  query: listQuery,
  response: z.object({ results: z.array(resultSchema), total: z.number() }),
});
doc({
  method: "get",
  path: "/api/v1/results/{id}",
  summary: "One result with turns, report, artifacts and their SHA-256 receipts",
  tag,
  auth: "user",
  params: idParam,
  response: resultSchema.extend({
    turns: z.array(z.unknown()),
    report: z.unknown(),
    reportSha256: z.string().regex(/^[0-9a-f]{64}$/).nullable().describe(
      "receipt: hex SHA-256 of the stored report's text (UTF-8), as `deno task verify` recomputes it",
    ),
    artifacts: z.array(
      z.object({
        name: z.string(),
        kind: z.string(),
        contentType: z.string(),
        sizeBytes: z.number(),
        sha256: z.string().describe("receipt: hex SHA-256 of the artifact's bytes as downloaded"),
      }),
    ),
  }),
});
doc({
  method: "get",
  path: "/api/v1/results/{id}/artifacts/{name}",
  summary: "Download an artifact (the stereo recording: caller left, agent right)",
  tag,
  auth: "user",
  params: artifactParam,
  produces: "audio/wav",
});

/** /api/v1/results */
export function resultsApi(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.use("*", requireUser);
  app.get(
    "/",
    valid("query", listQuery),
    async (c) => c.json(await listResults(deps.sql, c.var.user!, c.req.valid("query"))),
  );
  app.get(
    "/:id",
    valid("param", idParam),
    async (c) => c.json(await getResult(deps.sql, c.var.user!, c.req.valid("param").id)),
  );
  app.get("/:id/artifacts/:name", valid("param", artifactParam), async (c) => {
    const p = c.req.valid("param");
    const a = await getArtifact(deps.sql, c.var.user!, p.id, p.name, deps.artifactStore!);
    return c.body(a.body, 200, {
      "Content-Type": a.contentType,
      "Content-Length": String(a.sizeBytes),
      "X-Content-Type-Options": "nosniff",
      "Content-Disposition": `attachment; filename="${p.name}"`,
    });
  });
  return app;
}
