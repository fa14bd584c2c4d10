// Server rendering of a whole page for the page routes: the shared layout around the body,
// with the island runtime script of this build.
import type { Context } from "hono";
import type { ComponentChildren } from "preact";
import { renderToString } from "preact-render-to-string";
import { Layout, type NavUser } from "../components/layout.tsx";
import type { AppDeps } from "../lib/context.ts";

/** Renders a full HTML page in the shared layout. */
export function renderPage(
  c: Context,
  deps: AppDeps,
  page: { title: string; body: ComponentChildren; user?: NavUser | null; status?: 200 | 404 },
): Response {
  const html = renderToString(
    <Layout
      title={page.title}
      path={c.req.path}
      runtimeUrl={deps.assets.runtimeUrl}
      user={page.user === undefined ? (c.get("user" as never) as NavUser | null | undefined) : page.user}
    >
      {page.body}
    </Layout>,
  );
  return c.html(`<!DOCTYPE html>${html}`, page.status ?? 200);
}
