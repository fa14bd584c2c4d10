// /api/admin/jobs: every user's jobs, for the admin console.
import { Hono } from "hono";
import { z } from "zod";
import type { AppDeps, AppEnv } from "../../lib/context.ts";
import { requireAdmin } from "../../lib/guards.ts";
import { listAllJobs } from "../../lib/job_access.ts";
import { doc, valid } from "../../lib/openapi.ts";
import { jobSchema, jobStatusSchema, page, regionSchema } from "./_schemas.ts";

const listQuery = z.object({
  status: jobStatusSchema.optional(),
  region: regionSchema.optional(),
  userId: z.coerce.number().int().positive().optional(),
  ...page,
});

doc({
  method: "get",
  path: "/api/admin/jobs",
  summary: "Every user's jobs, newest first",
  tag: "admin",
  auth: "admin",
  query: listQuery,
  response: z.object({
    jobs: z.array(
      jobSchema.extend({
        userName: z.string().nullable(),
        workflowName: z.string(),
        evalSetName: z.string(),
      }),
    ),
    total: z.number(),
  }),
});

/** Admin: jobs across users. */
export function adminJobsApi(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.use("*", requireAdmin);
  app.get(
    "/",
    valid("query", listQuery),
    async (c) => c.json(await listAllJobs(deps.sql, c.req.valid("query"))),
  );
  return app;
}
