// SPEC §5: after a full identity flow, no raw password, session token, activation token, API key
// or setup code may be found in any table, in the logs, or in any response that was not the one
// place meant to show it once.
import assert from "node:assert/strict";
import { hashToken } from "../lib/auth/tokens.ts";
import { createTestApp, testConfig } from "./_app.ts";
import { activationTokenIn, memoryMailer } from "./_auth.ts";
import { createTestDatabase } from "./_db.ts";

Deno.test(
  "no secret survives in the database, the logs or error bodies after a full flow",
  async () => {
    const db = await createTestDatabase();
    try {
      const INIT_CODE = "init-code-Xq7Lk29Pz";
      const mailer = memoryMailer();
      const { app, logs } = await createTestApp(db.sql, {
        mailer,
        config: testConfig({ INIT_CODE, PUBLIC_URL: "http://vox.test" }),
      });
      const secrets: Record<string, string> = { INIT_CODE };
      // Responses meant to show a secret once: the setup result (Scout link) and the new API key.
      const shownOnce = new Set<Response>();
      const bodies: string[] = [];
      const cookies: string[] = [];

      const call = async (
        path: string,
        init: RequestInit & { json?: unknown; cookie?: string; key?: string } = {},
      ) => {
        const headers = new Headers(init.headers);
        if (init.json !== undefined) headers.set("content-type", "application/json");
        if (init.cookie) headers.set("cookie", init.cookie);
        if (init.key) headers.set("authorization", `Bearer ${init.key}`);
        const res = await app.request(path, {
          method: init.method ?? (init.json !== undefined || init.body ? "POST" : "GET"),
          headers,
          body: init.json !== undefined ? JSON.stringify(init.json) : init.body,
          redirect: "manual",
        });
        const text = await res.clone().text();
        for (const line of res.headers.getSetCookie()) cookies.push(line);
        return { res, text, json: () => JSON.parse(text) };
      };
      const sessionOf = (res: Response) => {
        const line = res.headers.getSetCookie().find((l) => /^vox_session=[^;]/.test(l))!;
        const token = line.split(";")[0].split("=")[1];
        return token;
      };
      const record = <T extends { res: Response; text: string }>(r: T): T => {
        if (!shownOnce.has(r.res)) bodies.push(r.text);
        return r;
      };

      // Setup: admin and Scout.
      secrets.adminPassword = "Admin-Secret-Passphrase-1";
      const setup = await call("/api/setup", {
        json: {
          initCode: INIT_CODE,
          admin: { email: "admin@example.test", password: secrets.adminPassword },
          scout: { email: "scout@example.test" },
        },
      });
      assert.equal(setup.res.status, 201);
      shownOnce.add(setup.res);
      secrets.scoutToken = activationTokenIn(setup.json().scoutActivationUrl);
      record(await call("/api/setup", { json: { initCode: "Wrong-Init-Code-123", admin: {}, scout: {} } }));

      // The Scout activates through the page, choosing a password.
      secrets.scoutPassword = "Scout-Secret-Passphrase-2";
      record(await call(`/activate/${secrets.scoutToken}`));
      const scoutActivated = record(
        await call(`/activate/${secrets.scoutToken}`, {
          body: new URLSearchParams({
            password: secrets.scoutPassword,
            passwordAgain: secrets.scoutPassword,
          }),
          headers: { "content-type": "application/x-www-form-urlencoded", origin: "http://vox.test" },
        }),
      );
      assert.equal(scoutActivated.res.status, 303);
      record(await call(`/activate/${secrets.scoutToken}`, { json: undefined }));
      record(await call("/api/auth/activate", { json: { token: secrets.scoutToken } }));

      // A user signs up, activates and signs in; mistakes along the way.
      secrets.userPassword = "User-Secret-Passphrase-3";
      record(
        await call("/api/auth/signup", {
          json: { email: "user@example.test", password: secrets.userPassword },
        }),
      );
      secrets.userToken = activationTokenIn(mailer.sent.at(-1)!.text);
      record(await call("/api/auth/activate", { json: { token: secrets.userToken } }));
      const userActivated = record(
        await call("/api/auth/activate", {
          json: { token: secrets.userToken, password: secrets.userPassword },
        }),
      );
      assert.equal(userActivated.res.status, 200);
      record(
        await call("/api/auth/activate", {
          json: { token: secrets.userToken, password: secrets.userPassword },
        }),
      );
      secrets.wrongPassword = "Wrong-Typed-Passphrase-4";
      record(
        await call("/api/auth/login", {
          json: { email: "user@example.test", password: secrets.wrongPassword },
        }),
      );
      // The classic slip: a password typed into the login field.
      secrets.passwordAsLogin = "Password-In-Login-Field-5";
      record(
        await call("/api/auth/login", {
          json: { login: secrets.passwordAsLogin, password: secrets.userPassword },
        }),
      );
      const login = record(
        await call("/api/auth/login", {
          json: { email: "user@example.test", password: secrets.userPassword },
        }),
      );
      assert.equal(login.res.status, 200);
      secrets.userSession = sessionOf(login.res);
      const userCookie = `vox_session=${secrets.userSession}`;

      const adminLogin = record(
        await call("/admin/login", {
          body: new URLSearchParams({ login: "admin@example.test", password: secrets.adminPassword }),
          headers: { "content-type": "application/x-www-form-urlencoded" },
        }),
      );
      secrets.adminSession = sessionOf(adminLogin.res);
      const adminCookie = `vox_session=${secrets.adminSession}`;
      const users = record(await call("/api/admin/users", { cookie: adminCookie }));
      const userId = users.json().users.find((u: { email: string }) => u.email === "user@example.test").id;
      record(
        await call(`/api/admin/users/${userId}`, {
          method: "PATCH",
          json: { role: "fellow" },
          cookie: adminCookie,
        }),
      );
      record(await call("/api/admin/users/audit", { cookie: adminCookie }));

      // API keys: one used, one revoked and tried, one mistyped.
      const created = await call("/api/v1/api-keys", { json: { name: "laptop" }, cookie: userCookie });
      shownOnce.add(created.res);
      secrets.apiKey = created.json().key;
      secrets.apiKeySecret = secrets.apiKey.split("_")[3].slice(0, 32);
      record(await call("/api/v1/user", { key: secrets.apiKey }));
      record(await call("/api/v1/api-keys", { key: secrets.apiKey }));
      const second = await call("/api/v1/api-keys", { json: { name: "old" }, cookie: userCookie });
      shownOnce.add(second.res);
      secrets.revokedKey = second.json().key;
      record(
        await call(`/api/v1/api-keys/${second.json().apiKey.id}/revoke`, {
          method: "POST",
          cookie: userCookie,
        }),
      );
      record(await call("/api/v1/user", { key: secrets.revokedKey }));
      secrets.mistypedKey = secrets.apiKey.slice(0, -1) + (secrets.apiKey.endsWith("a") ? "b" : "a");
      record(await call("/api/v1/user", { key: secrets.mistypedKey }));

      // Password change, then logout.
      secrets.newPassword = "New-Secret-Passphrase-6";
      const changed = record(
        await call("/api/v1/user/password", {
          json: { currentPassword: secrets.userPassword, newPassword: secrets.newPassword },
          cookie: userCookie,
        }),
      );
      assert.equal(changed.res.status, 200);
      secrets.changedSession = sessionOf(changed.res);
      record(await call("/api/v1/user", { cookie: userCookie }));
      record(
        await call("/api/auth/logout", { method: "POST", cookie: `vox_session=${secrets.changedSession}` }),
      );
      record(await call("/api/auth/status", { cookie: adminCookie }));

      // Every table, every column, as text.
      const tables = await db.sql<{ name: string }[]>`
      SELECT quote_ident(table_name) AS name FROM information_schema.tables
      WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name`;
      assert.ok(tables.length >= 20);
      let dump = "";
      for (const { name } of tables) {
        const rows = await db.sql.unsafe(`SELECT t::text AS row FROM ${name} t`);
        dump += `\n## ${name}\n` + rows.map((r) => r.row).join("\n");
      }
      // The dump really covers the secrets' rows: their hashes are there.
      assert.ok(dump.includes(hashToken(secrets.userToken)), "activation token hash stored");
      assert.ok(dump.includes(hashToken(secrets.adminSession)), "session hash stored");
      assert.ok(dump.includes(hashToken(secrets.apiKeySecret)), "API key secret hash stored");
      assert.match(dump, /\$argon2id\$/);

      const allBodies = bodies.join("\n");
      const logText = logs.text;
      for (const [what, secret] of Object.entries(secrets)) {
        assert.ok(!dump.includes(secret), `${what} found in the database`);
        assert.ok(!allBodies.includes(secret), `${what} found in a response body`);
        assert.ok(!logText.includes(secret), `${what} found in the logs`);
      }
      // The Scout's link went where it belongs: to the Scout, by mail (issue 10: not to the log).
      assert.ok(
        mailer.sent.some((m) => m.to === "scout@example.test" && m.text.includes(secrets.scoutToken)),
      );
      // Audit entries hold facts only.
      const audit = await db.sql`SELECT action, details::text AS d FROM audit_log`;
      assert.ok(audit.some((a) => a.action === "auth.login.failed"));
      assert.ok(audit.some((a) => a.action === "api_key.created"));
      assert.ok(audit.some((a) => a.action === "user.role_changed"));
      assert.ok(audit.some((a) => a.action === "setup.completed"));
      // Cookies carry session tokens and the sealed known-device mark, no other secret.
      for (const line of cookies) {
        for (const what of ["adminPassword", "userPassword", "apiKey", "userToken", "INIT_CODE"]) {
          assert.ok(!line.includes(secrets[what]), `${what} in a Set-Cookie`);
        }
      }
    } finally {
      await db.close();
    }
  },
);
