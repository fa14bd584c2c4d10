// The organization pages: /console/organization/* (dashboard, members and invites, settings)
// for its members and admins, /invite/:token where an invite is accepted, and the system
// administrator's /admin/console/organizations (verify) and /admin/console/pricing. Pages load
// through the API as the caller (./_api.ts); changes go through the console islands.
import { Hono } from "hono";
import { Badge, Empty, PageHead, Section, Table, when } from "../../components/console/ui.tsx";
import { VerifiedBadge } from "../../components/verified_badge.tsx";
import type { AppDeps, AppEnv } from "../../lib/context.ts";
import { inspectInvite } from "../../lib/orgs.ts";
import type { Invite, Member, Organization, OrgSummary } from "../../lib/orgs.ts";
import { formatCents, type Pricing } from "../../lib/pricing.ts";
import { renderPage } from "../_render.tsx";
import type { ApiGet } from "./_api.ts";
import { Action, consolePage, Form, guarded } from "./_page.tsx";

const ORG = "/console/organization";

/** The organization's own sub-navigation. */
function OrgTabs({ path, admin }: { path: string; admin: boolean }) {
  const tabs = [
    { href: ORG, label: "Dashboard" },
    { href: `${ORG}/members`, label: "Members and invites" },
    ...(admin ? [{ href: `${ORG}/settings`, label: "Settings" }] : []),
  ];
  return (
    <nav class="seg org-tabs" aria-label="Organization">
      {tabs.map((t) => (
        <a
          key={t.href}
          href={t.href}
          class={path === t.href ? "on" : undefined}
          aria-current={path === t.href ? "page" : undefined}
        >
          {t.label}
        </a>
      ))}
    </nav>
  );
}

function SeatsLine({ org }: { org: Organization }) {
  const s = org.seats;
  return (
    <dl class="c-facts" data-testid="org-seats">
      <dt>Paid seats</dt>
      <dd data-seats-paid={s.paid}>{s.paid}</dd>
      <dt>Members</dt>
      <dd>{s.members}</dd>
      <dt>Open invites</dt>
      <dd>{s.pendingInvites}</dd>
      <dt>Free seats</dt>
      <dd data-seats-free={s.free}>{s.free}</dd>
    </dl>
  );
}

/** /console/organization/*, /invite/:token and the admin's organization and pricing pages. */
export function orgPageRoutes(deps: AppDeps, get: ApiGet) {
  const app = new Hono<AppEnv>();
  const page = (handler: Parameters<typeof guarded>[2]) => guarded(deps, {}, handler);
  const adminPage = (handler: Parameters<typeof guarded>[2]) => guarded(deps, { admin: true }, handler);

  /** The caller's organization through the API, or null when they have none. */
  async function myOrg(c: Parameters<Parameters<typeof guarded>[2]>[0]): Promise<Organization | null> {
    const { user } = await get<{ user: { organizationId: number | null } }>(c, "/api/v1/user");
    if (user.organizationId === null) return null;
    return await get<Organization>(c, `/api/v1/organizations/${user.organizationId}`);
  }

  app.get(
    ORG,
    page(async (c) => {
      const org = await myOrg(c);
      if (!org) {
        return consolePage(c, deps, {
          title: "Organization",
          body: (
            <>
              <PageHead
                title="Organization"
                lead="An organization shares projects among its members. Its admins buy seats and invite people; members holding a paid seat get Premium powers."
              />
              <Section title="Create an organization">
                <p class="muted">
                  You become its admin. You can appoint up to 3 more admins later. To join an existing
                  organization instead, ask one of its admins for an invite.
                </p>
                <Form
                  {...{
                    id: "new-org",
                    method: "POST",
                    action: "/api/v1/organizations",
                    submit: "Create organization",
                    fields: [
                      { name: "name", label: "Name", required: true },
                      { name: "address", label: "Address (optional)", omitEmpty: true },
                    ],
                    then: { redirect: ORG },
                  }}
                />
              </Section>
            </>
          ),
        });
      }
      const admin = org.myRole === "admin";
      return consolePage(c, deps, {
        title: org.name,
        body: (
          <>
            <PageHead title={org.name} lead={org.address ?? undefined}>
              <VerifiedBadge organization={org.verified ? org.name : null} />
            </PageHead>
            <OrgTabs path={c.req.path} admin={admin} />
            <Section title="Seats">
              <SeatsLine org={org} />
              <p class="muted">
                Every member and every open invite takes a seat. Members holding a paid seat (admins first,
                then by joining) have Premium powers while it is paid.
              </p>
              {admin && (
                <p>
                  <a class="button" href="/console/organization/billing">Buy seats and manage billing</a>{" "}
                  <a href="/pricing">See prices</a>
                </p>
              )}
            </Section>
            <Section title="You">
              <p>
                You are {admin ? "an admin" : "a member"}{" "}
                of this organization{org.verified ? ", which the system administrator has verified" : ""}.
              </p>
              <Action
                {...{
                  label: "Leave organization",
                  method: "POST",
                  action: `/api/v1/organizations/${org.id}/leave`,
                  danger: true,
                  confirm:
                    "You leave the organization: its projects are no longer yours to see, and your seat frees.",
                  redirect: ORG,
                }}
              />
            </Section>
          </>
        ),
      });
    }),
  );

  app.get(
    `${ORG}/members`,
    page(async (c) => {
      const org = await myOrg(c);
      if (!org) return c.redirect(ORG, 303);
      const admin = org.myRole === "admin";
      const [{ members }, invites] = await Promise.all([
        get<{ members: Member[] }>(c, `/api/v1/organizations/${org.id}/members`),
        admin
          ? get<{ invites: Invite[] }>(c, `/api/v1/organizations/${org.id}/invites`).then((r) => r.invites)
          : Promise.resolve([] as Invite[]),
      ]);
      const open = invites.filter((i) => i.status === "open");
      return consolePage(c, deps, {
        title: "Members",
        body: (
          <>
            <PageHead title="Members" crumbs={[{ href: ORG, label: org.name }]} />
            <OrgTabs path={c.req.path} admin={admin} />
            <Table
              caption="Members"
              head={["Name", "Email", "Role", "Seat", "Joined", ...(admin ? ["Actions"] : [])]}
            >
              {members.map((m) => (
                <tr key={m.id} data-member={m.id}>
                  <td>{m.name || m.username}</td>
                  <td>{m.email}</td>
                  <td>
                    <Badge value={m.orgRole} />
                  </td>
                  <td>{m.holdsPaidSeat ? "Paid seat · Premium powers" : "No paid seat"}</td>
                  <td>{when(m.joinedAt)}</td>
                  {admin && (
                    <td class="c-row-actions">
                      <Action
                        {...{
                          label: m.orgRole === "admin" ? "Make member" : "Make admin",
                          method: "PATCH",
                          action: `/api/v1/organizations/${org.id}/members/${m.id}`,
                          body: { orgRole: m.orgRole === "admin" ? "member" : "admin" },
                        }}
                      />
                      {m.id !== c.var.user!.id && (
                        <Action
                          {...{
                            label: "Remove",
                            method: "DELETE",
                            action: `/api/v1/organizations/${org.id}/members/${m.id}`,
                            danger: true,
                            confirm: `Removes ${
                              m.name || m.username
                            }: their seat frees; their own projects stay theirs.`,
                          }}
                        />
                      )}
                    </td>
                  )}
                </tr>
              ))}
            </Table>
            {admin && (
              <>
                <Section title="Invite someone">
                  <p class="muted">
                    {org.seats.free > 0
                      ? `${org.seats.free} free seat(s). An invite takes one until it is accepted, revoked or expires (7 days).`
                      : "No free seat: buy seats or revoke an open invite before inviting anyone."}
                  </p>
                  <Form
                    {...{
                      id: "invite",
                      method: "POST",
                      action: `/api/v1/organizations/${org.id}/invites`,
                      submit: "Send invite",
                      fields: [
                        { name: "email", label: "Email", type: "email", required: true },
                        {
                          name: "orgRole",
                          label: "Role",
                          type: "select",
                          value: "member",
                          options: [{ value: "member", label: "Member" }, { value: "admin", label: "Admin" }],
                        },
                      ],
                      then: {
                        secret: {
                          field: "acceptUrl",
                          title: "Invite sent.",
                          notice:
                            "The link was mailed. It is shown only now, in case you want to pass it on yourself.",
                        },
                      },
                    }}
                  />
                </Section>
                {open.length === 0
                  ? <Empty title="No open invites" />
                  : (
                    <Table caption="Open invites" head={["Email", "Role", "Sent", "Expires", "Actions"]}>
                      {open.map((i) => (
                        <tr key={i.id} data-invite={i.id}>
                          <td>{i.email}</td>
                          <td>{i.orgRole}</td>
                          <td>{when(i.createdAt)}</td>
                          <td>{when(i.expiresAt)}</td>
                          <td class="c-row-actions">
                            <Action
                              {...{
                                label: "Revoke",
                                method: "DELETE",
                                action: `/api/v1/organizations/${org.id}/invites/${i.id}`,
                                danger: true,
                                confirm: `The link sent to ${i.email} stops working and its seat frees.`,
                              }}
                            />
                          </td>
                        </tr>
                      ))}
                    </Table>
                  )}
              </>
            )}
          </>
        ),
      });
    }),
  );

  app.get(
    `${ORG}/settings`,
    page(async (c) => {
      const org = await myOrg(c);
      if (!org) return c.redirect(ORG, 303);
      return consolePage(c, deps, {
        title: "Organization settings",
        body: (
          <>
            <PageHead title="Organization settings" crumbs={[{ href: ORG, label: org.name }]} />
            <OrgTabs path={c.req.path} admin={org.myRole === "admin"} />
            <Section title="Name and address">
              {org.myRole !== "admin" && (
                <p class="muted">Only the organization's admins can change these.</p>
              )}
              <Form
                {...{
                  id: "org-settings",
                  method: "PATCH",
                  action: `/api/v1/organizations/${org.id}`,
                  submit: "Save",
                  fields: [
                    { name: "name", label: "Name", value: org.name, required: true },
                    { name: "address", label: "Address", value: org.address ?? "" },
                  ],
                  then: { reload: true },
                }}
              />
            </Section>
            <Section title="Billing">
              <p>
                Seats, payment methods and invoices are on{" "}
                <a href="/console/organization/billing">the billing page</a>.
              </p>
            </Section>
          </>
        ),
      });
    }),
  );

  // The invite link. GET never accepts (mail scanners open links; the token is single use).
  app.get("/invite/:token", async (c) => {
    const info = await inspectInvite(deps.sql, c.req.param("token"));
    const user = c.var.user;
    const token = c.req.param("token");
    const problem: Record<string, string> = {
      unknown: "This invite link is not valid.",
      used: "This invite was already accepted.",
      revoked: "The organization revoked this invite.",
      expired: "This invite has expired; ask the organization for a new one.",
    };
    const body = info.status !== "open"
      ? (
        <section class="card narrow console-form-page">
          <h1>Invite</h1>
          <p class="error-box" role="alert">{problem[info.status]}</p>
        </section>
      )
      : (
        <section class="card narrow console-form-page">
          <h1>Join {info.organization!.name}</h1>
          <p>
            You are invited to join <strong>{info.organization!.name}</strong>
            <VerifiedBadge organization={info.organization!.verified ? info.organization!.name : null} /> as
            {" "}
            {info.orgRole === "admin" ? "an admin" : "a member"}. The invite was sent to{" "}
            <strong>{info.email}</strong> and expires {when(info.expiresAt)}.
          </p>
          {user
            ? user.email.toLowerCase() === info.email!.toLowerCase()
              ? (
                <Form
                  {...{
                    id: "accept",
                    method: "POST",
                    action: "/api/v1/invites/accept",
                    submit: "Accept and join",
                    fields: [],
                    fixed: { token },
                    then: { redirect: ORG },
                  }}
                />
              )
              : (
                <p class="error-box" role="alert">
                  You are signed in as {user.email}, but the invite is for{" "}
                  {info.email}. Sign out and sign in with that account to accept it.
                </p>
              )
            : info.accountExists
            ? (
              <p>
                <a class="button" href={`/login?next=${encodeURIComponent(c.req.path)}`}>
                  Sign in as {info.email} to accept
                </a>
              </p>
            )
            : (
              <>
                <p class="muted">Create your account to accept: the link proves the address is yours.</p>
                <Form
                  {...{
                    id: "accept-new",
                    method: "POST",
                    action: "/api/v1/invites/accept-new",
                    submit: "Create account and join",
                    fields: [
                      { name: "name", label: "Your name", omitEmpty: true, autocomplete: "name" },
                      {
                        name: "password",
                        label: "Choose a password",
                        type: "password",
                        required: true,
                        autocomplete: "new-password",
                        hint: "At least 12 characters",
                      },
                    ],
                    fixed: { token },
                    then: { redirect: ORG },
                  }}
                />
              </>
            )}
        </section>
      );
    return renderPage(c, deps, { title: "Invite", body, status: info.status === "unknown" ? 404 : 200 });
  });

  app.get(
    "/admin/console/organizations",
    adminPage(async (c) => {
      const { organizations } = await get<{ organizations: OrgSummary[] }>(c, "/api/admin/organizations");
      return consolePage(c, deps, {
        title: "Organizations",
        admin: true,
        body: (
          <>
            <PageHead
              title="Organizations"
              lead="Verify an organization once you know who it is; name its providers and public pages show the verified badge beside them."
            />
            {organizations.length === 0
              ? <Empty title="No organizations yet">Users create them from their console.</Empty>
              : (
                <Table
                  caption="Organizations"
                  head={[
                    "Organization",
                    "Members",
                    "Paid seats",
                    "Created",
                    "Verified",
                    "Providers",
                    "Actions",
                  ]}
                >
                  {organizations.map((o) => (
                    <tr key={o.id} data-org={o.id}>
                      <td>
                        {o.name}
                        {o.address && <div class="muted small">{o.address}</div>}
                      </td>
                      <td>{o.members}</td>
                      <td>{o.paidSeats}</td>
                      <td>{when(o.createdAt)}</td>
                      <td>{o.verified ? `yes, ${when(o.verifiedAt)}` : "no"}</td>
                      <td>
                        <Form
                          {...{
                            id: `org-providers-${o.id}`,
                            method: "PUT",
                            action: `/api/admin/organizations/${o.id}/verification`,
                            submit: "Save providers",
                            inline: true,
                            fields: [{
                              name: "providerIds",
                              label: "Provider ids (JSON list)",
                              value: JSON.stringify(o.providers.map((p) => p.id)),
                              json: true,
                              hint: o.providers.map((p) => p.name).join(", ") || undefined,
                            }],
                            fixed: { verified: o.verified },
                            then: { reload: true },
                          }}
                        />
                      </td>
                      <td class="c-row-actions">
                        <Action
                          {...{
                            label: o.verified ? "Unverify" : "Verify",
                            method: "PUT",
                            action: `/api/admin/organizations/${o.id}/verification`,
                            body: { verified: !o.verified },
                          }}
                        />
                      </td>
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
    "/admin/console/pricing",
    adminPage(async (c) => {
      const pricing = await get<Pricing>(c, "/api/pricing");
      const unit = (k: "solo" | "org") => pricing.plans.find((p) => p.kind === k)?.unitCents ?? 0;
      return consolePage(c, deps, {
        title: "Pricing",
        admin: true,
        body: (
          <>
            <PageHead
              title="Pricing"
              lead="Prices per seat and month, in cents, and the discount by seats bought in one purchase. Changes apply to new quotes at once and are kept in the audit log."
            />
            <Table caption="Current prices" head={["Plan", "Per seat per month", "Changed"]}>
              {pricing.plans.map((p) => (
                <tr key={p.kind} data-plan={p.kind}>
                  <td>{p.kind === "org" ? "Organization seat" : "Solo Premium"}</td>
                  <td>{formatCents(p.unitCents, p.currency)}</td>
                  <td>{when(p.updatedAt)}</td>
                </tr>
              ))}
            </Table>
            <Section title="Change prices and discounts">
              <Form
                {...{
                  id: "pricing",
                  method: "PUT",
                  action: "/api/admin/pricing",
                  submit: "Save pricing",
                  fields: [
                    {
                      name: "unitCents.solo",
                      label: "Solo Premium (cents)",
                      type: "number",
                      number: true,
                      value: unit("solo"),
                    },
                    {
                      name: "unitCents.org",
                      label: "Organization seat (cents)",
                      type: "number",
                      number: true,
                      value: unit("org"),
                    },
                    {
                      name: "discounts",
                      label: "Discount tiers (JSON)",
                      type: "textarea",
                      rows: 6,
                      json: true,
                      value: JSON.stringify(
                        pricing.discounts.map(({ minSeats, maxSeats, discountBps }) => ({
                          minSeats,
                          maxSeats,
                          discountBps,
                        })),
                        null,
                        1,
                      ),
                      hint: "From 1 seat, no gaps, the last with maxSeats null; discountBps 1500 = 15 %",
                    },
                    { name: "reason", label: "Reason (kept in the audit log)", omitEmpty: true },
                  ],
                  then: { reload: true },
                }}
              />
            </Section>
          </>
        ),
      });
    }),
  );

  return app;
}
