// Organizations through the API (SPEC §2): create, members, invites that take seats, accept as
// an existing or a new user, remove, leave, the admin limit, org and member project limits,
// paid seats as Premium powers, and the system administrator's verification. Every refusal
// (no seat, admin limit, last admin, wrong address, used/expired/revoked invite) is exercised.
import assert from "node:assert/strict";
import { hashToken } from "../lib/auth/tokens.ts";
import { recordSeatPurchase, updateSeatPurchase, verifiedProviders } from "../lib/orgs.ts";
import { SEEDED_PROVIDERS } from "../lib/seed.ts";
import { apiKeyFor, createUser, memoryMailer, sessionCookieOf, sessionFor } from "./_auth.ts";
import { createTestApp } from "./_app.ts";
import { createTestDatabase } from "./_db.ts";

const db = await createTestDatabase();
const sql = db.sql;
const mailer = memoryMailer();
const { app } = await createTestApp(sql, { mailer });
Deno.test.afterAll(() => db.close());

interface Who {
  id: number;
  email: string;
  headers: Record<string, string>;
  projectId: number;
}
const browser = (cookie: string) => ({ cookie, origin: "http://localhost", "sec-fetch-site": "same-origin" });

/** A user with a browser session. */
async function person(opts: Parameters<typeof createUser>[1] = {}): Promise<Who> {
  const u = await createUser(sql, opts);
  return {
    id: u.id,
    email: u.email,
    headers: browser((await sessionFor(sql, u.id)).cookie),
    projectId: u.defaultProjectId,
  };
}

async function call(method: string, path: string, who: Who | null, body?: unknown) {
  const headers: Record<string, string> = { ...who?.headers };
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await app.request(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const type = res.headers.get("content-type") ?? "";
  return { status: res.status, res, data: type.includes("json") ? await res.json() : await res.text() };
}

async function newOrg(admin: Who, name = "Acme Voice") {
  const r = await call("POST", "/api/v1/organizations", admin, { name, address: "1 Main St" });
  assert.equal(r.status, 201, JSON.stringify(r.data));
  return r.data as { id: number; seats: { paid: number; used: number; free: number } };
}

async function buySeats(organizationId: number, seats: number) {
  return await recordSeatPurchase(sql, {
    organizationId,
    seats,
    unitCents: 600,
    discountBps: 0,
    totalCents: seats * 600,
    status: "active",
  });
}

/** The raw token of the last invite mailed to `email`. */
function mailedToken(email: string): string {
  const mail = mailer.sent.findLast((m) => m.to === email);
  assert.ok(mail, `no mail to ${email}`);
  const m = /\/invite\/([a-z2-7]{32})/.exec(mail.text);
  assert.ok(m, mail.text);
  return m[1];
}

async function invite(admin: Who, orgId: number, email: string, orgRole?: "admin" | "member") {
  return await call("POST", `/api/v1/organizations/${orgId}/invites`, admin, { email, orgRole });
}

/** Whether `who` can make a private eval set right now (Premium powers). */
async function canMakePrivate(who: Who): Promise<boolean> {
  const r = await call("POST", "/api/v1/eval-sets", who, {
    projectId: who.projectId,
    name: `private-${crypto.randomUUID().slice(0, 6)}`,
    config: { steps: [{ action: "speak", file: "hello.wav" }, { action: "wait_for_voice" }] },
    visibility: "private",
  });
  assert.ok(r.status === 201 || r.status === 403, JSON.stringify(r.data));
  return r.status === 201;
}

Deno.test("create: the creator becomes the organization's admin; one organization per user (409)", async () => {
  const a = await person();
  const org = await newOrg(a);
  const r = await call("GET", `/api/v1/organizations/${org.id}`, a);
  assert.equal(r.status, 200);
  assert.equal(r.data.myRole, "admin");
  assert.equal(r.data.address, "1 Main St");
  assert.deepEqual(r.data.seats, { paid: 0, members: 1, pendingInvites: 0, used: 1, free: 0 });
  const [u] = await sql`SELECT organization_id, org_role FROM users WHERE id = ${a.id}`;
  assert.deepEqual([u.organizationId, u.orgRole], [org.id, "admin"]);
  const again = await call("POST", "/api/v1/organizations", a, { name: "Second" });
  assert.equal(again.status, 409);
  assert.equal(again.data.error.code, "already_in_organization");
  const blank = await call("POST", "/api/v1/organizations", a, { name: "  " });
  assert.equal(blank.status, 400);
  assert.match(blank.data.error.message, /^name: /);
  // With an API key too (the API is /api/v1).
  const b = await createUser(sql);
  const byKey = await app.request("/api/v1/organizations", {
    method: "POST",
    headers: { authorization: `Bearer ${await apiKeyFor(sql, b.id)}`, "content-type": "application/json" },
    body: JSON.stringify({ name: "Scripted" }),
  });
  assert.equal(byKey.status, 201);
});

Deno.test("update: admins rename; members are refused (403), outsiders see nothing (404)", async () => {
  const a = await person();
  const org = await newOrg(a);
  const m = await person({ organizationId: org.id });
  const ok = await call("PATCH", `/api/v1/organizations/${org.id}`, a, { name: "Renamed", address: null });
  assert.equal(ok.status, 200);
  assert.equal(ok.data.name, "Renamed");
  assert.equal(ok.data.address, null);
  const member = await call("PATCH", `/api/v1/organizations/${org.id}`, m, { name: "Mine now" });
  assert.equal(member.status, 403);
  const outsider = await call("GET", `/api/v1/organizations/${org.id}`, await person());
  assert.equal(outsider.status, 404);
  assert.equal(outsider.data.error.message, `No organization ${org.id}`);
  const [audit] = await sql`SELECT actor_user_id FROM audit_log WHERE action = 'organization.updated'`;
  assert.equal(audit.actorUserId, a.id);
});

Deno.test("invites take seats: none paid → refused with the reason; a free seat → mailed, hashed link", async () => {
  const a = await person();
  const org = await newOrg(a);
  const refused = await invite(a, org.id, "first@example.test");
  assert.equal(refused.status, 403);
  assert.equal(refused.data.error.code, "no_free_seat");
  assert.match(refused.data.error.message, /paid for 0 seat\(s\), and 1 member\(s\) and 0 open invite/);
  assert.deepEqual(refused.data.error.details, {
    limit: "seats",
    paid: 0,
    members: 1,
    pendingInvites: 0,
    used: 1,
    free: 0,
  });

  await buySeats(org.id, 2);
  const ok = await invite(a, org.id, "first@example.test");
  assert.equal(ok.status, 201, JSON.stringify(ok.data));
  assert.equal(ok.data.invite.status, "open");
  const token = mailedToken("first@example.test");
  assert.ok(ok.data.acceptUrl.endsWith(`/invite/${token}`), ok.data.acceptUrl);
  // Only the hash is stored (SPEC §5).
  const rows = await sql`SELECT token_hash FROM invite_tokens WHERE organization_id = ${org.id}`;
  assert.deepEqual(rows.map((r) => r.tokenHash), [hashToken(token)]);
  const dump = JSON.stringify(await sql`SELECT * FROM invite_tokens`);
  assert.ok(!dump.includes(token));

  // 2 seats: the admin and the open invite take both.
  const full = await invite(a, org.id, "second@example.test");
  assert.equal(full.status, 403);
  assert.equal(full.data.error.code, "no_free_seat");
  assert.match(
    full.data.error.message,
    /paid for 2 seat\(s\), and 1 member\(s\) and 1 open invite\(s\) use 2/,
  );
  // The same address twice: 409, and a member cannot be invited.
  await buySeats(org.id, 1);
  const twice = await invite(a, org.id, "FIRST@example.test");
  assert.equal(twice.status, 409);
  assert.equal(twice.data.error.code, "already_invited");
  const self = await invite(a, org.id, a.email);
  assert.equal(self.status, 409);
  assert.equal(self.data.error.code, "already_member");

  // Revoking frees the seat.
  const list = await call("GET", `/api/v1/organizations/${org.id}/invites`, a);
  assert.equal(list.data.invites.length, 1);
  const revoke = await call(
    "DELETE",
    `/api/v1/organizations/${org.id}/invites/${list.data.invites[0].id}`,
    a,
  );
  assert.equal(revoke.status, 200);
  const after = await call("GET", `/api/v1/organizations/${org.id}`, a);
  assert.equal(after.data.seats.pendingInvites, 0);
  assert.equal(after.data.seats.free, 2);
  const gone = await call("POST", "/api/v1/invites/inspect", null, { token });
  assert.equal(gone.data.status, "revoked");
  const revokedAccept = await call("POST", "/api/v1/invites/accept-new", null, {
    token,
    password: "a long enough password 1",
  });
  assert.equal(revokedAccept.status, 410);
  assert.equal(revokedAccept.data.error.code, "invite_revoked");
});

Deno.test("accept as an existing user: only the invited address, once; then Premium powers while paid", async () => {
  const a = await person();
  const org = await newOrg(a);
  await buySeats(org.id, 2);
  const invitee = await person();
  const stranger = await person();
  assert.equal(await canMakePrivate(invitee), false);
  assert.equal((await invite(a, org.id, invitee.email)).status, 201);
  const token = mailedToken(invitee.email);

  const info = await call("POST", "/api/v1/invites/inspect", null, { token });
  assert.equal(info.status, 200);
  assert.equal(info.data.status, "open");
  assert.equal(info.data.organization.name, "Acme Voice");
  assert.equal(info.data.accountExists, true);

  const wrong = await call("POST", "/api/v1/invites/accept", stranger, { token });
  assert.equal(wrong.status, 403);
  assert.equal(wrong.data.error.code, "invite_other_address");
  const bad = await call("POST", "/api/v1/invites/accept", invitee, { token: "a".repeat(32) });
  assert.equal(bad.status, 404);

  const ok = await call("POST", "/api/v1/invites/accept", invitee, { token });
  assert.equal(ok.status, 200, JSON.stringify(ok.data));
  assert.equal(ok.data.myRole, "member");
  assert.equal(ok.data.seats.members, 2);
  assert.equal(ok.data.seats.pendingInvites, 0);
  const again = await call("POST", "/api/v1/invites/accept", invitee, { token });
  assert.equal(again.status, 410);
  assert.equal(again.data.error.code, "invite_used");

  // A paid seat: Premium powers (private items), while it is paid.
  assert.equal(await canMakePrivate(invitee), true);
  const members = await call("GET", `/api/v1/organizations/${org.id}/members`, invitee);
  assert.deepEqual(
    members.data.members.map((m: { id: number; holdsPaidSeat: boolean; effectiveRole: string }) => [
      m.id,
      m.holdsPaidSeat,
      m.effectiveRole,
    ]),
    [[a.id, true, "premium"], [invitee.id, true, "premium"]],
  );
  // The stored role stays basic; only the seat makes it premium.
  const [stored] = await sql`SELECT role FROM users WHERE id = ${invitee.id}`;
  assert.equal(stored.role, "basic");
});

Deno.test("lapsed seats: the newest members lose Premium powers first; admins keep theirs; data stays", async () => {
  const a = await person();
  const org = await newOrg(a);
  const purchase = await buySeats(org.id, 3);
  const early = await person({ organizationId: org.id });
  const late = await person({ organizationId: org.id });
  assert.equal(await canMakePrivate(late), true);
  // Seats drop to 2: the admin and the earlier member keep a seat.
  await updateSeatPurchase(sql, purchase, { seats: 2 });
  assert.equal(await canMakePrivate(a), true);
  assert.equal(await canMakePrivate(early), true);
  assert.equal(await canMakePrivate(late), false);
  // The period ends: nobody is Premium, and nobody is removed.
  await updateSeatPurchase(sql, purchase, { expiresAt: new Date(Date.now() - 1000) });
  assert.equal(await canMakePrivate(a), false);
  assert.equal(await canMakePrivate(early), false);
  const r = await call("GET", `/api/v1/organizations/${org.id}`, a);
  assert.deepEqual([r.data.seats.paid, r.data.seats.members], [0, 3]);
  // Their private items are still theirs to read.
  const [{ n }] =
    await sql`SELECT count(*)::int AS n FROM eval_sets WHERE created_by = ${early.id} AND visibility = 'private'`;
  assert.ok(n >= 1);
  const mine = await call("GET", "/api/v1/eval-sets", early);
  assert.equal(mine.status, 200);
});

Deno.test("accept as a new user: the account is created active, signed in, a member; existing address 409", async () => {
  const a = await person();
  const org = await newOrg(a);
  await buySeats(org.id, 3);
  assert.equal((await invite(a, org.id, "newcomer@example.test")).status, 201);
  const token = mailedToken("newcomer@example.test");
  const info = await call("POST", "/api/v1/invites/inspect", null, { token });
  assert.equal(info.data.accountExists, false);
  const weak = await call("POST", "/api/v1/invites/accept-new", null, { token, password: "short" });
  assert.equal(weak.status, 400);
  assert.equal(weak.data.error.code, "weak_password");
  const ok = await call("POST", "/api/v1/invites/accept-new", null, {
    token,
    password: "a long enough password 1",
    name: "New Comer",
  });
  assert.equal(ok.status, 201, JSON.stringify(ok.data));
  const cookie = sessionCookieOf(ok.res);
  assert.ok(cookie);
  const me = await call("GET", "/api/v1/user", { id: 0, email: "", projectId: 0, headers: browser(cookie) });
  assert.equal(me.data.user.email, "newcomer@example.test");
  assert.equal(me.data.user.organizationId, org.id);
  assert.equal(me.data.user.activated, true);
  const [p] = await sql`SELECT count(*)::int AS n FROM projects WHERE owner_user_id = ${ok.data.userId}`;
  assert.equal(p.n, 1, "the Default project");

  // An address that has an account must sign in instead.
  const existing = await person();
  assert.equal((await invite(a, org.id, existing.email)).status, 201);
  const t2 = mailedToken(existing.email);
  const taken = await call("POST", "/api/v1/invites/accept-new", null, {
    token: t2,
    password: "a long enough password 1",
  });
  assert.equal(taken.status, 409);
  assert.equal(taken.data.error.code, "account_exists");
  // An expired invite is refused, and no longer holds a seat.
  await sql`UPDATE invite_tokens SET expires_at = now() - interval '1 second' WHERE token_hash = ${
    hashToken(t2)
  }`;
  const expired = await call("POST", "/api/v1/invites/accept", existing, { token: t2 });
  assert.equal(expired.status, 410);
  assert.equal(expired.data.error.code, "invite_expired");
  const seats = (await call("GET", `/api/v1/organizations/${org.id}`, a)).data.seats;
  assert.equal(seats.pendingInvites, 0);
  // A fresh invite to the same address replaces the expired one.
  assert.equal((await invite(a, org.id, existing.email)).status, 201);
});

Deno.test("a member of another organization must leave it before accepting (409)", async () => {
  const a = await person();
  const org = await newOrg(a);
  await buySeats(org.id, 2);
  const busy = await person();
  await newOrg(busy, "Busy Org");
  assert.equal((await invite(a, org.id, busy.email)).status, 201);
  const r = await call("POST", "/api/v1/invites/accept", busy, { token: mailedToken(busy.email) });
  assert.equal(r.status, 409);
  assert.equal(r.data.error.code, "already_in_organization");
});

Deno.test("remove frees the seat and the Premium powers; members cannot remove; self-removal is leave", async () => {
  const a = await person();
  const org = await newOrg(a);
  await buySeats(org.id, 2);
  const m = await person({ organizationId: org.id });
  assert.equal(await canMakePrivate(m), true);
  const full = await invite(a, org.id, "waiting@example.test");
  assert.equal(full.data.error.code, "no_free_seat");

  const byMember = await call("DELETE", `/api/v1/organizations/${org.id}/members/${a.id}`, m);
  assert.equal(byMember.status, 403);
  const self = await call("DELETE", `/api/v1/organizations/${org.id}/members/${a.id}`, a);
  assert.equal(self.status, 400);
  assert.equal(self.data.error.code, "use_leave");
  const missing = await call("DELETE", `/api/v1/organizations/${org.id}/members/987654`, a);
  assert.equal(missing.status, 404);

  const r = await call("DELETE", `/api/v1/organizations/${org.id}/members/${m.id}`, a);
  assert.equal(r.status, 200);
  assert.equal(await canMakePrivate(m), false);
  const [u] = await sql`SELECT organization_id, org_role FROM users WHERE id = ${m.id}`;
  assert.deepEqual([u.organizationId, u.orgRole], [null, null]);
  // The seat is free again.
  assert.equal((await invite(a, org.id, "waiting@example.test")).status, 201);
  // The removed user no longer sees the organization.
  assert.equal((await call("GET", `/api/v1/organizations/${org.id}`, m)).status, 404);
});

Deno.test("org admins: at most 3 more than the creator (invites count), the last admin stays", async () => {
  const a = await person();
  const org = await newOrg(a);
  await buySeats(org.id, 10);
  const ms = [];
  for (let i = 0; i < 4; i++) ms.push(await person({ organizationId: org.id }));
  const role = (who: Who, id: number, orgRole: string) =>
    call("PATCH", `/api/v1/organizations/${org.id}/members/${id}`, who, { orgRole });

  const byMember = await role(ms[0], ms[1].id, "admin");
  assert.equal(byMember.status, 403);
  assert.equal((await role(a, ms[0].id, "admin")).status, 200);
  assert.equal((await role(a, ms[1].id, "admin")).status, 200);
  // An admin invite holds the last admin place.
  const adminInvite = await invite(a, org.id, "boss@example.test", "admin");
  assert.equal(adminInvite.status, 201);
  const fourth = await role(a, ms[2].id, "admin");
  assert.equal(fourth.status, 403);
  assert.equal(fourth.data.error.code, "admin_limit");
  assert.match(
    fourth.data.error.message,
    /at most 4 admins \(its creator and 3 more\); it has 3 and 1 open admin invite/,
  );
  const secondAdminInvite = await invite(a, org.id, "boss2@example.test", "admin");
  assert.equal(secondAdminInvite.status, 403);
  assert.equal(secondAdminInvite.data.error.code, "admin_limit");
  // Revoke the admin invite: the fourth admin place is free, then full.
  await call("DELETE", `/api/v1/organizations/${org.id}/invites/${adminInvite.data.invite.id}`, a);
  const promoted = await role(a, ms[2].id, "admin");
  assert.equal(promoted.status, 200);
  assert.equal(promoted.data.orgRole, "admin");
  const fifth = await role(a, ms[3].id, "admin");
  assert.equal(fifth.status, 403);
  assert.equal(fifth.data.error.code, "admin_limit");

  // Admins step down; the last one cannot.
  for (const m of ms.slice(0, 3)) assert.equal((await role(a, m.id, "member")).status, 200);
  const last = await role(a, a.id, "member");
  assert.equal(last.status, 409);
  assert.equal(last.data.error.code, "last_admin");
  const audit =
    await sql`SELECT count(*)::int AS n FROM audit_log WHERE action = 'organization.role_changed'`;
  assert.equal(audit[0].n, 6);
});

Deno.test("leave: a member leaves and frees the seat; the last admin must appoint another first", async () => {
  const a = await person();
  const org = await newOrg(a);
  await buySeats(org.id, 2);
  const m = await person({ organizationId: org.id });
  const stuck = await call("POST", `/api/v1/organizations/${org.id}/leave`, a);
  assert.equal(stuck.status, 409);
  assert.equal(stuck.data.error.code, "last_admin");
  const left = await call("POST", `/api/v1/organizations/${org.id}/leave`, m);
  assert.equal(left.status, 200);
  const seats = (await call("GET", `/api/v1/organizations/${org.id}`, a)).data.seats;
  assert.deepEqual([seats.members, seats.free], [1, 1]);
  // Alone, the admin may leave.
  assert.equal((await call("POST", `/api/v1/organizations/${org.id}/leave`, a)).status, 200);
  assert.equal((await call("POST", `/api/v1/organizations/${org.id}/leave`, a)).status, 404);
});

Deno.test("limits from plan_limits: org projects (organization row) and members' personal projects (org_member)", async () => {
  const a = await person();
  const org = await newOrg(a);
  const m = await person({ organizationId: org.id });
  const mine = await call("GET", "/api/v1/projects", m);
  assert.deepEqual(mine.data.limits, {
    ownerKind: "org_member",
    maxProjects: 20,
    maxWorkflowsPerProject: 20,
  });
  const [orgRow] =
    await sql`SELECT max_projects, max_workflows_per_project FROM plan_limits WHERE owner_kind = 'organization'`;
  assert.deepEqual([orgRow.maxProjects, orgRow.maxWorkflowsPerProject], [100, 20]);
  // The organization's limit is read from the table: lowered to 2 here to reach it.
  await sql`UPDATE plan_limits SET max_projects = 2 WHERE owner_kind = 'organization'`;
  try {
    for (const name of ["Team 1", "Team 2"]) {
      const r = await call("POST", "/api/v1/projects", a, { name, organization: true });
      assert.equal(r.status, 201, JSON.stringify(r.data));
      assert.equal(r.data.organizationId, org.id);
    }
    const over = await call("POST", "/api/v1/projects", a, { name: "Team 3", organization: true });
    assert.equal(over.status, 403);
    assert.equal(
      over.data.error.message,
      "Project limit reached: an organization may have at most 2 projects",
    );
    // Members see the organization's projects but only its admins create them.
    const byMember = await call("POST", "/api/v1/projects", m, { name: "Team 4", organization: true });
    assert.equal(byMember.status, 403);
    const seen = await call("GET", "/api/v1/projects", m);
    assert.equal(
      seen.data.projects.filter((p: { organizationId: number }) => p.organizationId === org.id).length,
      2,
    );
  } finally {
    await sql`UPDATE plan_limits SET max_projects = 100 WHERE owner_kind = 'organization'`;
  }
});

Deno.test("the system admin lists and verifies organizations and names their providers (audited)", async () => {
  const a = await person();
  const org = await newOrg(a, "Agora Inc");
  const sys = await person({ isAdmin: true });
  const list = await call("GET", "/api/admin/organizations", sys);
  assert.equal(list.status, 200);
  assert.ok(
    list.data.organizations.some((o: { id: number; verified: boolean }) => o.id === org.id && !o.verified),
  );
  const bad = await call("PUT", `/api/admin/organizations/${org.id}/verification`, sys, {
    verified: true,
    providerIds: ["zzzzzzzzzzzz"],
  });
  assert.equal(bad.status, 400);
  assert.match(bad.data.error.message, /^providerIds: no provider zzzzzzzzzzzz/);
  const ok = await call("PUT", `/api/admin/organizations/${org.id}/verification`, sys, {
    verified: true,
    providerIds: [SEEDED_PROVIDERS[0].id],
  });
  assert.equal(ok.status, 200);
  assert.equal(ok.data.verified, true);
  assert.deepEqual(ok.data.providers, [{ id: SEEDED_PROVIDERS[0].id, name: SEEDED_PROVIDERS[0].name }]);
  assert.equal((await verifiedProviders(sql)).get(SEEDED_PROVIDERS[0].id), "Agora Inc");
  // The organization's members see the badge state; the org admin cannot verify themself.
  assert.equal((await call("GET", `/api/v1/organizations/${org.id}`, a)).data.verified, true);
  const self = await call("PUT", `/api/admin/organizations/${org.id}/verification`, a, { verified: true });
  assert.equal(self.status, 403);
  const [audit] =
    await sql`SELECT actor_user_id, target_id FROM audit_log WHERE action = 'organization.verified'`;
  assert.deepEqual([audit.actorUserId, audit.targetId], [sys.id, String(org.id)]);
  // Unverified: the badge goes.
  await call("PUT", `/api/admin/organizations/${org.id}/verification`, sys, { verified: false });
  assert.equal((await verifiedProviders(sql)).has(SEEDED_PROVIDERS[0].id), false);
  await sql`UPDATE providers SET organization_id = NULL`;
});
