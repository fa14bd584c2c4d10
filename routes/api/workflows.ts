// /api/v1/workflows and /api/v1/eval-sets: one implementation, two config formats
// (voice-agent-tester application vs scenario), importable and exportable as YAML.
import { Hono } from "hono";
import { z } from "zod";
import { applicationSchema, parseYaml, scenarioSchema, toYaml, YamlError } from "../../agent/format.ts";
import type { AppDeps, AppEnv } from "../../lib/context.ts";
import { HttpError } from "../../lib/errors.ts";
import { requireUser } from "../../lib/guards.ts";
import { assertCanQueue } from "../../lib/fair_use.ts";
import { createJob } from "../../lib/queue.ts";
import { doc, invalidInput, valid } from "../../lib/openapi.ts";
import { priorityProblem } from "../../lib/roles.ts";
import {
  createItem,
  deleteItem,
  getItem,
  type ItemKind,
  listItems,
  updateItem,
} from "../../lib/workflows.ts";
import { idParam, jobSchema, page, providerRef, runSchema, visibility } from "./_schemas.ts";

const base = {
  projectId: z.number().int().positive(),
  name: z.string().trim().min(1).max(200),
  description: z.string().max(5000).optional(),
  visibility: visibility.optional(),
  isMainline: z.boolean().optional(),
  /** The voice-agent-tester YAML file as text, instead of `config`. */
  yaml: z.string().min(1).max(300_000).optional(),
};

function schemasFor(kind: ItemKind) {
  const config = kind === "workflow" ? applicationSchema : scenarioSchema;
  const create = z.object({
    ...base,
    config: config.optional(),
    ...(kind === "workflow" ? { provider: providerRef } : {}),
  });
  const patch = z.object({
    projectId: base.projectId.optional(),
    name: base.name.optional(),
    description: base.description,
    visibility: base.visibility,
    isMainline: base.isMainline,
    yaml: base.yaml,
    config: config.optional(),
    ...(kind === "workflow" ? { provider: providerRef.optional() } : {}),
  });
  const item = z.object({
    id: z.number(),
    projectId: z.number(),
    name: z.string(),
    description: z.string(),
    config: z.record(z.string(), z.unknown()),
    visibility,
    isMainline: z.boolean(),
    createdBy: z.number().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
    editable: z.boolean(),
    ...(kind === "workflow"
      ? {
        provider: z.object({ id: z.string(), name: z.string(), sku: z.number() }),
        secretsCleared: z.boolean().optional().describe(
          "in the answer to a change: the Realtime endpoint's origin changed, so the sealed secrets were deleted",
        ),
      }
      : {}),
  });
  const list = z.object({
    scope: z.enum(["mine", "public"]).default("mine").describe(
      "mine: the caller's projects; public: everyone's public items",
    ),
    projectId: z.coerce.number().int().positive().optional(),
    mainline: z.enum(["true", "false"]).transform((v) => v === "true").optional(),
    name: z.string().trim().min(1).max(200).optional().describe(
      "only items with exactly this name (how `vox push` finds what it created)",
    ),
    ...page,
  });
  return { config, create, patch, item, list };
}

/** The config from `config` or `yaml` (exactly one on create), validated as the format demands. */
function configFrom(
  body: { config?: Record<string, unknown>; yaml?: string },
  schema: z.ZodType,
  required: boolean,
): Record<string, unknown> | undefined {
  if (body.config && body.yaml) {
    throw new HttpError(400, "invalid_input", "yaml: give config or yaml, not both");
  }
  if (body.yaml === undefined) {
    if (required && !body.config) throw new HttpError(400, "invalid_input", "config: required (or yaml)");
    return body.config;
  }
  let parsed: Record<string, unknown>;
  try {
    parsed = parseYaml(body.yaml);
  } catch (err) {
    if (err instanceof YamlError) throw new HttpError(400, "invalid_input", `yaml: ${err.message}`);
    throw err;
  }
  const checked = schema.safeParse(parsed);
  if (!checked.success) {
    // The issues name the field as the request does: inside `yaml`.
    const e = invalidInput(
      { issues: checked.error.issues.map((i) => ({ ...i, path: ["yaml", ...i.path] })) },
      "json",
    );
    throw new HttpError(400, "invalid_input", e.message, e.options);
  }
  return checked.data as Record<string, unknown>;
}

/** Routes for one kind of item; mounted at /api/v1/workflows and /api/v1/eval-sets. */
export function itemsApi(deps: AppDeps, kind: ItemKind) {
  const s = schemasFor(kind);
  const path = kind === "workflow" ? "/api/v1/workflows" : "/api/v1/eval-sets";
  const noun = kind === "workflow" ? "workflow" : "eval set";
  const tag = kind === "workflow" ? "workflows" : "eval sets";
  doc({
    method: "get",
    path,
    summary: `List ${noun}s`,
    tag,
    auth: "user",
    query: s.list,
    response: z.object({ items: z.array(s.item), total: z.number() }),
  });
  doc({
    method: "post",
    path,
    summary: `Create a ${noun} from config or voice-agent-tester YAML`,
    tag,
    auth: "user",
    body: s.create,
    status: 201,
    response: s.item,
  });
  doc({
    method: "get",
    path: `${path}/{id}`,
    summary: `One ${noun}`,
    tag,
    auth: "user",
    params: idParam,
    response: s.item,
  });
  doc({
    method: "patch",
    path: `${path}/{id}`,
    summary: `Change a ${noun}`,
    tag,
    auth: "user",
    params: idParam,
    body: s.patch,
    response: s.item,
  });
  doc({
    method: "put",
    path: `${path}/{id}`,
    summary: `Change a ${noun} (same as PATCH)`,
    tag,
    auth: "user",
    params: idParam,
    body: s.patch,
    response: s.item,
  });
  doc({
    method: "delete",
    path: `${path}/{id}`,
    summary: `Delete a ${noun}`,
    tag,
    auth: "user",
    params: idParam,
  });
  doc({
    method: "get",
    path: `${path}/{id}/yaml`,
    summary: `Export a ${noun} as voice-agent-tester YAML`,
    tag,
    auth: "user",
    params: idParam,
    produces: "application/yaml",
  });
  if (kind === "workflow") {
    doc({
      method: "post",
      path: `${path}/{id}/run`,
      summary: "Run the workflow with an eval set in a region (a new job); 429 at the pending-job limit",
      tag,
      auth: "user",
      params: idParam,
      body: runSchema,
      status: 201,
      response: jobSchema,
      errors: [429],
    });
  }

  const app = new Hono<AppEnv>();
  app.use("*", requireUser);

  app.get("/", valid("query", s.list), async (c) => {
    const q = c.req.valid("query");
    return c.json(await listItems(deps.sql, kind, c.var.user!, q));
  });

  app.post("/", valid("json", s.create), async (c) => {
    const body = c.req.valid("json") as z.infer<typeof s.create> & { provider?: never };
    const config = configFrom(body, s.config, true)!;
    const item = await createItem(deps.sql, kind, c.var.user!, { ...body, config });
    return c.json(item, 201);
  });

  app.get(
    "/:id",
    valid("param", idParam),
    async (c) => c.json(await getItem(deps.sql, kind, c.var.user!, c.req.valid("param").id)),
  );

  app.on(["PATCH", "PUT"], "/:id", valid("param", idParam), valid("json", s.patch), async (c) => {
    const body = c.req.valid("json") as z.infer<typeof s.patch> & { provider?: never };
    const config = configFrom(body, s.config, false);
    return c.json(
      await updateItem(deps.sql, kind, c.var.user!, c.req.valid("param").id, { ...body, config }),
    );
  });

  app.delete("/:id", valid("param", idParam), async (c) => {
    await deleteItem(deps.sql, kind, c.var.user!, c.req.valid("param").id);
    return c.json({ deleted: true });
  });

  app.get("/:id/yaml", valid("param", idParam), async (c) => {
    const item = await getItem(deps.sql, kind, c.var.user!, c.req.valid("param").id);
    c.header("Content-Disposition", `attachment; filename="${kind}-${item.id}.yaml"`);
    return c.body(toYaml(item.config), 200, { "Content-Type": "application/yaml; charset=utf-8" });
  });

  if (kind === "workflow") {
    app.post("/:id/run", valid("param", idParam), valid("json", runSchema), async (c) => {
      const user = c.var.user!;
      const body = c.req.valid("json");
      const tooHigh = priorityProblem(user, body.priority);
      if (tooHigh) throw new HttpError(403, "forbidden", tooHigh);
      const workflow = await getItem(deps.sql, "workflow", user, c.req.valid("param").id);
      const evalSet = await getItem(deps.sql, "eval_set", user, body.evalSetId).catch((err) => {
        if (err instanceof HttpError && err.status === 404) {
          throw new HttpError(404, "not_found", `No eval set ${body.evalSetId}`);
        }
        throw err;
      });
      await assertCanQueue(deps.sql, user);
      const job = await createJob(deps.sql, {
        workflowId: workflow.id,
        evalSetId: evalSet.id,
        region: body.region,
        priority: body.priority,
        repeat: body.repeat,
        createdBy: user.id,
      });
      return c.json(job, 201);
    });
  }

  return app;
}
