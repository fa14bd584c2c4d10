// Request/response pieces shared by the /api/v1 route modules (each also feeds /openapi.json).
import { z } from "zod";
import { LIMITS } from "../../agent/format.ts";
import { regionSchema } from "../../agent/protocol.ts";
import { JOB_STATUSES } from "../../lib/job_status.ts";

export { regionSchema };
export const idParam = z.object({ id: z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER) });
export const page = {
  limit: z.coerce.number().int().min(1).max(200).default(50),
  offset: z.coerce.number().int().min(0).default(0),
};
export const visibility = z.enum(["public", "private"]);
export const providerRef = z.union([
  z.object({ id: z.string().regex(/^[0-9a-z]{12}$/, "a 12-character provider id") }).strict(),
  z.object({ name: z.string().trim().min(1).max(100), sku: z.union([z.literal(0), z.literal(1)]).optional() })
    .strict(),
]).describe(
  "An existing provider by id, or picked (or created) by name; sku 0 = ConvoAI Engine, 1 = RTC Engine",
);

export const jobStatusSchema = z.enum(JOB_STATUSES);

export const jobSchema = z.object({
  id: z.number(),
  workflowId: z.number(),
  evalSetId: z.number(),
  region: z.string(),
  scheduleId: z.number().nullable(),
  scheduledFor: z.string().nullable(),
  status: jobStatusSchema,
  priority: z.number(),
  attempts: z.number(),
  maxAttempts: z.number(),
  agentId: z.number().nullable(),
  repeat: z.number(),
  progress: z.unknown(),
  createdBy: z.number().nullable(),
  createdAt: z.string(),
  startedAt: z.string().nullable(),
  acceptedAt: z.string().nullable(),
  finishedAt: z.string().nullable(),
  error: z.string().nullable(),
});

export const runSchema = z.object({
  evalSetId: z.number().int().positive(),
  region: regionSchema,
  priority: z.number().int().min(-10).max(10).default(0),
  repeat: z.number().int().min(1).max(LIMITS.repeat).default(1),
});
