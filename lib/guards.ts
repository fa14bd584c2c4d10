// Route middleware that admits or refuses the caller; what each role may do is in lib/roles.ts.
import { createMiddleware } from "hono/factory";
import type { AppEnv } from "./context.ts";
import { HttpError } from "./errors.ts";
import { hasRole, MAINLINE_ROLES, PRIVATE_ROLES, type Role } from "./roles.ts";

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
    if (!hasRole(user, roles)) {
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
export const requirePremium = requireRole(...PRIVATE_ROLES);

/** 403 unless the caller may mark workflows and eval sets mainline (principal, fellow). */
export const requireMainlineEditor = requireRole(...MAINLINE_ROLES);
