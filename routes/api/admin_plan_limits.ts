// /api/admin/plan-limits: the limits per owner kind (projects, workflows per project, pending
// jobs, schedules, minimum schedule interval), read and changed by the admin; audited.
import { Hono } from "hono";
import { z } from "zod";
import { clientIp } from "../../lib/auth/client.ts";
import type { AppDeps, AppEnv } from "../../lib/context.ts";
import { HttpError } from "../../lib/errors.ts";
import { requireAdmin } from "../../lib/guards.ts";
import { doc, valid } from "../../lib/openapi.ts";
import { LIMIT_FIELDS, listPlanLimits, OWNER_KINDS, updatePlanLimits } from "../../lib/plan_limits.ts";

const kindParam = z.object({ kind: z.enum(OWNER_KINDS) });
const limit = (f: keyof typeof LIMIT_FIELDS) =>
  z.number().int().min(LIMIT_FIELDS[f].min).max(LIMIT_FIELDS[f].max).optional();
const body = z.object({
  maxProjects: limit("maxProjects"),
  maxWorkflowsPerProject: limit("maxWorkflowsPerProject"),
  maxPendingJobs: limit("maxPendingJobs"),
  maxSchedules: limit("maxSchedules"),
  minScheduleIntervalMinutes: limit("minScheduleIntervalMinutes"),
  reason: z.string().trim().max(500).optional().describe("Why it changed, kept in the audit trail"),
}).strict();
const limitsSchema = z.object({
  ownerKind: z.enum(OWNER_KINDS),
  maxProjects: z.number().int(),
  maxWorkflowsPerProject: z.number().int(),
  maxPendingJobs: z.number().int(),
  maxSchedules: z.number().int(),
  minScheduleIntervalMinutes: z.number().int(),
  updatedAt: z.string(),
});

doc({
  method: "get",
  path: "/api/admin/plan-limits",
  summary: "The limits of each owner kind (projects, workflows per project, pending jobs, schedules, " +
    "minimum schedule interval)",
  tag: "admin",
  auth: "admin",
  response: z.object({ limits: z.array(limitsSchema) }),
});
doc({
  method: "patch",
  path: "/api/admin/plan-limits/{kind}",
  summary: "Change some limits of one owner kind (audited with the old and new values and the reason)",
  tag: "admin",
  auth: "admin",
  params: kindParam,
  body,
  response: z.object({ limits: limitsSchema }),
});

/** Admin: plan limits. */
export function adminPlanLimitsApi(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.use("*", requireAdmin);
  app.get("/", async (c) => c.json({ limits: await listPlanLimits(deps.sql) }));
  app.patch("/:kind", valid("param", kindParam), valid("json", body), async (c) => {
    const { reason, ...change } = c.req.valid("json");
    const limits = await updatePlanLimits(deps.sql, c.req.valid("param").kind, change, {
      userId: c.var.user!.id,
      ip: clientIp(c, deps.config),
      reason,
    });
    if (!limits) throw new HttpError(404, "not_found", "No limits for that owner kind");
    return c.json({ limits });
  });
  return app;
}
