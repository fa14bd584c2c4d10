import { join } from "node:path";
import type { Db, Sql } from "./db.ts";
import type { Logger } from "./log.ts";

export const MIGRATIONS_DIR = new URL("../migrations/", import.meta.url).pathname;
// Arbitrary constant shared by every Vox process: the advisory lock serialising migrators.
const MIGRATION_LOCK = 7_346_021_001;

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

/** Refusal to touch a database whose history does not match the migration files. */
export class MigrationError extends Error {
  override name = "MigrationError";
}

/** Reads `NNNNN_name.sql` files in order; numbering must start at 1 and have no gaps. */
export async function loadMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const files: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isFile || !entry.name.endsWith(".sql")) continue;
    if (!/^\d{5}_[a-z0-9_]+\.sql$/.test(entry.name)) {
      throw new MigrationError(`Migration file name ${entry.name} is not NNNNN_name.sql`);
    }
    files.push(entry.name);
  }
  files.sort();
  const migrations: Migration[] = [];
  for (const [i, file] of files.entries()) {
    const version = Number(file.slice(0, 5));
    if (version !== i + 1) {
      throw new MigrationError(`Migration ${file} breaks the sequence: expected number ${i + 1}`);
    }
    const text = await Deno.readTextFile(join(dir, file));
    migrations.push({ version, name: file, sql: text, checksum: await sha256Hex(text) });
  }
  return migrations;
}

/**
 * Applies pending migrations, each in its own transaction, and records their checksums.
 * Every step holds a transaction-scoped advisory lock, so concurrent migrators queue up
 * and the later ones find the work done. Throws MigrationError if an applied migration was
 * edited or the database knows a migration these files do not.
 */
export async function migrate(
  sql: Sql,
  opts: { dir?: string; log?: Logger } = {},
): Promise<{ applied: string[] }> {
  const migrations = await loadMigrations(opts.dir);
  const applied: string[] = [];
  await sql.begin(async (tx) => {
    await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
    await tx`
      CREATE TABLE IF NOT EXISTS schema_migrations (
        version     integer PRIMARY KEY,
        name        text NOT NULL,
        checksum    text NOT NULL,
        applied_at  timestamptz NOT NULL DEFAULT now()
      )`;
    await verifyHistory(tx, migrations);
  });
  for (const m of migrations) {
    const done = await sql.begin(async (tx) => {
      await tx`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK})`;
      const [row] = await tx`SELECT checksum FROM schema_migrations WHERE version = ${m.version}`;
      if (row) return false;
      await tx.unsafe(m.sql);
      await tx`
        INSERT INTO schema_migrations (version, name, checksum)
        VALUES (${m.version}, ${m.name}, ${m.checksum})`;
      return true;
    });
    if (done) {
      applied.push(m.name);
      opts.log?.info("migration applied", { migration: m.name });
    }
  }
  return { applied };
}

/** True when every migration file is applied unchanged and nothing else is. */
export async function migrationsCurrent(sql: Sql, dir?: string): Promise<boolean> {
  const migrations = await loadMigrations(dir);
  const [{ present }] = await sql`SELECT to_regclass('schema_migrations') IS NOT NULL AS present`;
  if (!present) return migrations.length === 0;
  const rows = await sql`SELECT version, checksum FROM schema_migrations ORDER BY version`;
  return rows.length === migrations.length &&
    rows.every((r, i) => r.version === migrations[i].version && r.checksum === migrations[i].checksum);
}

async function verifyHistory(sql: Db, migrations: Migration[]): Promise<void> {
  const rows = await sql`SELECT version, name, checksum FROM schema_migrations ORDER BY version`;
  for (const row of rows) {
    const file = migrations.find((m) => m.version === row.version);
    if (!file) {
      throw new MigrationError(
        `Database has migration ${row.name}, which this version of Vox does not have; refusing to start`,
      );
    }
    if (file.checksum !== row.checksum) {
      throw new MigrationError(
        `Migration ${file.name} was edited after it was applied (checksum differs); ` +
          `add a new migration instead of changing an applied one`,
      );
    }
  }
}

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}
