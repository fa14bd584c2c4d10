import { Hono } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { z } from "zod";
import { isHttps } from "../../lib/auth/client.ts";
import { OAuthError, type OAuthPending } from "../../lib/auth/oauth.ts";
import { readKnownDevice } from "../../lib/auth/devices.ts";
import { checkAuthRateLimit } from "../../lib/auth/rate_limit.ts";
import { endSession, startSession } from "../../lib/auth/sessions.ts";
import { constantTimeEqualText, randomToken } from "../../lib/auth/tokens.ts";
import { safeNext } from "../../lib/auth/redirects.ts";
import type { AppEnv, ResolvedDeps } from "../../lib/context.ts";
import { HttpError } from "../../lib/errors.ts";
import { doc, valid } from "../../lib/openapi.ts";
import { activate, passwordLogin, signup } from "../../lib/accounts.ts";
import { actionContext } from "../../lib/auth/action_context.ts";
import { oauthSignIn } from "../../lib/auth/oauth_accounts.ts";
import { setupNeeded } from "../../lib/setup.ts";
import { PASSWORD_MAX } from "../../lib/auth/passwords.ts";
import { callerSchema, userSchema } from "./user.ts";

const email = z.email("must be an email address").max(254);

export const signupSchema = z.object({
  email,
  password: z.string().max(PASSWORD_MAX),
  name: z.string().trim().max(200).optional(),
  username: z.string().regex(/^[A-Za-z0-9_.-]{2,40}$/, "2–40 letters, digits, _ . -").optional(),
});

export const loginSchema = z.object({
  // An email address or a username.
  login: z.string().trim().min(1, "is required").max(254),
  password: z.string().min(1, "is required").max(PASSWORD_MAX),
});

// Scripts may say {email, password}; pages say {login, password}.
const loginBody = z.preprocess(
  (v) =>
    v && typeof v === "object" && !("login" in v)
      ? {
        ...v,
        login: (v as { email?: unknown; username?: unknown }).email ?? (v as { username?: unknown }).username,
      }
      : v,
  loginSchema,
);

const activateSchema = z.object({
  token: z.string().max(100),
  password: z.string().max(PASSWORD_MAX).optional().describe(
    "The password chosen at sign-up, or a new one when the account has none; required either way",
  ),
});

const OAUTH_COOKIE = (id: string) => `vox_oauth_${id}`;

const tag = "auth";
const providerParam = z.object({ provider: z.string().describe("A sign-in provider id, e.g. google") });

doc({
  method: "get",
  path: "/api/auth/status",
  summary: "Whether the request is signed in and as whom, whether setup is pending, the enabled providers",
  tag,
  auth: "public",
  response: z.object({
    authenticated: z.boolean(),
    user: callerSchema.nullable(),
    setupRequired: z.boolean(),
    providers: z.record(z.string(), z.boolean()),
  }),
});
doc({
  method: "post",
  path: "/api/auth/signup",
  summary: "Sign up with email and password; an activation link is mailed (the answer is the same " +
    "whether or not the address has an account)",
  tag,
  auth: "public",
  body: signupSchema,
  status: 202,
  response: z.object({ status: z.literal("pending_activation"), message: z.string() }),
  errors: [409, 429, 502],
});
doc({
  method: "post",
  path: "/api/auth/activate",
  summary: "Activate an account with the token from its activation link and a password: the one given at " +
    "sign-up, or a new one when the account has none (the Scout, or an address signed up for twice)",
  tag,
  auth: "public",
  body: activateSchema,
  response: z.object({ user: userSchema }),
  errors: [429],
});
doc({
  method: "post",
  path: "/api/auth/login",
  summary: "Sign in with { login, password } (login: an email or a username; `email` or `username` " +
    "may stand for `login`) and start a browser session",
  tag,
  auth: "public",
  body: loginBody,
  response: z.object({ user: callerSchema }),
  errors: [401, 403, 429],
});
doc({
  method: "post",
  path: "/api/auth/logout",
  summary: "End the browser's session",
  tag,
  auth: "public",
  response: z.object({ signedOut: z.literal(true) }),
});
doc({
  method: "get",
  path: "/api/auth/{provider}/status",
  summary: "Whether sign-in with this provider is enabled",
  tag,
  auth: "public",
  params: providerParam,
  response: z.object({ provider: z.string(), enabled: z.boolean() }),
});
doc({
  method: "get",
  path: "/api/auth/{provider}",
  summary: "Start signing in with the provider: redirects to it (state, PKCE and nonce kept in a cookie)",
  tag,
  auth: "public",
  params: providerParam,
  query: z.object({ next: z.string().optional().describe("Same-site path to go to after signing in") }),
  status: 302,
  errors: [429],
});
doc({
  method: "get",
  path: "/api/auth/{provider}/callback",
  summary: "Where the provider returns: signs in (linking or creating the account) and starts a session; " +
    "browsers are redirected to `next`, or to /login?error=<code>",
  tag,
  auth: "public",
  params: providerParam,
  query: z.object({
    state: z.string().optional(),
    code: z.string().optional(),
    error: z.string().optional().describe("Set by the provider when the user refused"),
  }),
  response: z.object({ user: callerSchema }),
  errors: [403, 429],
});

/** /api/auth: sign-up, activation, login, logout, status and OAuth sign-in. */
export function authApi(deps: ResolvedDeps) {
  const app = new Hono<AppEnv>();

  app.get("/status", async (c) => {
    const user = c.var.user;
    return c.json({
      authenticated: user !== null,
      user,
      setupRequired: await setupNeeded(deps.sql),
      providers: Object.fromEntries([...deps.oauthProviders.keys()].map((id) => [id, true])),
    });
  });

  app.post(
    "/signup",
    async (c, next) => {
      await checkAuthRateLimit(c, deps);
      await next();
    },
    valid("json", signupSchema),
    async (c) => {
      await signup(actionContext(c, deps), c.req.valid("json"));
      return c.json({
        status: "pending_activation",
        message: "Check your email: an activation link was sent to the address given",
      }, 202);
    },
  );

  app.post(
    "/activate",
    async (c, next) => {
      await checkAuthRateLimit(c, deps);
      await next();
    },
    valid("json", activateSchema),
    async (c) => {
      const { token, password } = c.req.valid("json");
      const user = await activate(actionContext(c, deps), token, password);
      return c.json({ user });
    },
  );

  app.post(
    "/login",
    async (c, next) => {
      await checkAuthRateLimit(c, deps);
      await next();
    },
    valid("json", loginBody),
    async (c) => {
      const { login, password } = c.req.valid("json");
      const device = await readKnownDevice(c, deps.config, deps.secretKey);
      const user = await passwordLogin(actionContext(c, deps), { login, password, device });
      await startSession(c, deps, user);
      return c.json({ user });
    },
  );

  app.post("/logout", async (c) => {
    await endSession(c, deps);
    return c.json({ signedOut: true });
  });

  app.get("/:provider/status", (c) => {
    const provider = deps.oauthProviders.get(c.req.param("provider"));
    return c.json({ provider: c.req.param("provider"), enabled: provider !== undefined });
  });

  app.get("/:provider", async (c) => {
    const provider = deps.oauthProviders.get(c.req.param("provider"));
    if (!provider) {
      throw new HttpError(
        404,
        "provider_disabled",
        `Sign-in with ${c.req.param("provider")} is not enabled on this server`,
      );
    }
    await checkAuthRateLimit(c, deps);
    const pending: OAuthPending & { next: string } = {
      state: randomToken(20),
      codeVerifier: randomToken(32),
      nonce: randomToken(20),
      next: safeNext(c.req.query("next"), "/"),
    };
    setCookie(c, OAUTH_COOKIE(provider.id), btoa(JSON.stringify(pending)), {
      path: `/api/auth/${provider.id}`,
      httpOnly: true,
      sameSite: "Lax",
      secure: isHttps(c, deps.config),
      maxAge: 600,
    });
    return c.redirect(provider.authorizationUrl(pending).toString(), 302);
  });

  app.get("/:provider/callback", async (c) => {
    const provider = deps.oauthProviders.get(c.req.param("provider"));
    if (!provider) {
      throw new HttpError(
        404,
        "provider_disabled",
        `Sign-in with ${c.req.param("provider")} is not enabled on this server`,
      );
    }
    const wantsHtml = (c.req.header("accept") ?? "").includes("text/html");
    try {
      await checkAuthRateLimit(c, deps);
      const raw = getCookie(c, OAUTH_COOKIE(provider.id));
      // Single use: whatever happens next, this attempt's state is gone.
      deleteCookie(c, OAUTH_COOKIE(provider.id), {
        path: `/api/auth/${provider.id}`,
        secure: isHttps(c, deps.config),
      });
      const denied = c.req.query("error");
      if (denied) {
        throw new HttpError(400, "oauth_denied", `${provider.label} sign-in was cancelled or refused`);
      }
      const pending = parsePending(raw);
      if (!pending) {
        throw new HttpError(
          400,
          "oauth_state_missing",
          "The sign-in attempt expired or cookies are blocked; start again",
        );
      }
      const state = c.req.query("state") ?? "";
      if (!constantTimeEqualText(state, pending.state)) {
        throw new HttpError(
          400,
          "oauth_state_mismatch",
          "The sign-in answer does not match this browser's attempt; start again",
        );
      }
      const code = c.req.query("code");
      if (!code) {
        throw new HttpError(400, "oauth_code_missing", `${provider.label} did not return a sign-in code`);
      }
      let identity;
      try {
        identity = await provider.complete(code, pending);
      } catch (err) {
        if (err instanceof OAuthError) {
          c.var.log.warn("oauth sign-in failed", {
            provider: provider.id,
            reason: err.code,
            error: String(err.cause ?? ""),
          });
          throw new HttpError(400, err.code, err.message);
        }
        throw err;
      }
      const user = await oauthSignIn(actionContext(c, deps), identity);
      await startSession(c, deps, user);
      return wantsHtml ? c.redirect(pending.next, 303) : c.json({ user });
    } catch (err) {
      if (wantsHtml && err instanceof HttpError) {
        for (const [k, v] of Object.entries(err.options.headers ?? {})) c.header(k, v);
        return c.redirect(`/login?error=${encodeURIComponent(err.code)}`, 303);
      }
      throw err;
    }
  });

  return app;
}

function parsePending(raw: string | undefined): (OAuthPending & { next: string }) | null {
  if (!raw) return null;
  try {
    const v = JSON.parse(atob(raw));
    if (typeof v.state === "string" && typeof v.codeVerifier === "string" && typeof v.nonce === "string") {
      return {
        state: v.state,
        codeVerifier: v.codeVerifier,
        nonce: v.nonce,
        next: safeNext(v.next, "/"),
      };
    }
  } catch { /* a tampered cookie is treated as missing */ }
  return null;
}
