// /api/v1/organizations (members and their admins), /api/v1/invites (whoever holds an invite
// link) and /api/admin/organizations (the system administrator verifies organizations).
// The rules live in lib/orgs.ts; outsiders get 404 for an organization, members who are not
// its admins 403 for what only admins may do.
import { Hono } from "hono";
import { z } from "zod";
import { actionContext } from "../../lib/auth/action_context.ts";
import { clientIp } from "../../lib/auth/client.ts";
import { PASSWORD_MAX } from "../../lib/auth/passwords.ts";
import { checkAuthRateLimit } from "../../lib/auth/rate_limit.ts";
import { startSession } from "../../lib/auth/sessions.ts";
import type { AppEnv, ResolvedDeps } from "../../lib/context.ts";
import { requireAdmin, requireSession, requireUser } from "../../lib/guards.ts";
import { doc, valid } from "../../lib/openapi.ts";
import {
  acceptInvite,
  acceptInviteAsNewUser,
  createInvite,
  createOrganization,
  getOrganization,
  inspectInvite,
  leaveOrganization,
  listInvites,
  listMembers,
  listOrganizations,
  removeMember,
  revokeInvite,
  setMemberRole,
  setVerified,
  updateOrganization,
} from "../../lib/orgs.ts";
import { toAuthUser, USER_COLUMNS, type UserRow } from "../../lib/users.ts";
import { idParam } from "./_schemas.ts";

const positiveId = z.coerce.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const memberParam = z.object({ id: positiveId, userId: positiveId });
const inviteParam = z.object({ id: positiveId, inviteId: positiveId });
const orgRole = z.enum(["member", "admin"]);

const seatsSchema = z.object({
  paid: z.number(),
  members: z.number(),
  pendingInvites: z.number(),
  used: z.number(),
  free: z.number(),
});
export const organizationSchema = z.object({
  id: z.number(),
  name: z.string(),
  address: z.string().nullable(),
  verified: z.boolean(),
  verifiedAt: z.string().nullable(),
  createdBy: z.number().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
  seats: seatsSchema,
  admins: z.number(),
  myRole: orgRole.nullable(),
});
const memberSchema = z.object({
  id: z.number(),
  name: z.string(),
  username: z.string(),
  email: z.string(),
  orgRole,
  joinedAt: z.string().nullable(),
  holdsPaidSeat: z.boolean(),
  effectiveRole: z.string(),
});
const inviteSchema = z.object({
  id: z.number(),
  email: z.string(),
  orgRole,
  invitedBy: z.number().nullable(),
  createdAt: z.string(),
  expiresAt: z.string(),
  status: z.enum(["open", "expired", "used", "revoked"]),
});
export const createOrgSchema = z.object({
  name: z.string().trim().min(1, "is required").max(200),
  address: z.string().trim().max(500).nullable().optional(),
});
const patchOrgSchema = z.object({
  name: z.string().trim().min(1, "is required").max(200).optional(),
  address: z.string().trim().max(500).nullable().optional(),
});
export const inviteBody = z.object({
  email: z.email("must be an email address").max(254),
  orgRole: orgRole.default("member"),
});
const roleBody = z.object({ orgRole });
const tokenField = z.string().regex(/^[a-z2-7]{32}$/, "must be an invite token (from the invite link)");
const tokenBody = z.object({ token: tokenField });
export const acceptNewBody = z.object({
  token: tokenField,
  password: z.string().min(1, "is required").max(PASSWORD_MAX),
  name: z.string().trim().max(200).optional(),
  username: z.string().regex(/^[A-Za-z0-9_.-]{2,40}$/, "2–40 letters, digits, _ . -").optional(),
});
const verifyBody = z.object({
  verified: z.boolean(),
  providerIds: z.array(z.string().regex(/^[0-9a-z]{12}$/, "a 12-character provider id")).max(50).optional()
    .describe("The organization's providers (replaces the list); public pages badge them when verified"),
});
const orgSummarySchema = z.object({
  id: z.number(),
  name: z.string(),
  address: z.string().nullable(),
  verified: z.boolean(),
  verifiedAt: z.string().nullable(),
  createdAt: z.string(),
  members: z.number(),
  paidSeats: z.number(),
  providers: z.array(z.object({ id: z.string(), name: z.string() })),
});

const tag = "organizations";
const base = "/api/v1/organizations";
doc({
  method: "post",
  path: base,
  summary: "Create an organization; the caller becomes its admin (409 when already in one)",
  tag,
  auth: "user",
  body: createOrgSchema,
  status: 201,
  response: organizationSchema,
  errors: [409],
});
doc({
  method: "get",
  path: `${base}/{id}`,
  summary: "An organization the caller belongs to, with its seats (404 for outsiders)",
  tag,
  auth: "user",
  params: idParam,
  response: organizationSchema,
});
doc({
  method: "patch",
  path: `${base}/{id}`,
  summary: "Rename an organization or change its address (its admins)",
  tag,
  auth: "user",
  params: idParam,
  body: patchOrgSchema,
  response: organizationSchema,
});
doc({
  method: "get",
  path: `${base}/{id}/members`,
  summary: "Members, admins first then by joining (the order paid seats cover them)",
  tag,
  auth: "user",
  params: idParam,
  response: z.object({ members: z.array(memberSchema) }),
});
doc({
  method: "patch",
  path: `${base}/{id}/members/{userId}`,
  summary: `Make a member an admin or an admin a member (403 admin_limit past 4 admins)`,
  tag,
  auth: "user",
  params: memberParam,
  body: roleBody,
  response: memberSchema,
  errors: [409],
});
doc({
  method: "delete",
  path: `${base}/{id}/members/{userId}`,
  summary: "Remove a member (its admins); the seat frees",
  tag,
  auth: "user",
  params: memberParam,
});
doc({
  method: "post",
  path: `${base}/{id}/leave`,
  summary: "Leave the organization (409 for its last admin while others remain)",
  tag,
  auth: "user",
  params: idParam,
  errors: [409],
});
doc({
  method: "get",
  path: `${base}/{id}/invites`,
  summary: "Invites, open ones first (its admins)",
  tag,
  auth: "user",
  params: idParam,
  response: z.object({ invites: z.array(inviteSchema) }),
});
doc({
  method: "post",
  path: `${base}/{id}/invites`,
  summary: "Invite an address (takes a free seat: 403 no_free_seat without one); mails the link",
  tag,
  auth: "user",
  params: idParam,
  body: inviteBody,
  status: 201,
  response: z.object({ invite: inviteSchema, acceptUrl: z.string().describe("Shown once") }),
  errors: [409],
});
doc({
  method: "delete",
  path: `${base}/{id}/invites/{inviteId}`,
  summary: "Revoke an open invite; its seat frees",
  tag,
  auth: "user",
  params: inviteParam,
});
doc({
  method: "post",
  path: "/api/v1/invites/inspect",
  summary: "What an invite link is for (organization, address, state); for the accept page",
  tag,
  auth: "public",
  body: tokenBody,
});
doc({
  method: "post",
  path: "/api/v1/invites/accept",
  summary: "The signed-in user accepts an invite sent to their address",
  tag,
  auth: "session",
  body: tokenBody,
  response: organizationSchema,
  errors: [409, 410],
});
doc({
  method: "post",
  path: "/api/v1/invites/accept-new",
  summary: "Accept an invite by creating the account (active at once) and signing in",
  tag,
  auth: "public",
  body: acceptNewBody,
  status: 201,
  errors: [409, 410],
});
doc({
  method: "get",
  path: "/api/admin/organizations",
  summary: "Every organization, unverified first",
  tag: "admin",
  auth: "admin",
  response: z.object({ organizations: z.array(orgSummarySchema) }),
});
doc({
  method: "put",
  path: "/api/admin/organizations/{id}/verification",
  summary: "Mark an organization verified or not, and name its providers (audited)",
  tag: "admin",
  auth: "admin",
  params: idParam,
  body: verifyBody,
  response: orgSummarySchema,
});

/** /api/v1/organizations */
export function organizationsApi(deps: ResolvedDeps) {
  const app = new Hono<AppEnv>();
  app.use("*", requireUser);
  const ctx = (c: Parameters<typeof actionContext>[0]) => actionContext(c, deps);
  app.post("/", valid("json", createOrgSchema), async (c) => {
    return c.json(await createOrganization(ctx(c), c.var.user!, c.req.valid("json")), 201);
  });
  app.get("/:id", valid("param", idParam), async (c) => {
    return c.json(await getOrganization(deps.sql, c.var.user!, c.req.valid("param").id));
  });
  app.patch("/:id", valid("param", idParam), valid("json", patchOrgSchema), async (c) => {
    const { id } = c.req.valid("param");
    return c.json(await updateOrganization(ctx(c), c.var.user!, id, c.req.valid("json")));
  });
  app.get("/:id/members", valid("param", idParam), async (c) => {
    return c.json({ members: await listMembers(deps.sql, c.var.user!, c.req.valid("param").id) });
  });
  app.patch("/:id/members/:userId", valid("param", memberParam), valid("json", roleBody), async (c) => {
    const { id, userId } = c.req.valid("param");
    return c.json(await setMemberRole(ctx(c), c.var.user!, id, userId, c.req.valid("json").orgRole));
  });
  app.delete("/:id/members/:userId", valid("param", memberParam), async (c) => {
    const { id, userId } = c.req.valid("param");
    await removeMember(ctx(c), c.var.user!, id, userId);
    return c.json({ removed: true });
  });
  app.post("/:id/leave", valid("param", idParam), async (c) => {
    await leaveOrganization(ctx(c), c.var.user!, c.req.valid("param").id);
    return c.json({ left: true });
  });
  app.get("/:id/invites", valid("param", idParam), async (c) => {
    return c.json({ invites: await listInvites(deps.sql, c.var.user!, c.req.valid("param").id) });
  });
  app.post("/:id/invites", valid("param", idParam), valid("json", inviteBody), async (c) => {
    const { id } = c.req.valid("param");
    return c.json(await createInvite(ctx(c), c.var.user!, id, c.req.valid("json")), 201);
  });
  app.delete("/:id/invites/:inviteId", valid("param", inviteParam), async (c) => {
    const { id, inviteId } = c.req.valid("param");
    await revokeInvite(ctx(c), c.var.user!, id, inviteId);
    return c.json({ revoked: true });
  });
  return app;
}

/** /api/v1/invites: the holder of an invite link looks at it and accepts it. */
export function invitesApi(deps: ResolvedDeps) {
  const app = new Hono<AppEnv>();
  // Tokens are guessed here if anywhere: the stricter sign-in limit applies.
  app.use("*", async (c, next) => {
    await checkAuthRateLimit(c, deps);
    await next();
  });
  app.post("/inspect", valid("json", tokenBody), async (c) => {
    return c.json(await inspectInvite(deps.sql, c.req.valid("json").token));
  });
  app.post("/accept", requireSession, valid("json", tokenBody), async (c) => {
    return c.json(await acceptInvite(actionContext(c, deps), c.var.user!, c.req.valid("json").token));
  });
  app.post("/accept-new", valid("json", acceptNewBody), async (c) => {
    const { token, ...account } = c.req.valid("json");
    const { userId, organizationId } = await acceptInviteAsNewUser(actionContext(c, deps), token, account);
    const [row] = await deps.sql<UserRow[]>`SELECT ${
      deps.sql.unsafe(USER_COLUMNS)
    } FROM users WHERE id = ${userId}`;
    await startSession(c, deps, toAuthUser(row, "session"));
    return c.json({ userId, organizationId }, 201);
  });
  return app;
}

/** /api/admin/organizations: the system administrator's list and verification. */
export function adminOrganizationsApi(deps: ResolvedDeps) {
  const app = new Hono<AppEnv>();
  app.use("*", requireAdmin);
  app.get("/", async (c) => c.json({ organizations: await listOrganizations(deps.sql) }));
  app.put("/:id/verification", valid("param", idParam), valid("json", verifyBody), async (c) => {
    const { id } = c.req.valid("param");
    const ctx = { sql: deps.sql, ip: clientIp(c, deps.config) };
    return c.json(await setVerified(ctx, c.var.user!, id, c.req.valid("json")));
  });
  return app;
}
