// Roles (SPEC §2) and the caller they are checked on. The guards in lib/guards.ts turn these
// checks into route middleware; domain modules call them directly.

/** Every role a user can have, lowest first. The administrator is a separate flag (`isAdmin`). */
export const ROLES = ["basic", "premium", "principal", "fellow"] as const;
export type Role = typeof ROLES[number];

/** Roles that may make workflows and eval sets private. */
export const PRIVATE_ROLES: readonly Role[] = ["premium", "principal", "fellow"];

/** Roles that may mark workflows and eval sets mainline. */
export const MAINLINE_ROLES: readonly Role[] = ["principal", "fellow"];

/** Roles that may give a job or schedule a priority above 0 (ahead of everyone's queue). */
export const PRIORITY_ROLES: readonly Role[] = ["principal", "fellow"];

/** Roles that keep the curated provider entries (with the administrator). */
export const CURATOR_ROLES: readonly Role[] = ["principal"];

/** The caller of a request, resolved from a session cookie or an API key. */
export interface AuthUser {
  id: number;
  name: string;
  username: string;
  email: string;
  role: Role;
  isAdmin: boolean;
  organizationId: number | null;
  orgRole: "member" | "admin" | null;
  /** How the caller authenticated; cookie requests get CSRF checks. */
  via: "session" | "api_key";
}

/** True when `value` names a role. */
export function isRole(value: unknown): value is Role {
  return (ROLES as readonly unknown[]).includes(value);
}

/** True when the user has one of `roles`; the administrator always has. */
export function hasRole(user: AuthUser, roles: readonly Role[]): boolean {
  return user.isAdmin || roles.includes(user.role);
}

/** Whether the user may make workflows and eval sets private (SPEC §2). */
export function canMakePrivate(user: AuthUser): boolean {
  return hasRole(user, PRIVATE_ROLES);
}

/** Whether the user may mark workflows and eval sets mainline (SPEC §2). */
export function canMarkMainline(user: AuthUser): boolean {
  return hasRole(user, MAINLINE_ROLES);
}

/** Whether the user may create and edit curated provider entries (issue 13). */
export function canCurateProviders(user: AuthUser): boolean {
  return hasRole(user, CURATOR_ROLES);
}

/**
 * Refuses a priority above 0 from a user who may not jump the shared queue (basic and premium):
 * an HttpError-ready message, or null when allowed.
 */
export function priorityProblem(user: AuthUser, priority: number | undefined): string | null {
  if (priority === undefined || priority <= 0 || hasRole(user, PRIORITY_ROLES)) return null;
  return "priority: only principal, fellow and admin users may set a priority above 0";
}
