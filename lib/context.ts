import type { Context } from "hono";
import type { Config } from "./config.ts";
import type { Orchestrator } from "./dispatch.ts";
import type { Sql } from "./db.ts";
import type { IslandAssets } from "./bundle.ts";
import type { AuthUser } from "./guards.ts";
import type { Logger } from "./log.ts";

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
  /**
   * This process's agent gateway, dispatcher and live-event hub (lib/dispatch.ts). Without
   * it the agent WebSocket and the live streams answer 503; everything else works.
   */
  orchestrator?: Orchestrator;
}

/** Hono environment: per-request variables set by the app's middleware. */
export interface AppEnv {
  Variables: {
    requestId: string;
    log: Logger;
    /** Set by the auth middleware; null for anonymous requests. */
    user: AuthUser | null;
  };
}
