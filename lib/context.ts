import type { Config } from "./config.ts";
import type { Sql } from "./db.ts";
import type { IslandAssets } from "./bundle.ts";
import type { Logger } from "./log.ts";

/** What createApp() needs from the outside world; tests build their own. */
export interface AppDeps {
  sql: Sql;
  config: Config;
  assets: IslandAssets;
  log: Logger;
  /** Identifies this server process (cross-process dispatch, logs). */
  serverId: string;
}

/** Hono environment: per-request variables set by the app's middleware. */
export interface AppEnv {
  Variables: {
    requestId: string;
    log: Logger;
  };
}
