import { Hono } from "hono";
import { publicUrl } from "../lib/config.ts";
import type { AppDeps, AppEnv } from "../lib/context.ts";
import { documentedRoutes, openApiDocument } from "../lib/openapi.ts";
import { renderPage } from "./_render.tsx";

const AUTH_TEXT = {
  public: "public",
  user: "session or API key",
  session: "signed-in browser session",
  admin: "administrator",
  agent: "eval agent token",
} as const;

/** /openapi.json (generated from the zod schemas that validate requests) and /docs (its reference page). */
export function docsRoutes(deps: AppDeps) {
  const app = new Hono<AppEnv>();

  app.get("/openapi.json", (c) => c.json(openApiDocument(publicUrl(deps.config))));

  app.get("/docs", (c) => {
    const doc = openApiDocument(publicUrl(deps.config)) as {
      paths: Record<
        string,
        Record<
          string,
          {
            parameters?: { name: string; in: string; required: boolean; description?: string }[];
            requestBody?: { content: Record<string, { schema: unknown }> };
            responses: Record<string, { description: string }>;
          }
        >
      >;
    };
    const routes = [...documentedRoutes()].sort((a, b) =>
      a.tag.localeCompare(b.tag) || a.path.localeCompare(b.path)
    );
    const tags = [...new Set(routes.map((r) => r.tag))];
    return renderPage(c, deps, {
      title: "API reference",
      body: (
        <>
          <h1>API reference</h1>
          <p class="lead">
            Every page of Vox is a client of this API. Send an API key as{" "}
            <code>Authorization: Bearer vox_live_…</code> or use a signed-in session. Errors are{" "}
            <code>{'{ "error": { code, message, details? } }'}</code>; invalid input is a 400 whose message
            names the field. The machine-readable document is <a href="/openapi.json">/openapi.json</a>{" "}
            (OpenAPI 3.1).
          </p>
          <nav class="toolbar">{tags.map((t) => <a key={t} href={`#${t.replace(/\s/g, "-")}`}>{t}</a>)}</nav>
          {tags.map((t) => (
            <section key={t} class="card" id={t.replace(/\s/g, "-")}>
              <h2>{t}</h2>
              {routes.filter((r) => r.tag === t).map((r) => {
                const op = doc.paths[r.path]?.[r.method];
                return (
                  <div key={`${r.method} ${r.path}`} class="endpoint">
                    <h3>
                      <code>{r.method.toUpperCase()} {r.path}</code>
                    </h3>
                    <p>
                      {r.summary} <span class="muted">· {AUTH_TEXT[r.auth]}</span>
                    </p>
                    {op?.parameters?.length
                      ? (
                        <ul>
                          {op.parameters.map((p) => (
                            <li key={`${p.in}:${p.name}`}>
                              <code>{p.name}</code> ({p.in}
                              {p.required ? ", required" : ""}){p.description ? ` — ${p.description}` : ""}
                            </li>
                          ))}
                        </ul>
                      )
                      : null}
                    {op?.requestBody
                      ? (
                        <details>
                          <summary>Request body (JSON schema)</summary>
                          <pre><code>{JSON.stringify(op.requestBody.content["application/json"].schema, null, 2)}</code></pre>
                        </details>
                      )
                      : null}
                    <p class="muted">
                      Responses:{" "}
                      {Object.entries(op?.responses ?? {}).map(([s, v]) => `${s} ${v.description}`).join(
                        " · ",
                      )}
                    </p>
                  </div>
                );
              })}
            </section>
          ))}
        </>
      ),
    });
  });

  return app;
}
