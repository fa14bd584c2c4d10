// `deno task db:migrate`: applies pending migrations and the seed, then exits.
import { loadConfig } from "../lib/config.ts";
import { openDatabase } from "../lib/db.ts";
import { log } from "../lib/log.ts";
import { migrate } from "../lib/migrate.ts";
import { seed } from "../lib/seed.ts";

const db = await openDatabase(loadConfig(), log);
try {
  const { applied } = await migrate(db.sql, { log });
  await seed(db.sql);
  console.log(applied.length ? `applied: ${applied.join(", ")}` : "database is up to date");
} finally {
  await db.close();
}
