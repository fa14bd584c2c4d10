// A Vox server with billing on, pointed at the local fake Stripe (tests/fixtures/fake_stripe.ts)
// which delivers its webhooks back to the server over real HTTP.
import type { Hono } from "hono";
import type { AppEnv } from "../lib/context.ts";
import type { Sql } from "../lib/db.ts";
import { freePort } from "../lib/embedded_pg.ts";
import type { Mailer } from "../lib/mailer.ts";
import { createTestApp, testConfig } from "./_app.ts";
import { createUser, sessionFor, type TestUserOptions } from "./_auth.ts";
import { type FakeStripe, startFakeStripe } from "./fixtures/fake_stripe.ts";

export interface BillingServer {
  app: Hono<AppEnv>;
  fake: FakeStripe;
  baseUrl: string;
  logs: { text: string };
  stop(): Promise<void>;
}

/** The app with STRIPE_* set to the fake, served on a local port; the fake posts webhooks to it. */
export async function startBillingServer(
  sql: Sql,
  opts: { mailer?: Mailer; env?: Record<string, string> } = {},
): Promise<BillingServer> {
  const fake = startFakeStripe();
  const port = freePort();
  const { app, logs } = await createTestApp(sql, {
    config: testConfig({
      // Checkout sends the browser back here.
      PUBLIC_URL: `http://127.0.0.1:${port}`,
      STRIPE_SECRET_KEY: fake.secretKey,
      STRIPE_WEBHOOK_SECRET: fake.webhookSecret,
      STRIPE_API_URL: fake.url,
      ...opts.env,
    }),
    ...(opts.mailer ? { mailer: opts.mailer } : {}),
  });
  const server = Deno.serve(
    { port, hostname: "127.0.0.1", onListen() {} },
    (req, info) => app.fetch(req, info),
  );
  const baseUrl = `http://127.0.0.1:${port}`;
  fake.webhookUrl = `${baseUrl}/api/webhooks/stripe`;
  return {
    app,
    fake,
    baseUrl,
    logs,
    async stop() {
      await server.shutdown();
      await fake.close();
    },
  };
}

/** A signed-in browser: a user and the headers its requests carry. */
export interface Browser {
  id: number;
  email: string;
  headers: Record<string, string>;
}

/** A user with a browser session. */
export async function browserUser(sql: Sql, opts: TestUserOptions = {}): Promise<Browser> {
  const u = await createUser(sql, opts);
  const { cookie } = await sessionFor(sql, u.id);
  return {
    id: u.id,
    email: u.email,
    headers: { cookie, origin: "http://localhost", "sec-fetch-site": "same-origin" },
  };
}

/** An organization with an admin (a browser) in it. */
export async function orgWithAdmin(
  sql: Sql,
  name = "Acme Voice",
): Promise<{ orgId: number; admin: Browser }> {
  const [org] = await sql<{ id: number }[]>`INSERT INTO organizations (name) VALUES (${name}) RETURNING id`;
  const admin = await browserUser(sql, { organizationId: org.id, orgRole: "admin" });
  return { orgId: org.id, admin };
}

/** Calls the app in-process as `who`; answers status and parsed JSON. */
export async function call(
  app: Hono<AppEnv>,
  method: string,
  path: string,
  who: Browser | null,
  body?: unknown,
): Promise<
  { status: number; data: Record<string, unknown> & { error?: { code: string; message: string } } }
> {
  const headers: Record<string, string> = { ...who?.headers };
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await app.request(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, data: text ? JSON.parse(text) : null };
}

/** A user's role now. */
export async function roleOf(sql: Sql, userId: number): Promise<string> {
  const [r] = await sql<{ role: string }[]>`SELECT role FROM users WHERE id = ${userId}`;
  return r.role;
}
