import { Hono } from "hono";
import { z } from "zod";
import type { AppDeps, AppEnv } from "../../lib/context.ts";
import { requireUser } from "../../lib/guards.ts";
import { doc, valid } from "../../lib/openapi.ts";
import {
  createProject,
  deleteProject,
  getProject,
  listProjects,
  personalLimits,
  updateProject,
} from "../../lib/projects.ts";
import { idParam } from "./_schemas.ts";

const projectSchema = z.object({
  id: z.number(),
  name: z.string(),
  description: z.string(),
  ownerUserId: z.number().nullable(),
  organizationId: z.number().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
  workflows: z.number(),
  evalSets: z.number(),
});
export const createProjectSchema = z.object({
  name: z.string().trim().min(1).max(100),
  description: z.string().max(2000).optional(),
  /** Create it for the caller's organization (organization admins only). */
  organization: z.boolean().optional(),
});
const patchProjectSchema = z.object({
  name: z.string().trim().min(1).max(100).optional(),
  description: z.string().max(2000).optional(),
});

const tag = "projects";
doc({
  method: "get",
  path: "/api/v1/projects",
  summary: "The caller's and their organization's projects",
  tag,
  auth: "user",
  response: z.object({
    projects: z.array(projectSchema),
    limits: z.object({ ownerKind: z.string(), maxProjects: z.number(), maxWorkflowsPerProject: z.number() })
      .describe("The plan limits of the caller's personal projects"),
  }),
});
doc({
  method: "post",
  path: "/api/v1/projects",
  summary: "Create a project (403 when the plan's project limit is reached)",
  tag,
  auth: "user",
  body: createProjectSchema,
  status: 201,
  response: projectSchema,
});
doc({
  method: "get",
  path: "/api/v1/projects/{id}",
  summary: "One project",
  tag,
  auth: "user",
  params: idParam,
  response: projectSchema,
});
doc({
  method: "patch",
  path: "/api/v1/projects/{id}",
  summary: "Rename or describe a project",
  tag,
  auth: "user",
  params: idParam,
  body: patchProjectSchema,
  response: projectSchema,
});
doc({
  method: "delete",
  path: "/api/v1/projects/{id}",
  summary: "Delete a project with its workflows and eval sets",
  tag,
  auth: "user",
  params: idParam,
});

/** /api/v1/projects */
export function projectsApi(deps: AppDeps) {
  const app = new Hono<AppEnv>();
  app.use("*", requireUser);
  app.get("/", async (c) => {
    const [projects, limits] = await Promise.all([
      listProjects(deps.sql, c.var.user!),
      personalLimits(deps.sql, c.var.user!),
    ]);
    return c.json({ projects, limits });
  });
  app.post(
    "/",
    valid("json", createProjectSchema),
    async (c) => c.json(await createProject(deps.sql, c.var.user!, c.req.valid("json")), 201),
  );
  app.get(
    "/:id",
    valid("param", idParam),
    async (c) => c.json(await getProject(deps.sql, c.var.user!, c.req.valid("param").id)),
  );
  app.patch(
    "/:id",
    valid("param", idParam),
    valid("json", patchProjectSchema),
    async (c) =>
      c.json(await updateProject(deps.sql, c.var.user!, c.req.valid("param").id, c.req.valid("json"))),
  );
  app.delete("/:id", valid("param", idParam), async (c) => {
    await deleteProject(deps.sql, c.var.user!, c.req.valid("param").id);
    return c.json({ deleted: true });
  });
  return app;
}
