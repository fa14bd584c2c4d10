import {
  CodeChallengeMethod,
  OAuth2Client,
  OAuth2RequestError,
  UnexpectedErrorResponseBodyError,
  UnexpectedResponseError,
} from "arctic";
import { createRemoteJWKSet, jwtVerify } from "jose";
import { type Config, publicUrl } from "../config.ts";
import { type ExternalIdentity, OAuthError, type OAuthPending, type OAuthProvider } from "./oauth.ts";

/**
 * Google sign-in (OpenID Connect) with arctic's generic OAuth2 client, so the endpoints come
 * from the configuration (tests point them at a local oauth2-mock-server).
 *
 * Identity comes from the ID token, verified against the provider's JWKS with the configured
 * issuer, our client id as audience, its expiry and the nonce stored in this browser's cookie.
 * That proves the claims were issued by the provider for this sign-in attempt, without a
 * second request to a userinfo endpoint whose answer would carry no signature.
 */
export function googleProvider(config: Config): OAuthProvider | null {
  if (!config.GOOGLE_CLIENT_ID || !config.GOOGLE_CLIENT_SECRET) return null;
  const clientId = config.GOOGLE_CLIENT_ID;
  const redirectUri = config.GOOGLE_CALLBACK_URL ?? `${publicUrl(config)}/api/auth/google/callback`;
  const client = new OAuth2Client(clientId, config.GOOGLE_CLIENT_SECRET, redirectUri);
  const jwks = createRemoteJWKSet(new URL(config.GOOGLE_JWKS_URL));
  return {
    id: "google",
    label: "Google",
    authorizationUrl(pending: OAuthPending): URL {
      const url = client.createAuthorizationURLWithPKCE(
        config.GOOGLE_AUTH_URL,
        pending.state,
        CodeChallengeMethod.S256,
        pending.codeVerifier,
        ["openid", "email", "profile"],
      );
      url.searchParams.set("nonce", pending.nonce);
      return url;
    },
    async complete(code: string, pending: OAuthPending): Promise<ExternalIdentity> {
      let idToken: string;
      try {
        const tokens = await client.validateAuthorizationCode(
          config.GOOGLE_TOKEN_URL,
          code,
          pending.codeVerifier,
        );
        idToken = tokens.idToken();
      } catch (err) {
        // The provider answered 4xx: it refused the code (invalid_grant: expired, used, or
        // not issued for this PKCE verifier). Providers that do not speak RFC 6749 errors
        // exactly still answer 4xx.
        const status =
          err instanceof UnexpectedErrorResponseBodyError || err instanceof UnexpectedResponseError
            ? err.status
            : 0;
        if (err instanceof OAuth2RequestError || (status >= 400 && status < 500)) {
          throw new OAuthError(
            "oauth_code_rejected",
            "Google refused the sign-in code (expired or already used)",
            {
              cause: err,
            },
          );
        }
        throw new OAuthError("oauth_exchange_failed", "Could not complete the sign-in with Google", {
          cause: err,
        });
      }
      let claims: Record<string, unknown>;
      try {
        ({ payload: claims } = await jwtVerify(idToken, jwks, {
          issuer: config.GOOGLE_ISSUER,
          audience: clientId,
        }));
      } catch (err) {
        throw new OAuthError("oauth_token_invalid", "Google's answer did not verify", { cause: err });
      }
      if (claims.nonce !== pending.nonce) {
        throw new OAuthError("oauth_token_invalid", "Google's answer belongs to another sign-in attempt");
      }
      if (typeof claims.sub !== "string" || claims.sub === "") {
        throw new OAuthError("oauth_token_invalid", "Google's answer has no account id");
      }
      return {
        provider: "google",
        providerUserId: claims.sub,
        email: typeof claims.email === "string" ? claims.email : null,
        // Google sends a boolean; some OpenID providers send the string "true".
        emailVerified: claims.email_verified === true || claims.email_verified === "true",
        name: typeof claims.name === "string" ? claims.name : null,
      };
    },
  };
}
