// /api/v1/workflows/{id}/secrets: a workflow's sealed secrets, write-only (SPEC §5). Reads give
// the names only; values go in through PUT and out only to the eval agent running a job.
import { Hono } from "hono";
import { z } from "zod";
import type { AppDeps, AppEnv } from "../../lib/context.ts";
import { requireUser } from "../../lib/guards.ts";
import { doc, valid } from "../../lib/openapi.ts";
import { changeSecret, SECRET_NAME, SECRET_VALUE_MAX, secretNames } from "../../lib/workflow_secrets.ts";
import { idParam } from "./_schemas.ts";

const nameParam = idParam.extend({
  name: z.string().regex(SECRET_NAME, "letters, digits, _ . - (starting with a letter, ≤ 64)"),
});
const valueBody = z.object({
  value: z.string().min(1).max(SECRET_VALUE_MAX).describe("the secret; never shown again"),
});
const namesResponse = z.object({ names: z.array(z.string()) });

/** Routes mounted at /api/v1/workflows (beside the items API): …/{id}/secrets[/{name}]. */
export function workflowSecretsApi(deps: AppDeps) {
  const path = "/api/v1/workflows/{id}/secrets";
  doc({
    method: "get",
    path,
    summary: "The names of a workflow's sealed secrets (values are never returned)",
    tag: "workflows",
    auth: "user",
    params: idParam,
    response: namesResponse,
  });
  doc({
    method: "put",
    path: `${path}/{name}`,
    summary: "Set or replace a workflow's secret (sealed with AES-256-GCM; write-only)",
    tag: "workflows",
    auth: "user",
    params: nameParam,
    body: valueBody,
    response: namesResponse,
  });
  doc({
    method: "delete",
    path: `${path}/{name}`,
    summary: "Delete a workflow's secret",
    tag: "workflows",
    auth: "user",
    params: nameParam,
    response: namesResponse,
  });

  const app = new Hono<AppEnv>();
  app.use("*", requireUser);
  app.get("/:id/secrets", valid("param", idParam), async (c) => {
    const names = await secretNames(deps.sql, deps.secretKey, c.var.user!, c.req.valid("param").id);
    return c.json({ names });
  });
  app.put("/:id/secrets/:name", valid("param", nameParam), valid("json", valueBody), async (c) => {
    const { id, name } = c.req.valid("param");
    const names = await changeSecret(
      deps.sql,
      deps.secretKey,
      c.var.user!,
      id,
      name,
      c.req.valid("json").value,
    );
    return c.json({ names });
  });
  app.delete("/:id/secrets/:name", valid("param", nameParam), async (c) => {
    const { id, name } = c.req.valid("param");
    return c.json({ names: await changeSecret(deps.sql, deps.secretKey, c.var.user!, id, name, null) });
  });
  return app;
}
