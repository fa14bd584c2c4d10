import { type Context, Hono } from "hono";
import type { ComponentChildren } from "preact";
import { PASSWORD_MIN } from "../lib/auth/passwords.ts";
import { readKnownDevice } from "../lib/auth/devices.ts";
import { checkAuthRateLimit } from "../lib/auth/rate_limit.ts";
import { safeNext } from "../lib/auth/redirects.ts";
import type { AppEnv, ResolvedDeps } from "../lib/context.ts";
import { HttpError } from "../lib/errors.ts";
import { invalidInput } from "../lib/openapi.ts";
import { activate, inspectActivationToken, passwordLogin, signup } from "../lib/accounts.ts";
import { actionContext } from "../lib/auth/action_context.ts";
import { endSession, startSession } from "../lib/auth/sessions.ts";
import { runSetup, setupNeeded } from "../lib/setup.ts";
import { renderPage } from "./_render.tsx";
import { loginSchema, signupSchema } from "./api/auth.ts";
import { setupSchema } from "./api/setup.ts";

// Messages for the error codes the OAuth callback redirects to /login with.
const LOGIN_ERRORS: Record<string, string> = {
  oauth_denied: "Google sign-in was cancelled.",
  oauth_state_missing: "The sign-in attempt expired or cookies are blocked; try again.",
  oauth_state_mismatch: "The sign-in answer did not match this browser; try again.",
  oauth_code_rejected: "Google refused the sign-in code; try again.",
  oauth_token_invalid: "Google's answer could not be verified; try again.",
  email_unverified: "Your Google account's email address is not verified.",
  account_deactivated: "This account has been deactivated by the administrator.",
  rate_limited: "Too many sign-in attempts; wait a few minutes.",
};

/** The server-rendered identity pages: /setup, /signup, /login, /admin/login, /activate/:token, /logout. */
export function authPageRoutes(deps: ResolvedDeps) {
  const app = new Hono<AppEnv>();

  app.get("/setup", async (c) => {
    if (!(await setupNeeded(deps.sql))) return setupDonePage(c, deps);
    return setupPage(c, deps, {});
  });

  app.post("/setup", async (c) => {
    const form = await formOf(c);
    try {
      await checkAuthRateLimit(c, deps);
      const parsed = setupSchema.safeParse({
        initCode: form.initCode,
        admin: {
          email: form.adminEmail,
          password: form.adminPassword,
          name: form.adminName || undefined,
          username: form.adminUsername || undefined,
        },
        scout: {
          email: form.scoutEmail,
          name: form.scoutName || undefined,
          username: form.scoutUsername || undefined,
        },
      });
      if (!parsed.success) throw invalidInput(parsed.error, "form");
      const result = await runSetup(actionContext(c, deps), parsed.data);
      return renderPage(c, deps, {
        title: "Setup complete",
        body: (
          <section class="card narrow">
            <h1>Vox is set up</h1>
            <p class="ok-box">
              The administrator <strong>{result.admin.email}</strong> and the Scout{" "}
              <strong>{result.scout.email}</strong> were created.
            </p>
            <p>
              The Scout activates their account and chooses a password with this link. It is shown only now
              (and was written to the server log); pass it on:
            </p>
            <pre><code id="scout-link">{result.scoutActivationUrl}</code></pre>
            <p>
              <a class="button primary" href="/admin/login">Sign in as administrator</a>
            </p>
          </section>
        ),
      });
    } catch (err) {
      if (err instanceof HttpError && err.code === "setup_done") return setupDonePage(c, deps);
      return setupPage(c, deps, { error: errorOf(c, err), form }, statusOf(err));
    }
  });

  app.get("/signup", (c) => signupPage(c, deps, {}));

  app.post("/signup", async (c) => {
    const form = await formOf(c);
    try {
      await checkAuthRateLimit(c, deps);
      const parsed = signupSchema.safeParse({
        email: form.email,
        password: form.password,
        name: form.name || undefined,
      });
      if (!parsed.success) throw invalidInput(parsed.error, "form");
      await signup(actionContext(c, deps), parsed.data);
      return renderPage(c, deps, {
        title: "Check your email",
        body: (
          <section class="card narrow">
            <h1>Check your email</h1>
            <p class="ok-box">
              An activation link was sent to{" "}
              <strong>{parsed.data.email}</strong>. Open it to activate your account.
            </p>
          </section>
        ),
      });
    } catch (err) {
      return signupPage(c, deps, { error: errorOf(c, err), form }, statusOf(err));
    }
  });

  for (const admin of [false, true]) {
    const path = admin ? "/admin/login" : "/login";
    app.get(path, (c) => {
      const code = c.req.query("error");
      const notice = c.req.query("activated") ? "Your account is active: sign in." : undefined;
      return loginPage(c, deps, {
        admin,
        error: code ? LOGIN_ERRORS[code] ?? "Sign-in failed." : undefined,
        notice,
      });
    });
    app.post(path, async (c) => {
      const form = await formOf(c);
      try {
        await checkAuthRateLimit(c, deps);
        const parsed = loginSchema.safeParse({ login: form.login, password: form.password });
        if (!parsed.success) throw invalidInput(parsed.error, "form");
        const device = await readKnownDevice(c, deps.config, deps.secretKey);
        const user = await passwordLogin(actionContext(c, deps), {
          ...parsed.data,
          adminOnly: admin,
          device,
        });
        await startSession(c, deps, user);
        return c.redirect(safeNext(form.next, "/"), 303);
      } catch (err) {
        return loginPage(
          c,
          deps,
          { admin, error: errorOf(c, err), login: form.login, next: form.next },
          statusOf(err),
        );
      }
    });
  }

  app.post("/logout", async (c) => {
    await endSession(c, deps);
    return c.redirect("/", 303);
  });

  app.get("/activate/:token", async (c) => {
    // GET never activates: mail scanners open links, and the token is single use.
    const info = await inspectActivationToken(deps.sql, c.req.param("token"));
    if (info.state !== "valid") {
      return activationProblemPage(c, deps, info.state);
    }
    return activatePage(c, deps, { needsPassword: info.needsPassword, email: info.email });
  });

  app.post("/activate/:token", async (c) => {
    const form = await formOf(c);
    const token = c.req.param("token");
    try {
      await checkAuthRateLimit(c, deps);
      if (form.passwordAgain !== undefined && form.password !== form.passwordAgain) {
        throw new HttpError(400, "password_mismatch", "The two passwords differ");
      }
      await activate(actionContext(c, deps), token, form.password || undefined);
      return c.redirect("/login?activated=1", 303);
    } catch (err) {
      const info = await inspectActivationToken(deps.sql, token);
      if (info.state !== "valid") return activationProblemPage(c, deps, info.state, statusOf(err));
      return activatePage(c, deps, {
        needsPassword: info.needsPassword,
        email: info.email,
        error: errorOf(c, err),
      }, statusOf(err));
    }
  });

  return app;
}

type Form = Record<string, string | undefined>;

async function formOf(c: Context): Promise<Form> {
  const body = await c.req.parseBody();
  return Object.fromEntries(Object.entries(body).map(([k, v]) => [k, typeof v === "string" ? v : undefined]));
}

function statusOf(err: unknown): 400 | 401 | 403 | 409 | 429 | 502 {
  if (err instanceof HttpError && [400, 401, 403, 409, 429, 502].includes(err.status)) {
    return err.status as 400 | 401 | 403 | 409 | 429 | 502;
  }
  throw err;
}

function errorOf(c: Context, err: unknown): string {
  if (!(err instanceof HttpError)) throw err;
  for (const [k, v] of Object.entries(err.options.headers ?? {})) c.header(k, v);
  return err.message;
}

function Problem({ error }: { error?: string }) {
  return error ? <p class="error-box" role="alert">{error}</p> : null;
}

function Field(
  { label, name, type = "text", value, required = true, autocomplete, minLength }: {
    label: string;
    name: string;
    type?: string;
    value?: string;
    required?: boolean;
    autocomplete?: string;
    minLength?: number;
  },
) {
  return (
    <label>
      {label}
      <input
        name={name}
        id={name}
        type={type}
        value={type === "password" ? undefined : value}
        required={required}
        autocomplete={autocomplete}
        minLength={minLength}
      />
    </label>
  );
}

function page(c: Context, deps: ResolvedDeps, title: string, body: ComponentChildren, status = 200) {
  const res = renderPage(c, deps, { title, body, status: 200 });
  return status === 200 ? res : new Response(res.body, { status, headers: res.headers });
}

function setupPage(c: Context, deps: ResolvedDeps, s: { error?: string; form?: Form }, status = 200) {
  const f = s.form ?? {};
  return page(
    c,
    deps,
    "Set up Vox",
    <section class="card narrow">
      <h1>Set up Vox</h1>
      <p>
        Create the administrator and the Scout account. You need the setup code (<code>INIT_CODE</code>) from
        the server's environment. This works once.
      </p>
      <Problem error={s.error} />
      {!deps.config.INIT_CODE && (
        <p class="error-box">Setup is disabled: INIT_CODE is not set on the server.</p>
      )}
      <form class="stack" method="post" action="/setup">
        <Field label="Setup code" name="initCode" type="password" autocomplete="off" />
        <h2>Administrator</h2>
        <Field label="Name" name="adminName" value={f.adminName} required={false} />
        <Field label="Email" name="adminEmail" type="email" value={f.adminEmail} autocomplete="username" />
        <Field
          label={`Password (at least ${PASSWORD_MIN} characters)`}
          name="adminPassword"
          type="password"
          autocomplete="new-password"
          minLength={PASSWORD_MIN}
        />
        <h2>Scout</h2>
        <p>
          The Scout is the internal staff account that marks workflows mainline. It is activated by a link.
        </p>
        <Field label="Name" name="scoutName" value={f.scoutName} required={false} />
        <Field label="Email" name="scoutEmail" type="email" value={f.scoutEmail} />
        <button class="button primary" type="submit">Create accounts</button>
      </form>
    </section>,
    status,
  );
}

function setupDonePage(c: Context, deps: ResolvedDeps) {
  return page(
    c,
    deps,
    "Set up Vox",
    <section class="card narrow">
      <h1>Vox is already set up</h1>
      <p>
        Setup has been completed. <a href="/admin/login">Administrator sign-in</a>
      </p>
    </section>,
    409,
  );
}

function signupPage(c: Context, deps: ResolvedDeps, s: { error?: string; form?: Form }, status = 200) {
  return page(
    c,
    deps,
    "Sign up",
    <section class="card narrow">
      <h1>Create an account</h1>
      <Problem error={s.error} />
      <form class="stack" method="post" action="/signup">
        <Field label="Name" name="name" value={s.form?.name} required={false} autocomplete="name" />
        <Field label="Email" name="email" type="email" value={s.form?.email} autocomplete="username" />
        <Field
          label={`Password (at least ${PASSWORD_MIN} characters)`}
          name="password"
          type="password"
          autocomplete="new-password"
          minLength={PASSWORD_MIN}
        />
        <button class="button primary" type="submit">Sign up</button>
      </form>
      <p>
        Have an account? <a href="/login">Log in</a>
      </p>
    </section>,
    status,
  );
}

function loginPage(
  c: Context,
  deps: ResolvedDeps,
  s: { admin: boolean; error?: string; notice?: string; login?: string; next?: string },
  status = 200,
) {
  const google = deps.oauthProviders.get("google");
  const next = s.next ?? c.req.query("next");
  return page(
    c,
    deps,
    s.admin ? "Administrator sign-in" : "Log in",
    <section class="card narrow">
      <h1>{s.admin ? "Administrator sign-in" : "Log in"}</h1>
      {s.notice && <p class="ok-box">{s.notice}</p>}
      <Problem error={s.error} />
      <form class="stack" method="post" action={s.admin ? "/admin/login" : "/login"}>
        {next && <input type="hidden" name="next" value={safeNext(next, "/")} />}
        <Field label="Email or username" name="login" value={s.login} autocomplete="username" />
        <Field label="Password" name="password" type="password" autocomplete="current-password" />
        <button class="button primary" type="submit">Log in</button>
      </form>
      {!s.admin && google && (
        <p>
          <a
            class="button"
            href={`/api/auth/google${next ? `?next=${encodeURIComponent(safeNext(next, "/"))}` : ""}`}
          >
            Sign in with Google
          </a>
        </p>
      )}
      {!s.admin && (
        <p>
          No account? <a href="/signup">Sign up</a>
        </p>
      )}
    </section>,
    status,
  );
}

function activatePage(
  c: Context,
  deps: ResolvedDeps,
  s: { needsPassword: boolean; email?: string; error?: string },
  status = 200,
) {
  return page(
    c,
    deps,
    "Activate your account",
    <section class="card narrow">
      <h1>Activate your account</h1>
      {s.email && (
        <p>
          Account: <strong>{s.email}</strong>
        </p>
      )}
      <Problem error={s.error} />
      <form class="stack" method="post">
        {s.needsPassword
          ? (
            <>
              <Field
                label={`Choose a password (at least ${PASSWORD_MIN} characters)`}
                name="password"
                type="password"
                autocomplete="new-password"
                minLength={PASSWORD_MIN}
              />
              <Field
                label="Repeat the password"
                name="passwordAgain"
                type="password"
                autocomplete="new-password"
              />
            </>
          )
          : (
            <Field
              label="The password you chose when signing up"
              name="password"
              type="password"
              autocomplete="current-password"
            />
          )}
        <button class="button primary" type="submit">Activate</button>
      </form>
    </section>,
    status,
  );
}

function activationProblemPage(
  c: Context,
  deps: ResolvedDeps,
  state: "used" | "expired" | "unknown" | "valid",
  status = 400,
) {
  const message = state === "used"
    ? "This activation link was already used. If your account is active, log in."
    : state === "expired"
    ? "This activation link has expired. Sign up again to get a new one."
    : "This activation link is not valid.";
  return page(
    c,
    deps,
    "Activation",
    <section class="card narrow">
      <h1>Activation</h1>
      <p class="error-box" role="alert">{message}</p>
      <p>
        <a href="/login">Log in</a> · <a href="/signup">Sign up</a>
      </p>
    </section>,
    status,
  );
}
