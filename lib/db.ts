import postgres from "postgres";
import { join } from "node:path";
import type { Config } from "./config.ts";
import { type EmbeddedDatabase, startEmbeddedPostgres } from "./embedded_pg.ts";
import type { Logger } from "./log.ts";

/** The connection pool. */
export type Sql = postgres.Sql;
/**
 * What runs a query: the pool or an open transaction. Functions that may run inside a
 * caller's transaction take a Db; those that open a transaction themselves need the Sql.
 */
export type Db = postgres.Sql | postgres.TransactionSql;
/** A piece of SQL built with a tagged template, to interpolate into another query. */
export type Fragment = postgres.Fragment;
/** A value `sql.json()` accepts. */
export type Json = postgres.JSONValue;

/** An open connection pool, and the embedded server behind it when there is one. */
export interface Database {
  sql: Sql;
  url: string;
  embedded?: EmbeddedDatabase;
  close(): Promise<void>;
}

/**
 * postgres.js client with Vox's conventions: int8 as JS numbers (ids and counts stay far
 * below 2^53), snake_case columns read as camelCase, notices silenced.
 */
export function createSql(url: string, options: { max?: number; appName?: string } = {}): Sql {
  return postgres(url, {
    max: options.max ?? 10,
    onnotice: () => {},
    connection: { application_name: options.appName ?? "vox" },
    transform: { column: { from: postgres.toCamel } },
    types: {
      int8: {
        to: 20,
        from: [20],
        serialize: (v: number) => String(v),
        parse: (v: string) => Number(v),
      },
    },
  });
}

/**
 * Runs `fn` again (up to 3 times) when Postgres aborted it as a deadlock victim or a
 * serialization failure: both mean "nothing happened, try again".
 */
export async function retrying<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (attempt >= 3 || (code !== "40P01" && code !== "40001")) throw err;
      await new Promise((r) => setTimeout(r, 5 * attempt));
    }
  }
}

/** Opens DATABASE_URL, or starts the embedded server under VOX_DATA_DIR when it is unset. */
export async function openDatabase(config: Config, log: Logger): Promise<Database> {
  let embedded: EmbeddedDatabase | undefined;
  let url = config.DATABASE_URL;
  if (!url) {
    embedded = await startEmbeddedPostgres({ dataDir: join(config.VOX_DATA_DIR, "pg"), log });
    url = embedded.url;
  }
  const sql = createSql(url);
  return {
    sql,
    url,
    embedded,
    async close() {
      await sql.end({ timeout: 5 });
      await embedded?.stop();
    },
  };
}
