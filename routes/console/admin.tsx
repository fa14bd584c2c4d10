// /admin/console/*: the system admin's pages (SPEC §9): users with roles and the audit
// trail, workers (eval agent tokens and live agents). Like /console, every page loads its
// data from the API in-process as the caller and changes it through islands.
import { Hono } from "hono";
import { Badge, Empty, PageHead, Section, Table, when } from "../../components/console/ui.tsx";
import AgentsTable from "../../islands/agents_table.tsx";
import type { AppDeps, AppEnv } from "../../lib/context.ts";
import { Island } from "../../lib/islands/marker.tsx";
import type { AdminAgent } from "../../lib/agents.ts";
import { LIMIT_FIELDS, type LimitField, type PlanLimits } from "../../lib/plan_limits.ts";
import type { AgentTokenInfo } from "../../lib/agent_tokens.ts";
import { ROLES } from "../../lib/roles.ts";
import type { ApiGet } from "./_api.ts";
import { Action, consolePage, Form, guarded, jobFilterParams, StatusField } from "./_page.tsx";

interface User {
  id: number;
  name: string;
  username: string;
  email: string;
  role: string;
  isAdmin: boolean;
  activated: boolean;
  deactivated: boolean;
  createdAt?: string;
}
interface AuditEntry {
  id: number;
  at: string;
  actorUserId: number | null;
  action: string;
  targetType: string | null;
  targetId: string | null;
  ip: string | null;
}

/** The /admin/console routes. */
export function adminConsoleRoutes(deps: AppDeps, get: ApiGet) {
  const app = new Hono<AppEnv>();
  const page = (h: Parameters<typeof guarded>[2]) => guarded(deps, { admin: true }, h);

  app.get("/admin/console", page((c) => Promise.resolve(c.redirect("/admin/console/users", 303))));

  app.get(
    "/admin/console/users",
    page(async (c) => {
      const search = (c.req.query("search") ?? "").trim().slice(0, 200);
      const [{ users, total }, { entries }] = await Promise.all([
        get<{ users: User[]; total: number }>(
          c,
          `/api/admin/users?limit=100${search ? `&search=${encodeURIComponent(search)}` : ""}`,
        ),
        get<{ entries: AuditEntry[] }>(c, "/api/admin/users/audit?limit=30"),
      ]);
      return consolePage(c, deps, {
        title: "Users",
        admin: true,
        body: (
          <>
            <PageHead
              title="Users"
              lead={`${total} users. Roles: ${ROLES.join(", ")}; only you grant Fellow.`}
            />
            <form class="c-filters" method="get" action="/admin/console/users" role="search">
              <div class="c-field">
                <label for="search">Search</label>
                <input
                  id="search"
                  name="search"
                  type="search"
                  value={search}
                  placeholder="email, username, name"
                />
              </div>
              <button class="button small" type="submit">Search</button>
            </form>
            {users.length === 0
              ? <Empty title={search ? `No user matches “${search}”` : "No users yet"} />
              : (
                <Table caption="Users" head={["User", "Email", "Role", "Status", "Joined", "Actions"]}>
                  {users.map((u) => (
                    <tr key={u.id} data-user={u.id}>
                      <td>
                        {u.name} <span class="muted small">@{u.username}</span>
                        {u.isAdmin && (
                          <>
                            <Badge value="admin" />
                          </>
                        )}
                      </td>
                      <td>{u.email}</td>
                      <td>
                        <Form
                          {...{
                            id: `role-${u.id}`,
                            method: "PATCH",
                            action: `/api/admin/users/${u.id}`,
                            submit: "Set role",
                            inline: true,
                            fields: [{
                              name: "role",
                              label: "Role",
                              type: "select",
                              value: u.role,
                              options: ROLES.map((r) => ({ value: r, label: r })),
                            }],
                            then: { reload: true },
                          }}
                        />
                      </td>
                      <td>
                        <Badge
                          value={u.deactivated ? "deactivated" : u.activated ? "active" : "not_activated"}
                        />
                      </td>
                      <td>{when(u.createdAt)}</td>
                      <td class="c-row-actions">
                        {!u.isAdmin && !u.deactivated && (
                          <Action
                            {...{
                              label: "Deactivate",
                              method: "POST",
                              action: `/api/admin/users/${u.id}/deactivate`,
                              danger: true,
                              confirm:
                                `Deactivates ${u.name}: their sessions end and their API keys stop working.`,
                            }}
                          />
                        )}
                        {u.deactivated && (
                          <Action
                            {...{
                              label: "Reactivate",
                              method: "POST",
                              action: `/api/admin/users/${u.id}/reactivate`,
                            }}
                          />
                        )}
                      </td>
                    </tr>
                  ))}
                </Table>
              )}
            <Section title="Audit trail">
              {entries.length === 0 ? <Empty title="Nothing recorded yet" /> : (
                <Table
                  caption="Audit trail, most recent first"
                  head={["When", "Action", "By", "Target", "IP"]}
                >
                  {entries.map((e) => (
                    <tr key={e.id}>
                      <td>{when(e.at)}</td>
                      <td>
                        <code>{e.action}</code>
                      </td>
                      <td>{e.actorUserId === null ? "system" : `user #${e.actorUserId}`}</td>
                      <td>{e.targetType ? `${e.targetType} ${e.targetId ?? ""}` : "—"}</td>
                      <td>{e.ip ?? "—"}</td>
                    </tr>
                  ))}
                </Table>
              )}
            </Section>
          </>
        ),
      });
    }),
  );

  app.get(
    "/admin/console/workers",
    page(async (c) => {
      const [{ tokens }, { agents }] = await Promise.all([
        get<{ tokens: AgentTokenInfo[] }>(c, "/api/admin/agent-tokens"),
        get<{ agents: AdminAgent[] }>(c, "/api/admin/agents"),
      ]);
      return consolePage(c, deps, {
        title: "Workers",
        admin: true,
        body: (
          <>
            <PageHead
              title="Workers"
              lead="Eval agents connect with a token of one region and take that region's jobs. Create a token, start an agent with the command shown, and it appears below."
            />
            <Section title="New eval agent token">
              <Form
                {...{
                  id: "new-token",
                  method: "POST",
                  action: "/api/admin/agent-tokens",
                  submit: "Create token",
                  inline: true,
                  fields: [
                    { name: "name", label: "Name", required: true, hint: "e.g. the machine it runs on" },
                    { name: "region", label: "Region", required: true, hint: "e.g. eu-west-1" },
                  ],
                  then: {
                    secret: {
                      field: "token",
                      title: "The agent token.",
                      notice: "Copy it now: it is shown only this once. Start an agent with it:",
                      command: "deno task agent --server {origin} --token {secret} --region {info.region}",
                      more: [{
                        label: "Or in a container, from the image agent/Dockerfile builds " +
                          "(docker build -f agent/Dockerfile -t vox-eval-agent .; a server on this " +
                          "machine is host.docker.internal from inside it):",
                        command: "docker run -d --shm-size=1g --stop-timeout 70 " +
                          "--security-opt seccomp=unconfined -e VOX_SERVER_URL={origin} " +
                          "-e VOX_AGENT_TOKEN={secret} -e VOX_AGENT_REGION={info.region} vox-eval-agent",
                      }],
                    },
                  },
                }}
              />
            </Section>
            <Section title="Live agents">
              <Island
                name="agents_table"
                component={AgentsTable}
                props={{ agents, source: "/api/admin/agents", jobs: true }}
              />
            </Section>
            <Section title="Tokens">
              {tokens.length === 0 ? <Empty title="No agent tokens yet">Create one above.</Empty> : (
                <Table
                  caption="Eval agent tokens"
                  head={["Name", "Region", "Token", "Agents", "Last used", "Status", "Actions"]}
                >
                  {tokens.map((t) => (
                    <tr key={t.id} data-token={t.id}>
                      <td>{t.name}</td>
                      <td>{t.region}</td>
                      <td>
                        <code>{t.displayPrefix}…</code>
                      </td>
                      <td>{t.agents}</td>
                      <td>{t.lastUsedAt ? when(t.lastUsedAt) : "never"}</td>
                      <td>
                        <Badge value={t.revokedAt ? "revoked" : "active"} />
                      </td>
                      <td>
                        {!t.revokedAt && (
                          <Action
                            {...{
                              label: "Revoke",
                              method: "DELETE",
                              action: `/api/admin/agent-tokens/${t.id}`,
                              danger: true,
                              confirm:
                                `Revokes “${t.name}”: agents using it are disconnected and cannot reconnect.`,
                            }}
                          />
                        )}
                      </td>
                    </tr>
                  ))}
                </Table>
              )}
            </Section>
          </>
        ),
      });
    }),
  );

  app.get(
    "/admin/console/jobs",
    page(async (c) => {
      const q = c.req.query();
      const { params, status } = jobFilterParams(q);
      const { jobs, total } = await get<{ jobs: AdminJob[]; total: number }>(c, `/api/admin/jobs?${params}`);
      return consolePage(c, deps, {
        title: "All jobs",
        admin: true,
        body: (
          <>
            <PageHead title="All jobs" lead={`${total} jobs across every user, newest first.`} />
            <form class="c-filters" method="get" action="/admin/console/jobs" aria-label="Filter jobs">
              <StatusField status={status} />
              <div class="c-field">
                <label for="f-region">Region</label>
                <input id="f-region" name="region" value={q.region ?? ""} size={12} />
              </div>
              <button class="button small" type="submit">Filter</button>
            </form>
            {jobs.length === 0 ? <Empty title="No jobs match" /> : (
              <Table
                caption="All jobs"
                head={["Job", "Status", "User", "Workflow", "Eval set", "Region", "Created", "Error"]}
              >
                {jobs.map((j) => (
                  <tr key={j.id} data-job={j.id}>
                    <td>#{j.id}</td>
                    <td>
                      <Badge value={j.status} />
                    </td>
                    <td>{j.userName ?? "—"}</td>
                    <td>{j.workflowName}</td>
                    <td>{j.evalSetName}</td>
                    <td>{j.region}</td>
                    <td>{when(j.createdAt)}</td>
                    <td class="small">{j.error ?? ""}</td>
                  </tr>
                ))}
              </Table>
            )}
          </>
        ),
      });
    }),
  );

  app.get(
    "/admin/console/settings",
    page(async (c) => {
      const [{ settings }, { limits }] = await Promise.all([
        get<{ settings: Setting[] }>(c, "/api/admin/settings"),
        get<{ limits: PlanLimits[] }>(c, "/api/admin/plan-limits"),
      ]);
      return consolePage(c, deps, {
        title: "Settings",
        admin: true,
        body: (
          <>
            <PageHead
              title="Settings"
              lead="System settings apply at once in every server process. Each value is checked against its shape before it is stored."
            />
            <Table caption="System settings" head={["Setting", "Value", "Default"]}>
              {settings.map((s) => (
                <tr key={s.key} data-setting={s.key}>
                  <td>
                    <code>{s.key}</code>
                    <div class="muted small">{s.description}</div>
                    {s.updatedAt && <div class="muted small">changed {when(s.updatedAt)}</div>}
                  </td>
                  <td>
                    <Form
                      {...{
                        id: `setting-${s.key.replace(/[^a-z0-9]/g, "-")}`,
                        method: "PUT",
                        action: `/api/admin/settings/${s.key}`,
                        submit: "Save",
                        inline: true,
                        fields: [{
                          name: "value",
                          label: "Value (JSON)",
                          value: JSON.stringify(s.value),
                          json: true,
                        }],
                        then: { reload: true },
                      }}
                    />
                  </td>
                  <td>
                    <code>{JSON.stringify(s.default)}</code>
                  </td>
                </tr>
              ))}
            </Table>
            <Section title="Plan limits">
              <p class="muted">
                What each kind of owner may have: projects and workflows per project (the console's "7 of
                10"), and the fair-use caps on pending jobs, schedules and how often a schedule may fire. A
                change applies to the next request and is kept in the audit trail with its reason.
              </p>
              {limits.map((l) => (
                <div class="c-limits" key={l.ownerKind} data-limits={l.ownerKind}>
                  <h3>
                    {l.ownerKind.replace("_", " ")}{" "}
                    <span class="muted small">changed {when(l.updatedAt)}</span>
                  </h3>
                  <Form
                    {...{
                      id: `limits-${l.ownerKind.replace("_", "-")}`,
                      method: "PATCH",
                      action: `/api/admin/plan-limits/${l.ownerKind}`,
                      submit: "Save",
                      inline: true,
                      fields: [
                        ...(Object.keys(LIMIT_FIELDS) as LimitField[]).map((f) => ({
                          name: f,
                          label: LIMIT_FIELDS[f].label,
                          type: "number" as const,
                          number: true,
                          value: l[f],
                        })),
                        { name: "reason", label: "Reason", omitEmpty: true },
                      ],
                      then: { reload: true },
                    }}
                  />
                </div>
              ))}
            </Section>
          </>
        ),
      });
    }),
  );

  return app;
}

interface Setting {
  key: string;
  value: unknown;
  default: unknown;
  description: string;
  updatedAt: string | null;
}

interface AdminJob {
  id: number;
  status: string;
  region: string;
  createdAt: string;
  error: string | null;
  userName: string | null;
  workflowName: string;
  evalSetName: string;
}
