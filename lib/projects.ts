// Projects: who may see and change what (ownership, organization scope) and the plan limits
// from plan_limits. Workflows and eval sets live in projects, so their access rules are here.
import type { Db, Sql } from "./db.ts";
import { HttpError } from "./errors.ts";
import { rollUpResults } from "./metrics.ts";
import type { AuthUser } from "./roles.ts";

export interface Project {
  id: number;
  name: string;
  description: string;
  ownerUserId: number | null;
  organizationId: number | null;
  createdAt: string;
  updatedAt: string;
  workflows: number;
  evalSets: number;
}

/**
 * SQL predicate: project `p` is the caller's (personal) or their organization's. Every
 * listing and lookup of private data goes through it, so nothing else can leak it.
 */
export function accessibleProject(sql: Db, user: AuthUser, alias = "p") {
  const p = sql(alias);
  return user.organizationId
    ? sql`(${p}.owner_user_id = ${user.id} OR ${p}.organization_id = ${user.organizationId})`
    : sql`${p}.owner_user_id = ${user.id}`;
}

/** Which plan_limits row governs a personal or organization project. */
export function ownerKind(user: AuthUser, organizationProject: boolean): string {
  if (organizationProject) return "organization";
  return user.organizationId ? "org_member" : user.role;
}

const KIND_TEXT: Record<string, string> = {
  basic: "basic users",
  premium: "premium users",
  principal: "principal users",
  fellow: "fellow users",
  organization: "an organization",
  org_member: "organization members (personal projects)",
};

async function limits(
  tx: Db,
  kind: string,
): Promise<{ maxProjects: number; maxWorkflowsPerProject: number }> {
  const [row] = await tx<
    { maxProjects: number; maxWorkflowsPerProject: number }[]
  >`SELECT max_projects, max_workflows_per_project FROM plan_limits WHERE owner_kind = ${kind}`;
  return row ?? { maxProjects: 0, maxWorkflowsPerProject: 0 };
}

/** The plan limits that govern the caller's personal projects (SPEC §2). */
export async function personalLimits(
  sql: Db,
  user: AuthUser,
): Promise<{ ownerKind: string; maxProjects: number; maxWorkflowsPerProject: number }> {
  const kind = ownerKind(user, false);
  return { ownerKind: kind, ...(await limits(sql, kind)) };
}

function toProject(r: Record<string, unknown>): Project {
  const iso = (v: unknown) => v instanceof Date ? v.toISOString() : String(v);
  return {
    id: r.id as number,
    name: r.name as string,
    description: r.description as string,
    ownerUserId: (r.ownerUserId as number | null) ?? null,
    organizationId: (r.organizationId as number | null) ?? null,
    createdAt: iso(r.createdAt),
    updatedAt: iso(r.updatedAt),
    workflows: Number(r.workflows ?? 0),
    evalSets: Number(r.evalSets ?? 0),
  };
}

const PROJECT_COLUMNS = (sql: Db) =>
  sql`p.id, p.name, p.description, p.owner_user_id, p.organization_id, p.created_at, p.updated_at,
      (SELECT count(*) FROM workflows w WHERE w.project_id = p.id)::int AS workflows,
      (SELECT count(*) FROM eval_sets e WHERE e.project_id = p.id)::int AS eval_sets`;

/** The caller's projects and their organization's, oldest first. */
export async function listProjects(sql: Sql, user: AuthUser): Promise<Project[]> {
  const rows = await sql`
    SELECT ${PROJECT_COLUMNS(sql)} FROM projects p WHERE ${accessibleProject(sql, user)} ORDER BY p.id`;
  return rows.map(toProject);
}

/** A project the caller may see, or a 404 that does not say whether it exists. */
export async function getProject(sql: Db, user: AuthUser, id: number): Promise<Project> {
  const [row] = await sql`
    SELECT ${PROJECT_COLUMNS(sql)} FROM projects p WHERE p.id = ${id} AND ${accessibleProject(sql, user)}`;
  if (!row) throw new HttpError(404, "not_found", `No project ${id}`);
  return toProject(row);
}

/** 403 unless the caller may change the project (its owner, or an admin of its organization). */
export function assertCanManage(user: AuthUser, project: Project): void {
  if (project.ownerUserId === user.id) return;
  if (project.organizationId && project.organizationId === user.organizationId && user.orgRole === "admin") {
    return;
  }
  throw new HttpError(
    403,
    "forbidden",
    "Only the project's owner or an organization admin may change this project",
  );
}

/**
 * Creates a project within the plan limit: the owner's row is locked first, so two
 * concurrent creates cannot both squeeze under the limit.
 */
export async function createProject(
  sql: Sql,
  user: AuthUser,
  input: { name: string; description?: string; organization?: boolean },
): Promise<Project> {
  if (input.organization && !(user.organizationId && user.orgRole === "admin")) {
    throw new HttpError(403, "forbidden", "Only organization admins may create organization projects");
  }
  return await sql.begin(async (tx) => {
    const kind = ownerKind(user, Boolean(input.organization));
    if (input.organization) {
      await tx`SELECT id FROM organizations WHERE id = ${user.organizationId} FOR UPDATE`;
    } else await tx`SELECT id FROM users WHERE id = ${user.id} FOR UPDATE`;
    const [{ n }] = input.organization
      ? await tx`SELECT count(*)::int AS n FROM projects WHERE organization_id = ${user.organizationId}`
      : await tx`SELECT count(*)::int AS n FROM projects WHERE owner_user_id = ${user.id}`;
    const { maxProjects } = await limits(tx, kind);
    if (n >= maxProjects) {
      throw new HttpError(
        403,
        "plan_limit",
        `Project limit reached: ${KIND_TEXT[kind] ?? kind} may have at most ${maxProjects} projects`,
        { details: { limit: "max_projects", ownerKind: kind, max: maxProjects } },
      );
    }
    const [row] = await tx`
      INSERT INTO projects (name, description, owner_user_id, organization_id, created_by)
      VALUES (${input.name}, ${input.description ?? ""}, ${input.organization ? null : user.id},
              ${input.organization ? user.organizationId : null}, ${user.id})
      RETURNING id`;
    return await getProject(tx, user, row.id);
  });
}

/** Renames or re-describes a project the caller manages. */
export async function updateProject(
  sql: Sql,
  user: AuthUser,
  id: number,
  patch: { name?: string; description?: string },
): Promise<Project> {
  const project = await getProject(sql, user, id);
  assertCanManage(user, project);
  await sql`
    UPDATE projects SET name = coalesce(${patch.name ?? null}, name),
      description = coalesce(${patch.description ?? null}, description), updated_at = now()
    WHERE id = ${id}`;
  return await getProject(sql, user, id);
}

/** Deletes a project the caller manages, with its workflows, eval sets and their history. */
export async function deleteProject(sql: Sql, user: AuthUser, id: number): Promise<void> {
  const project = await getProject(sql, user, id);
  assertCanManage(user, project);
  await sql`DELETE FROM projects WHERE id = ${id}`;
  // Its mainline results' days were marked dirty by a trigger: recompute the boards now.
  await rollUpResults(sql);
}

/**
 * Locks a project the caller may add to and checks the workflows-per-project limit; call
 * inside the transaction that inserts the workflow.
 */
export async function assertWorkflowRoom(tx: Db, user: AuthUser, projectId: number): Promise<void> {
  const [p] = await tx`
    SELECT id, organization_id FROM projects p WHERE p.id = ${projectId} AND ${accessibleProject(tx, user)}
    FOR UPDATE`;
  if (!p) throw new HttpError(404, "not_found", `No project ${projectId}`);
  const kind = ownerKind(user, p.organizationId !== null);
  const { maxWorkflowsPerProject } = await limits(tx, kind);
  const [{ n }] = await tx`SELECT count(*)::int AS n FROM workflows WHERE project_id = ${projectId}`;
  if (n >= maxWorkflowsPerProject) {
    throw new HttpError(
      403,
      "plan_limit",
      `Workflow limit reached: a project of ${
        KIND_TEXT[kind] ?? kind
      } may hold at most ${maxWorkflowsPerProject} workflows`,
      { details: { limit: "max_workflows_per_project", ownerKind: kind, max: maxWorkflowsPerProject } },
    );
  }
}

/** 404 unless the caller may add to the project. */
export async function assertProjectAccess(tx: Db, user: AuthUser, projectId: number): Promise<void> {
  const [p] = await tx`SELECT id FROM projects p WHERE p.id = ${projectId} AND ${
    accessibleProject(tx, user)
  }`;
  if (!p) throw new HttpError(404, "not_found", `No project ${projectId}`);
}
