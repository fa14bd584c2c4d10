import type { Context } from "hono";
import type { ActionContext } from "../accounts.ts";
import type { AppEnv, ResolvedDeps } from "../context.ts";
import { clientIp } from "./client.ts";

/** The ActionContext (lib/accounts.ts) of a request: the app's deps, the request's log and client address. */
export function actionContext(c: Context<AppEnv>, deps: ResolvedDeps): ActionContext {
  return {
    sql: deps.sql,
    config: deps.config,
    log: c.var.log,
    mailer: deps.mailer,
    ip: clientIp(c, deps.config),
  };
}
