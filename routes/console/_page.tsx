// Shared by the console page modules: sign-in checks, the API getter's failures turned into
// pages, and the console shell around each page's body.
import type { Context } from "hono";
import type { ComponentChildren } from "preact";
import { ADMIN_LINKS, ConsoleShell, ErrorNote, USER_LINKS } from "../../components/console/ui.tsx";
import type { AppDeps, AppEnv } from "../../lib/context.ts";
import ConsoleAction, { type ConsoleActionProps } from "../../islands/console_action.tsx";
import ConsoleForm, { type ConsoleFormProps } from "../../islands/console_form.tsx";
import { Island } from "../../lib/islands/marker.tsx";
import { JOB_STATUSES } from "../../lib/job_status.ts";
import { renderPage } from "../_render.tsx";
import { ApiFailure } from "./_api.ts";

/** Renders a console page (user or admin) in the layout. */
export function consolePage(
  c: Context<AppEnv>,
  deps: AppDeps,
  page: { title: string; admin?: boolean; body: ComponentChildren; status?: 200 | 404 },
): Response {
  return renderPage(c, deps, {
    title: page.title,
    status: page.status,
    body: (
      <ConsoleShell
        links={page.admin ? ADMIN_LINKS : USER_LINKS}
        path={c.req.path}
        label={page.admin ? "Admin console" : "Console"}
      >
        {page.body}
      </ConsoleShell>
    ),
  });
}

/**
 * Wraps a console page handler: no caller → the login page (coming back here afterwards);
 * an API refusal while loading → a page that says what went wrong, with the API's status.
 */
export function guarded(
  deps: AppDeps,
  opts: { admin?: boolean },
  handler: (c: Context<AppEnv>) => Promise<Response>,
) {
  return async (c: Context<AppEnv>): Promise<Response> => {
    const user = c.var.user;
    const next = encodeURIComponent(c.req.path + (new URL(c.req.url).search));
    if (!user) return c.redirect(`${opts.admin ? "/admin/login" : "/login"}?next=${next}`, 303);
    if (opts.admin && !user.isAdmin) {
      return consolePage(c, deps, {
        title: "Admins only",
        body: <ErrorNote title="Admins only." message="The admin console is for the system admin." />,
      });
    }
    try {
      return await handler(c);
    } catch (err) {
      if (!(err instanceof ApiFailure)) throw err;
      if (err.status === 401) return c.redirect(`/login?next=${next}`, 303);
      return consolePage(c, deps, {
        title: err.status === 404 ? "Not found" : "Could not load",
        admin: opts.admin,
        status: err.status === 404 ? 404 : 200,
        body: (
          <ErrorNote
            title={err.status === 404 ? "Not found." : "Could not load this page."}
            message={err.message}
          />
        ),
      });
    }
  };
}

/** A console form island (typed props, so literals like "POST" keep their type). */
export function Form(props: ConsoleFormProps) {
  return <Island name="console_form" component={ConsoleForm} props={props} />;
}

/** A console action island. */
export function Action(props: ConsoleActionProps) {
  return <Island name="console_action" component={ConsoleAction} props={props} />;
}

/**
 * The filters both jobs pages (a user's and the admin's) read from their query: a known status
 * and a well-formed region go into the API query, anything else is dropped.
 */
export function jobFilterParams(q: Record<string, string>): { params: URLSearchParams; status: string } {
  const params = new URLSearchParams({ limit: "100" });
  const status = (JOB_STATUSES as readonly string[]).includes(q.status ?? "") ? q.status : "";
  if (status) params.set("status", status);
  if (/^[a-z0-9][a-z0-9-]{0,39}$/.test(q.region ?? "")) params.set("region", q.region);
  return { params, status };
}

/** The status field of a jobs filter form. */
export function StatusField(props: { status: string }) {
  return (
    <div class="c-field">
      <label for="f-status">Status</label>
      <select id="f-status" name="status">
        <option value="">Any</option>
        {JOB_STATUSES.map((s) => <option key={s} value={s} selected={s === props.status}>{s}</option>)}
      </select>
    </div>
  );
}
