// The console's visual language, shared by /console, /admin/console and (later) the
// organization pages: a section navigation that shows where you are, page heads, tables,
// empty states, status badges and small formatters. Server-rendered; no state, no fetches.
import type { ComponentChildren } from "preact";

/** One entry of a console's section navigation. */
export interface ConsoleLink {
  href: string;
  label: string;
}

/** The user console's sections (SPEC §9). */
export const USER_LINKS: ConsoleLink[] = [
  { href: "/console/projects", label: "Projects" },
  { href: "/console/workflows", label: "Workflows" },
  { href: "/console/eval-sets", label: "Eval sets" },
  { href: "/console/jobs", label: "Jobs" },
  { href: "/console/compare", label: "Compare" },
  { href: "/console/schedules", label: "Schedules" },
  { href: "/console/providers", label: "Providers" },
  { href: "/console/api-keys", label: "API keys" },
  { href: "/console/account", label: "Account" },
  { href: "/console/organization", label: "Organization" },
  { href: "/console/billing", label: "Billing" },
];

/** The admin console's sections. */
export const ADMIN_LINKS: ConsoleLink[] = [
  { href: "/admin/console/users", label: "Users" },
  { href: "/admin/console/workers", label: "Workers" },
  { href: "/admin/console/jobs", label: "Jobs" },
  { href: "/admin/console/settings", label: "Settings" },
  { href: "/admin/console/organizations", label: "Organizations" },
  { href: "/admin/console/pricing", label: "Pricing" },
  { href: "/admin/console/fund-returns", label: "Fund returns" },
];

/** A console page: the section navigation beside (or, on a phone, above) the content. */
export function ConsoleShell(
  { links, path, label, children }: {
    links: ConsoleLink[];
    path: string;
    label: string;
    children: ComponentChildren;
  },
) {
  return (
    <div class="console">
      <nav class="console-nav" aria-label={label}>
        <ul>
          {links.map((l) => (
            <li key={l.href}>
              <a
                href={l.href}
                aria-current={path === l.href || path.startsWith(`${l.href}/`) ? "page" : undefined}
              >
                {l.label}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <div class="console-main">{children}</div>
    </div>
  );
}

/** Title, one line of explanation and the page's main actions. */
export function PageHead(
  { title, lead, crumbs, children }: {
    title: string;
    lead?: ComponentChildren;
    crumbs?: { href: string; label: string }[];
    children?: ComponentChildren;
  },
) {
  return (
    <div class="c-head">
      {crumbs && (
        <p class="crumbs">
          {crumbs.map((cr) => (
            <span key={cr.href}>
              <a href={cr.href}>{cr.label}</a> <span aria-hidden="true">›</span>
              {" "}
            </span>
          ))}
        </p>
      )}
      <div class="c-head-row">
        <h1>{title}</h1>
        {children && <div class="c-actions">{children}</div>}
      </div>
      {lead && <p class="muted c-lead">{lead}</p>}
    </div>
  );
}

/** What a list shows when it has nothing: what is missing and the next step. */
export function Empty({ title, children }: { title: string; children?: ComponentChildren }) {
  return (
    <div class="c-empty" role="status">
      <p class="c-empty-title">{title}</p>
      {children && <p class="muted">{children}</p>}
    </div>
  );
}

/** A table that scrolls sideways on narrow screens instead of breaking the page. With `stack`,
 * each row becomes a small card of "label value" lines on a phone instead (its cells then need
 * `data-label`), for tables a reader must see whole, such as a result's turns. */
export function Table(
  { caption, head, children, stack }: {
    caption: string;
    head: ComponentChildren[];
    children: ComponentChildren;
    stack?: boolean;
  },
) {
  return (
    // Focusable, so keyboard users can scroll a table that is wider than a phone.
    <div
      class={stack ? "c-table-wrap c-stack" : "c-table-wrap"}
      tabIndex={0}
      role="region"
      aria-label={caption}
    >
      <table class="table c-table">
        <caption class="sr-only">{caption}</caption>
        <thead>
          <tr>
            {head.map((h, i) => <th key={i} scope="col">{h}</th>)}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  );
}

/** A status word as a coloured badge (job statuses, key states, agent states). */
export function Badge({ value }: { value: string }) {
  return <span class={`c-badge c-badge-${value.replace(/[^a-z_-]/g, "")}`}>{value.replace(/_/g, " ")}</span>;
}

/** An error the page could not avoid (the API refused or failed), said plainly. */
export function ErrorNote({ title, message }: { title: string; message: string }) {
  return (
    <div class="error-box" role="alert">
      <strong>{title}</strong> {message}
    </div>
  );
}

/** A section with a heading inside a card. */
export function Section(
  { title, id, children }: { title: string; id?: string; children: ComponentChildren },
) {
  const hid = id ?? `s-${title.toLowerCase().replace(/[^a-z0-9]+/g, "-")}`;
  return (
    <section class="card c-section" aria-labelledby={hid}>
      <h2 id={hid}>{title}</h2>
      {children}
    </section>
  );
}

/** "2026-11-30 14:05 UTC"; times are UTC on the server, islands may show local time. */
export function when(iso: string | null | undefined): string {
  if (!iso) return "—";
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}

/** Milliseconds as "612 ms", "—" for none. */
export function ms(v: number | null | undefined): string {
  return v === null || v === undefined ? "—" : `${Math.round(v)} ms`;
}

/** "7 of 10 workflows". */
export function ofLimit(n: number, max: number | null | undefined, noun: string): string {
  return max === null || max === undefined ? `${n} ${noun}` : `${n} of ${max} ${noun}`;
}
