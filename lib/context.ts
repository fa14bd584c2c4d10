import type { Context } from "hono";
import type { ArtifactStore } from "./artifact_store.ts";
import type { Config } from "./config.ts";
import type { Orchestrator } from "./orchestrator.ts";
import type { Sql } from "./db.ts";
import type { IslandAssets } from "./islands/bundle.ts";
import type { AuthUser } from "./roles.ts";
import type { Logger } from "./log.ts";
import type { Mailer } from "./mailer.ts";
import type { OAuthProvider } from "./auth/oauth.ts";

/** What createApp() needs from the outside world; tests build their own. */
export interface AppDeps {
  sql: Sql;
  config: Config;
  assets: IslandAssets;
  log: Logger;
  /** Identifies this server process (cross-process dispatch, logs). */
  serverId: string;
  /** AES-256-GCM key for secrets that must be read back (lib/secrets.ts). */
  secretKey: CryptoKey;
  /**
   * Resolves the caller of a request (session cookie or API key). The identity module
   * provides the real one; tests of other areas may pass their own.
   */
  authenticate?: (c: Context<AppEnv>) => Promise<AuthUser | null>;
  /** Outgoing mail; default from the config (SMTP_URL, else the server log). */
  mailer?: Mailer;
  /** Sign-in providers by id; default from the config (Google when GOOGLE_CLIENT_ID is set). */
  oauthProviders?: Map<string, OAuthProvider>;
  /**
   * This process's agent gateway, dispatcher and live-event hub (lib/orchestrator.ts). Without
   * it the agent WebSocket and the live streams answer 503; everything else works.
   */
  orchestrator?: Orchestrator;
  /** Where artifact bytes go; default from the config (VOX_ARTIFACT_STORE). */
  artifactStore?: ArtifactStore;
}

/** AppDeps after createApp() filled in the defaults. */
export type ResolvedDeps =
  & AppDeps
  & Required<Pick<AppDeps, "authenticate" | "mailer" | "oauthProviders" | "artifactStore">>;

/** Hono environment: per-request variables set by the app's middleware. */
export interface AppEnv {
  Variables: {
    requestId: string;
    log: Logger;
    /** Set by the auth middleware; null for anonymous requests. */
    user: AuthUser | null;
  };
}
