import { Hono } from "hono";
import { z } from "zod";
import type { AppDeps, AppEnv } from "../../lib/context.ts";
import { cronProblem, isTimeZone } from "../../lib/cron.ts";
import type { Sql } from "../../lib/db.ts";
import { HttpError } from "../../lib/errors.ts";
import { assertCanQueue, assertCanSchedule, assertScheduleInterval } from "../../lib/fair_use.ts";
import { requireUser } from "../../lib/guards.ts";
import { doc, valid } from "../../lib/openapi.ts";
import { accessibleProject } from "../../lib/projects.ts";
import { type AuthUser, priorityProblem } from "../../lib/roles.ts";
import {
  createSchedule,
  deleteSchedule,
  runScheduleNow,
  toSchedule,
  updateSchedule,
} from "../../lib/schedules.ts";
import { getItem } from "../../lib/workflows.ts";
import { idParam, jobSchema, page, regionSchema } from "./_schemas.ts";

const timezone = z.string().max(64).refine(isTimeZone, "unknown IANA time zone").default("UTC");
const future = z.iso.datetime({ offset: true });

export const createScheduleSchema = z.object({
  workflowId: z.number().int().positive(),
  evalSetId: z.number().int().positive(),
  region: regionSchema,
  scheduleType: z.enum(["once", "recurring"]),
  cronExpression: z.string().max(120).optional().describe("5 fields: minute hour day month weekday"),
  timezone,
  runAt: future.optional().describe("When a once-schedule runs"),
  maxRuns: z.number().int().min(1).max(1_000_000).nullable().optional(),
  isEnabled: z.boolean().default(true),
  priority: z.number().int().min(-10).max(10).default(0),
}).superRefine((v, ctx) => {
  if (v.scheduleType === "recurring") {
    const problem = v.cronExpression
      ? cronProblem(v.cronExpression, v.timezone)
      : "required for a recurring schedule";
    if (problem) ctx.addIssue({ code: "custom", path: ["cronExpression"], message: problem });
  } else if (!v.runAt) {
    ctx.addIssue({ code: "custom", path: ["runAt"], message: "required for a once schedule" });
  }
});

const patchScheduleSchema = z.object({
  region: regionSchema.optional(),
  cronExpression: z.string().max(120).optional(),
  timezone: z.string().max(64).refine(isTimeZone, "unknown IANA time zone").optional(),
  runAt: future.optional(),
  maxRuns: z.number().int().min(1).max(1_000_000).nullable().optional(),
  isEnabled: z.boolean().optional(),
  priority: z.number().int().min(-10).max(10).optional(),
});

const scheduleSchema = z.object({
  id: z.number(),
  workflowId: z.number(),
  evalSetId: z.number(),
  region: z.string(),
  scheduleType: z.enum(["once", "recurring"]),
  cronExpression: z.string().nullable(),
  timezone: z.string(),
  runAt: z.string().nullable(),
  isEnabled: z.boolean(),
  stoppedReason: z.string().nullable().describe(
    "Why the schedule stopped by itself, e.g. its eval set turned private",
  ),
  nextRunAt: z.string().nullable(),
  lastRunAt: z.string().nullable(),
  runCount: z.number(),
  maxRuns: z.number().nullable(),
  priority: z.number(),
  createdBy: z.number().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
const listQuery = z.object({ workflowId: z.coerce.number().int().positive().optional(), ...page });

const tag = "schedules";
doc({
  method: "get",
  path: "/api/v1/schedules",
  summary: "The caller's schedules",
  tag,
  auth: "user",
  query: listQuery,
  response: z.object({ schedules: z.array(scheduleSchema) }),
});
doc({
  method: "post",
  path: "/api/v1/schedules",
  summary: "Create a once or recurring (cron + time zone) schedule; 403 plan_limit at the schedule limit",
  tag,
  auth: "user",
  body: createScheduleSchema,
  status: 201,
  response: scheduleSchema,
});
doc({
  method: "get",
  path: "/api/v1/schedules/{id}",
  summary: "One schedule with next/last run and run count",
  tag,
  auth: "user",
  params: idParam,
  response: scheduleSchema,
});
doc({
  method: "patch",
  path: "/api/v1/schedules/{id}",
  summary: "Change timing, enable or disable",
  tag,
  auth: "user",
  params: idParam,
  body: patchScheduleSchema,
  response: scheduleSchema,
});
doc({
  method: "delete",
  path: "/api/v1/schedules/{id}",
  summary: "Delete a schedule (its jobs stay)",
  tag,
  auth: "user",
  params: idParam,
});
doc({
  method: "post",
  path: "/api/v1/schedules/{id}/run-now",
  summary: "Create a job for the schedule now; 429 at the pending-job limit",
  tag,
  auth: "user",
  params: idParam,
  status: 201,
  errors: [429],
  response: jobSchema,
});

// A schedule is the caller's when they made it or it runs a workflow of their projects.
function mine(sql: Sql, user: AuthUser) {
  return sql`(s.created_by = ${user.id} OR ${accessibleProject(sql, user)})`;
}

async function ownSchedule(sql: Sql, user: AuthUser, id: number) {
  const [row] = await sql`
    SELECT s.* FROM eval_schedules s JOIN workflows w ON w.id = s.workflow_id JOIN projects p ON p.id = w.project_id
    WHERE s.id = ${id} AND ${mine(sql, user)}`;
  if (!row) throw new HttpError(404, "not_found", `No schedule ${id}`);
  return toSchedule(row);
}

/** /api/v1/schedules */
export function schedulesApi(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.use("*", requireUser);
  const sql = deps.sql;

  app.get("/", valid("query", listQuery), async (c) => {
    const q = c.req.valid("query");
    const rows = await sql`
      SELECT s.* FROM eval_schedules s JOIN workflows w ON w.id = s.workflow_id JOIN projects p ON p.id = w.project_id
      WHERE ${mine(sql, c.var.user!)} ${q.workflowId ? sql`AND s.workflow_id = ${q.workflowId}` : sql``}
      ORDER BY s.id DESC LIMIT ${q.limit} OFFSET ${q.offset}`;
    return c.json({ schedules: rows.map(toSchedule) });
  });

  app.post("/", valid("json", createScheduleSchema), async (c) => {
    const body = c.req.valid("json");
    const user = c.var.user!;
    const tooHigh = priorityProblem(user, body.priority);
    if (tooHigh) throw new HttpError(403, "forbidden", tooHigh);
    // The workflow and eval set must be visible to the caller (their own, or public).
    await getItem(sql, "workflow", user, body.workflowId);
    await getItem(sql, "eval_set", user, body.evalSetId);
    await assertCanSchedule(sql, user);
    if (body.scheduleType === "recurring") {
      await assertScheduleInterval(sql, user, body.cronExpression!, body.timezone);
    }
    const schedule = await createSchedule(sql, {
      ...body,
      runAt: body.runAt ? new Date(body.runAt) : null,
      createdBy: user.id,
    });
    return c.json(schedule, 201);
  });

  app.get(
    "/:id",
    valid("param", idParam),
    async (c) => c.json(await ownSchedule(sql, c.var.user!, c.req.valid("param").id)),
  );

  app.patch("/:id", valid("param", idParam), valid("json", patchScheduleSchema), async (c) => {
    const cur = await ownSchedule(sql, c.var.user!, c.req.valid("param").id);
    const body = c.req.valid("json");
    const tooHigh = priorityProblem(c.var.user!, body.priority);
    if (tooHigh) throw new HttpError(403, "forbidden", tooHigh);
    if (cur.scheduleType === "recurring" && (body.cronExpression || body.timezone)) {
      const problem = cronProblem(body.cronExpression ?? cur.cronExpression!, body.timezone ?? cur.timezone);
      if (problem) throw new HttpError(400, "invalid_input", `cronExpression: ${problem}`);
    }
    if (cur.scheduleType === "once" && body.cronExpression) {
      throw new HttpError(400, "invalid_input", "cronExpression: a once schedule has no cron expression");
    }
    if (cur.scheduleType === "recurring" && (body.cronExpression || body.timezone)) {
      await assertScheduleInterval(
        sql,
        c.var.user!,
        body.cronExpression ?? cur.cronExpression!,
        body.timezone ?? cur.timezone,
      );
    }
    const updated = await updateSchedule(sql, cur.id, {
      ...body,
      runAt: body.runAt ? new Date(body.runAt) : undefined,
    });
    return c.json(updated);
  });

  app.delete("/:id", valid("param", idParam), async (c) => {
    const cur = await ownSchedule(sql, c.var.user!, c.req.valid("param").id);
    await deleteSchedule(sql, cur.id);
    return c.json({ deleted: true });
  });

  app.post("/:id/run-now", valid("param", idParam), async (c) => {
    const cur = await ownSchedule(sql, c.var.user!, c.req.valid("param").id);
    await assertCanQueue(sql, c.var.user!);
    return c.json(await runScheduleNow(sql, cur.id, c.var.user!.id), 201);
  });

  return app;
}
