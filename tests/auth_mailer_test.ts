import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
// @ts-types="@types/smtp-server"
import { SMTPServer } from "smtp-server";
import { freePort } from "../lib/embedded_pg.ts";
import { createLogger } from "../lib/log.ts";
import { createMailer, smtpMailer } from "../lib/mailer.ts";
import { createTestApp, testConfig } from "./_app.ts";
import { activationTokenIn, jsonInit } from "./_auth.ts";
import { createTestDatabase } from "./_db.ts";

const db = await createTestDatabase();

interface Received {
  from: string;
  to: string[];
  raw: string;
}
const received: Received[] = [];

// A real SMTP server on a local port that keeps what it receives.
const smtp = new SMTPServer({
  authOptional: true,
  disabledCommands: ["STARTTLS", "AUTH"],
  logger: false,
  onData(stream, session, callback) {
    const chunks: Uint8Array[] = [];
    stream.on("data", (c: Uint8Array) => chunks.push(c));
    stream.on("end", () => {
      received.push({
        from: session.envelope.mailFrom ? session.envelope.mailFrom.address : "",
        to: session.envelope.rcptTo.map((r) => r.address),
        raw: new TextDecoder().decode(Uint8Array.from(chunks.flatMap((c) => [...c]))),
      });
      callback();
    });
  },
});
await new Promise<void>((resolve) => smtp.listen(0, "127.0.0.1", () => resolve()));
const smtpPort = (smtp.server.address() as AddressInfo).port;
Deno.test.afterAll(async () => {
  await new Promise<void>((resolve) => smtp.close(() => resolve()));
  await db.close();
});

/** Quoted-printable soft line breaks undone, so links can be matched. */
const unfold = (raw: string) => raw.replace(/=\r?\n/g, "").replace(/=3D/g, "=");

Deno.test("the SMTP mailer delivers over a real SMTP connection", async () => {
  const mailer = smtpMailer(`smtp://127.0.0.1:${smtpPort}`, "Vox <no-reply@vox.test>");
  assert.equal(mailer.kind, "smtp");
  await mailer.send({ to: "someone@example.test", subject: "Hello from Vox", text: "Body line" });
  const mail = received.at(-1)!;
  assert.equal(mail.from, "no-reply@vox.test");
  assert.deepEqual(mail.to, ["someone@example.test"]);
  assert.match(mail.raw, /Subject: Hello from Vox/);
  assert.match(mail.raw, /Body line/);
});

Deno.test("with SMTP_URL set, sign-up mails the activation link and does not log it", async () => {
  const { app, logs } = await createTestApp(db.sql, {
    config: testConfig({ SMTP_URL: `smtp://127.0.0.1:${smtpPort}`, PUBLIC_URL: "http://vox.test" }),
  });
  const res = await app.request(
    "/api/auth/signup",
    jsonInit("POST", { email: "smtp-user@example.test", password: "smtp user passphrase" }),
  );
  assert.equal(res.status, 202);
  const mail = received.find((m) => m.to.includes("smtp-user@example.test"))!;
  assert.ok(mail, "mail received");
  const text = unfold(mail.raw);
  assert.match(text, /Subject: Vox: activate your account/);
  const token = activationTokenIn(text);
  assert.ok(!logs.text.includes(token));
  const activated = await app.request(
    "/api/auth/activate",
    jsonInit("POST", { token, password: "smtp user passphrase" }),
  );
  assert.equal(activated.status, 200);
});

Deno.test("without SMTP_URL the mail, link included, goes to the server log", async () => {
  const { app, logs } = await createTestApp(db.sql, {
    config: testConfig({ PUBLIC_URL: "http://vox.test" }),
  });
  const res = await app.request(
    "/api/auth/signup",
    jsonInit("POST", { email: "log-user@example.test", password: "log user passphrase" }),
  );
  assert.equal(res.status, 202);
  const line = logs.lines.find((l) => l.includes("SMTP_URL is not set"))!;
  assert.ok(line);
  const entry = JSON.parse(line);
  // Clearly marked as holding a secret, at a level operators see.
  assert.equal(entry.level, "warn");
  assert.match(entry.msg, /^SECRET: /);
  assert.equal(entry.mailTo, "log-user@example.test");
  assert.equal(entry.subject, "Vox: activate your account");
  const token = activationTokenIn(entry.body);
  const activated = await app.request(
    "/api/auth/activate",
    jsonInit("POST", { token, password: "log user passphrase" }),
  );
  assert.equal(activated.status, 200);
});

Deno.test("createMailer picks SMTP when configured and the log otherwise", () => {
  const log = createLogger();
  assert.equal(createMailer(testConfig({ SMTP_URL: "smtp://127.0.0.1:2525" }), log).kind, "smtp");
  assert.equal(createMailer(testConfig(), log).kind, "log");
});

Deno.test("an unreachable mail server makes sign-up a 502 that says so", async () => {
  const { app } = await createTestApp(db.sql, {
    config: testConfig({ SMTP_URL: `smtp://127.0.0.1:${freePort()}` }),
  });
  const res = await app.request(
    "/api/auth/signup",
    jsonInit("POST", { email: "unlucky@example.test", password: "unlucky passphrase" }),
  );
  assert.equal(res.status, 502);
  assert.deepEqual(await res.json(), {
    error: { code: "mail_failed", message: "Could not send the email; try again later" },
  });
});
