import type { Config } from "../config.ts";
import type { OAuthProvider } from "./oauth.ts";
import { googleProvider } from "./oauth_google.ts";

/** The sign-in providers the configuration enables, by id. */
export function oauthProviders(config: Config): Map<string, OAuthProvider> {
  const providers = new Map<string, OAuthProvider>();
  const google = googleProvider(config);
  if (google) providers.set(google.id, google);
  return providers;
}
