// Test helper process: starts an embedded PostgreSQL in Deno.args[0], prints its URL, waits.
import { startEmbeddedPostgres } from "../lib/embedded_pg.ts";
import { createLogger } from "../lib/log.ts";

const db = await startEmbeddedPostgres({ dataDir: Deno.args[0], log: createLogger() });
console.log(`URL ${db.url}`);
await new Promise(() => {});
