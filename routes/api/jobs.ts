import { Hono } from "hono";
import { z } from "zod";
import type { AppDeps, AppEnv } from "../../lib/context.ts";
import { HttpError } from "../../lib/errors.ts";
import { sseResponse } from "../../lib/event_hub.ts";
import { requireUser } from "../../lib/guards.ts";
import { getVisibleJob, listJobs } from "../../lib/job_access.ts";
import { isFinal } from "../../lib/job_status.ts";
import type { JobEvent } from "../../lib/notify.ts";
import { cancelJob } from "../../lib/queue.ts";
import { doc, valid } from "../../lib/openapi.ts";
import { idParam, jobSchema, jobStatusSchema, page, regionSchema } from "./_schemas.ts";

const listQuery = z.object({
  status: jobStatusSchema.optional(),
  workflowId: z.coerce.number().int().positive().optional(),
  evalSetId: z.coerce.number().int().positive().optional(),
  scheduleId: z.coerce.number().int().positive().optional(),
  region: regionSchema.optional(),
  since: z.iso.datetime({ offset: true }).optional().describe("jobs created at or after this time"),
  until: z.iso.datetime({ offset: true }).optional().describe("jobs created before this time"),
  ...page,
});

const tag = "jobs";
doc({
  method: "get",
  path: "/api/v1/jobs",
  summary: "The caller's jobs (started by them or of their projects)",
  tag,
  auth: "user",
  query: listQuery,
  response: z.object({ jobs: z.array(jobSchema), total: z.number() }),
});
doc({
  method: "get",
  path: "/api/v1/jobs/{id}",
  summary: "A job's status",
  tag,
  auth: "user",
  params: idParam,
  response: jobSchema,
});
doc({
  method: "post",
  path: "/api/v1/jobs/{id}/cancel",
  summary: "Cancel a job that has not started (409 otherwise)",
  tag,
  auth: "user",
  params: idParam,
  response: jobSchema,
  errors: [409],
});
doc({
  method: "delete",
  path: "/api/v1/jobs/{id}",
  summary: "Cancel a job that has not started (same as POST …/cancel)",
  tag,
  auth: "user",
  params: idParam,
  response: jobSchema,
  errors: [409],
});
doc({
  method: "get",
  path: "/api/v1/jobs/{id}/events",
  summary: "Server-sent events: the job's status and progress until it ends",
  tag,
  auth: "user",
  params: idParam,
  produces: "text/event-stream",
  errors: [429, 503],
});

/** /api/v1/jobs */
export function jobsApi(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.use("*", requireUser);
  const sql = deps.sql;

  app.get(
    "/",
    valid("query", listQuery),
    async (c) => {
      const q = c.req.valid("query");
      return c.json(
        await listJobs(sql, c.var.user!, {
          ...q,
          since: q.since ? new Date(q.since) : undefined,
          until: q.until ? new Date(q.until) : undefined,
        }),
      );
    },
  );

  app.get(
    "/:id",
    valid("param", idParam),
    async (c) => c.json(await getVisibleJob(sql, c.var.user!, c.req.valid("param").id)),
  );

  const cancel = async (user: NonNullable<AppEnv["Variables"]["user"]>, id: number) => {
    await getVisibleJob(sql, user, id);
    const out = await cancelJob(sql, id);
    if (!out?.cancelled) {
      throw new HttpError(
        409,
        "not_cancellable",
        `Cannot cancel job ${id}: it is ${out?.status}, only pending jobs can be cancelled`,
      );
    }
    return await getVisibleJob(sql, user, id);
  };
  app.post(
    "/:id/cancel",
    valid("param", idParam),
    async (c) => c.json(await cancel(c.var.user!, c.req.valid("param").id)),
  );
  app.delete(
    "/:id",
    valid("param", idParam),
    async (c) => c.json(await cancel(c.var.user!, c.req.valid("param").id)),
  );

  app.get("/:id/events", valid("param", idParam), async (c) => {
    const user = c.var.user!;
    const job = await getVisibleJob(sql, user, c.req.valid("param").id);
    if (!deps.orchestrator) {
      throw new HttpError(503, "unavailable", "Live streams are not running on this server");
    }
    // The snapshot is read again once the stream listens: a change made in between (a cancel,
    // a claim) is then in the snapshot or among the events that follow it.
    return sseResponse(
      c,
      deps.orchestrator.events,
      `job:${job.id}`,
      `user:${user.id}`,
      async () => [{ event: "status", data: await getVisibleJob(sql, user, job.id) }],
      (_event, data) => isFinal((data as JobEvent).status),
    );
  });

  return app;
}
