// What every external sign-in provider implements. The providers themselves live in their
// own modules (oauth_google.ts) and are listed in oauth_providers.ts, so this module depends on
// none of them; linking a provider's identity to a Vox account is in oauth_accounts.ts.

/** An identity an OAuth provider vouched for. */
export interface ExternalIdentity {
  provider: string;
  providerUserId: string;
  email: string | null;
  emailVerified: boolean;
  name: string | null;
}

/** What a sign-in start stores in a short-lived HttpOnly cookie until the provider calls back. */
export interface OAuthPending {
  state: string;
  codeVerifier: string;
  nonce: string;
}

/**
 * An external sign-in provider (authorization code flow with state and PKCE). Google is the
 * only one today; another provider implements this and is added to oauthProviders() (oauth_providers.ts).
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
