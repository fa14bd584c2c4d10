// `deno task db:reset --yes`: drops every Vox table and data, then migrates and seeds afresh.
import { loadConfig } from "../lib/config.ts";
import { openDatabase } from "../lib/db.ts";
import { log } from "../lib/log.ts";
import { migrate } from "../lib/migrate.ts";
import { seed } from "../lib/seed.ts";

if (!Deno.args.includes("--yes")) {
  console.error("This deletes all data in the Vox database. Run again with --yes to proceed.");
  Deno.exit(2);
}
const db = await openDatabase(loadConfig(), log);
try {
  await db.sql.unsafe("DROP SCHEMA public CASCADE; CREATE SCHEMA public;");
  await migrate(db.sql, { log });
  await seed(db.sql);
  console.log("database reset");
} finally {
  await db.close();
}
