import type { ComponentChildren } from "preact";

export interface NavUser {
  name: string;
  isAdmin: boolean;
}

const links = [
  { href: "/realtime", label: "Realtime" },
  { href: "/leaderboard", label: "Leaderboard" },
  { href: "/dive", label: "How it works" },
  { href: "/agents", label: "Agents" },
  { href: "/docs", label: "API" },
];

/** The page shell every server-rendered page uses: navigation, content, footer, runtime. */
export function Layout(
  { title, path, runtimeUrl, user, children }: {
    title: string;
    path: string;
    runtimeUrl: string;
    user?: NavUser | null;
    children: ComponentChildren;
  },
) {
  return (
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>{title === "Vox" ? "Vox" : `${title} · Vox`}</title>
        <link rel="stylesheet" href="/static/vox.css" />
        {/^\/(admin\/)?console(\/|$)|^\/(invite|pricing)(\/|$)/.test(path) && (
          <link rel="stylesheet" href="/static/console.css" />
        )}
        <link rel="icon" href="/static/favicon.svg" type="image/svg+xml" />
      </head>
      <body>
        <header class="top">
          <nav class="nav" aria-label="Main">
            <a class="brand" href="/">
              <span class="brand-mark" aria-hidden="true">◉</span> Vox
            </a>
            <ul>
              {links.map((l) => (
                <li key={l.href}>
                  <a href={l.href} aria-current={path.startsWith(l.href) ? "page" : undefined}>
                    {l.label}
                  </a>
                </li>
              ))}
            </ul>
            <div class="nav-end">
              {user
                ? (
                  <>
                    <a class="nav-user" href={user.isAdmin ? "/admin/console/users" : "/console/projects"}>
                      {user.name}
                    </a>
                    <form class="nav-logout" method="post" action="/logout">
                      <button type="submit">Log out</button>
                    </form>
                  </>
                )
                : <a href="/login">Log in</a>}
              <a class="run-own" href="/run-your-own">Run your own</a>
            </div>
          </nav>
        </header>
        <main>{children}</main>
        <footer class="foot">
          Vox measures voice agents the way a caller hears them. Self-hostable, open source. ·{" "}
          <a href="/pricing">Pricing</a>
        </footer>
        <script type="module" src={runtimeUrl}></script>
      </body>
    </html>
  );
}
