import { createMiddleware } from "hono/factory";
import type { AppEnv } from "./context.ts";
import { HttpError } from "./errors.ts";

export const ROLES = ["basic", "premium", "principal", "fellow"] as const;
export type Role = typeof ROLES[number];

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

/** 401 unless someone is signed in (session or API key). */
export const requireUser = createMiddleware<AppEnv>(async (c, next) => {
  if (!c.var.user) {
    throw new HttpError(401, "unauthorized", "Sign in or send an API key to use this endpoint");
  }
  await next();
});

/**
 * 401 unless signed in with a browser session: for actions an API key must not be able to do
 * (minting more API keys, changing the password).
 */
export const requireSession = createMiddleware<AppEnv>(async (c, next) => {
  const user = c.var.user;
  if (!user) throw new HttpError(401, "unauthorized", "Sign in to use this endpoint");
  if (user.via !== "session") {
    throw new HttpError(
      403,
      "session_required",
      "This needs a signed-in browser session; an API key is not enough",
    );
  }
  await next();
});

/** 401 without a caller, 403 unless the caller has one of `roles` (the admin always passes). */
export function requireRole(...roles: Role[]) {
  return createMiddleware<AppEnv>(async (c, next) => {
    const user = c.var.user;
    if (!user) throw new HttpError(401, "unauthorized", "Sign in or send an API key to use this endpoint");
    if (!user.isAdmin && !roles.includes(user.role)) {
      throw new HttpError(403, "forbidden", `This needs one of the roles: ${roles.join(", ")}`);
    }
    await next();
  });
}

/** 401 without a caller, 403 unless the caller is the system admin. */
export const requireAdmin = createMiddleware<AppEnv>(async (c, next) => {
  const user = c.var.user;
  if (!user) throw new HttpError(401, "unauthorized", "Sign in as the administrator");
  if (!user.isAdmin) throw new HttpError(403, "forbidden", "Only the administrator may do this");
  await next();
});

/** 403 unless the caller may make workflows and eval sets private (premium, principal, fellow). */
export const requirePremium = requireRole("premium", "principal", "fellow");

/** 403 unless the caller may mark workflows and eval sets mainline (principal, fellow). */
export const requireMainlineEditor = requireRole("principal", "fellow");

/** Roles that may make workflows and eval sets private (SPEC §2). */
export function canMakePrivate(user: AuthUser): boolean {
  return user.isAdmin || user.role !== "basic";
}

/** Roles that may mark workflows and eval sets mainline (SPEC §2). */
export function canMarkMainline(user: AuthUser): boolean {
  return user.isAdmin || user.role === "principal" || user.role === "fellow";
}
