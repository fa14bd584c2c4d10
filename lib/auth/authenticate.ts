import type { Context } from "hono";
import type { AppDeps, AppEnv } from "../context.ts";
import { HttpError } from "../errors.ts";
import type { AuthUser } from "../roles.ts";
import { authenticateApiKey } from "./api_keys.ts";
import { clearSessionCookie, readSessionCookie, validateSession } from "./sessions.ts";

/**
 * The real `deps.authenticate`: an `Authorization: Bearer <API key>` on /api/v1/*, otherwise
 * the session cookie. A bad API key is a 401 naming the problem (a caller that sent a credential
 * wants to know it failed); a dead session cookie is simply cleared and the caller is anonymous.
 */
export function createAuthenticator(deps: AppDeps) {
  return async (c: Context<AppEnv>): Promise<AuthUser | null> => {
    const authorization = c.req.header("authorization");
    if (authorization !== undefined && c.req.path.startsWith("/api/v1/")) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
      if (!m) {
        throw new HttpError(401, "invalid_authorization", "Authorization must be `Bearer <API key>`");
      }
      return await authenticateApiKey(deps.sql, m[1]);
    }
    const token = readSessionCookie(c, deps.config);
    if (!token) return null;
    const session = await validateSession(deps.sql, token);
    if (!session) {
      clearSessionCookie(c, deps.config);
      return null;
    }
    return session.user;
  };
}
