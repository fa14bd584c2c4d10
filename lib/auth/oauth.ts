import type { Config } from "../config.ts";
import type { ExternalIdentity } from "../users.ts";
import { googleProvider } from "./oauth_google.ts";

/** What a sign-in start stores in a short-lived HttpOnly cookie until the provider calls back. */
export interface OAuthPending {
  state: string;
  codeVerifier: string;
  nonce: string;
}

/**
 * An external sign-in provider (authorization code flow with state and PKCE). Google is the
 * only one today; another provider implements this and is added to oauthProviders().
 */
export interface OAuthProvider {
  /** Path segment and oauth_accounts.provider value, e.g. "google". */
  readonly id: string;
  readonly label: string;
  /** The provider's authorization URL for one sign-in attempt. */
  authorizationUrl(pending: OAuthPending): URL;
  /**
   * Exchanges the code the provider returned and proves who the user is. Throws
   * OAuthError when the provider refuses the code or its answer does not verify.
   */
  complete(code: string, pending: OAuthPending): Promise<ExternalIdentity>;
}

/** A sign-in the provider refused or whose answer failed verification. */
export class OAuthError extends Error {
  override name = "OAuthError";
  constructor(readonly code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The providers the configuration enables, by id. */
export function oauthProviders(config: Config): Map<string, OAuthProvider> {
  const providers = new Map<string, OAuthProvider>();
  const google = googleProvider(config);
  if (google) providers.set(google.id, google);
  return providers;
}
