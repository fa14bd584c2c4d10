// Test databases: one template migrated and seeded per migration set, cloned per test file
// (or per test), with the settings tests want by default.
import { createSql, type Sql } from "../lib/db.ts";
import { loadMigrations, migrate } from "../lib/migrate.ts";
import { seed } from "../lib/seed.ts";

/** A database of its own; `await using` or close() drops it. */
export interface TestDb extends AsyncDisposable {
  sql: Sql;
  url: string;
  name: string;
  close(): Promise<void>;
}

export interface TestDbOptions {
  /** An empty database, not even migrated (for the migration tests). */
  empty?: boolean;
  /**
   * "relaxed" (the default): the general and auth rate limits raised out of reach, since every
   * in-process request comes from one address and a file makes hundreds. "seeded": the limits
   * the seed ships, for the tests of rate limiting itself.
   */
  rateLimits?: "relaxed" | "seeded";
}

/** A rate limit no test reaches (the value of both limits in a "relaxed" database). */
export const RELAXED_LIMIT = { max: 1_000_000, windowSeconds: 900 };

const TEMPLATE_LOCK = 7_346_021_002;
// The test runner (tasks/test.ts) names the run's databases, so it can drop them all afterwards.
const RUN_PREFIX = Deno.env.get("VOX_TEST_DB_PREFIX") ?? `vox_t_${Date.now().toString(36)}_`;

/** The server URL tests run against (tasks/test.ts sets it when the caller did not). */
export function adminUrl(): string {
  const url = Deno.env.get("DATABASE_URL");
  if (!url) throw new Error("DATABASE_URL is not set: run the tests with `deno task test`");
  return url;
}

/** The URL of database `name` on the test server. */
export function databaseUrl(name: string, base = adminUrl()): string {
  const u = new URL(base);
  u.pathname = `/${name}`;
  return u.toString();
}

/**
 * A fresh database for a test file or a test: a clone of the migrated, seeded template with
 * relaxed rate limits unless asked otherwise, or an empty database with `{ empty: true }`.
 */
export async function createTestDatabase(opts: TestDbOptions = {}): Promise<TestDb> {
  // Test files run in parallel as workers of one process: the pid alone does not tell them apart.
  const name = `${RUN_PREFIX}${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`;
  const admin = createSql(adminUrl(), { max: 1 });
  try {
    if (opts.empty) {
      await admin.unsafe(`CREATE DATABASE "${name}"`);
    } else {
      const template = await ensureTemplate(admin);
      await admin.unsafe(`CREATE DATABASE "${name}" TEMPLATE "${template}"`);
    }
  } finally {
    await admin.end();
  }
  const url = databaseUrl(name);
  const sql = createSql(url, { max: 5 });
  if (!opts.empty && (opts.rateLimits ?? "relaxed") === "relaxed") {
    await setSetting(sql, "rate_limit.general", RELAXED_LIMIT);
    await setSetting(sql, "rate_limit.auth", RELAXED_LIMIT);
  }
  const close = async () => {
    await sql.end({ timeout: 5 });
    await dropDatabase(name);
  };
  return { sql, url, name, close, [Symbol.asyncDispose]: close };
}

/** Sets a system_config value in a test database (a rate limit, a heartbeat timeout…). */
export async function setSetting(sql: Sql, key: string, value: unknown): Promise<void> {
  await sql`
    INSERT INTO system_config (key, value) VALUES (${key}, ${sql.json(value as never)})
    ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`;
}

/** Drops one database, disconnecting anyone still on it. */
export async function dropDatabase(name: string): Promise<void> {
  const admin = createSql(adminUrl(), { max: 1 });
  try {
    await admin.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

// The template's name carries a hash of the migrations, so editing them makes a new one.
async function ensureTemplate(admin: Sql): Promise<string> {
  const migrations = await loadMigrations();
  const digest = new Uint8Array(
    await crypto.subtle.digest(
      "SHA-256",
      new TextEncoder().encode(migrations.map((m) => m.checksum).join(",") + (await seedSource())),
    ),
  );
  const name = `vox_tpl_${Array.from(digest.slice(0, 6), (b) => b.toString(16).padStart(2, "0")).join("")}`;
  const exists = async () => (await admin`SELECT 1 FROM pg_database WHERE datname = ${name}`).length > 0;
  if (await exists()) return name;
  // Session-level lock on the admin connection: one process builds, others wait then reuse.
  await admin`SELECT pg_advisory_lock(${TEMPLATE_LOCK})`;
  try {
    if (await exists()) return name;
    const building = `${name}_building`;
    await admin.unsafe(`DROP DATABASE IF EXISTS "${building}" WITH (FORCE)`);
    await admin.unsafe(`CREATE DATABASE "${building}"`);
    const sql = createSql(databaseUrl(building), { max: 1 });
    try {
      await migrate(sql);
      await seed(sql);
    } finally {
      await sql.end();
    }
    await admin.unsafe(`ALTER DATABASE "${building}" RENAME TO "${name}"`);
    return name;
  } finally {
    await admin`SELECT pg_advisory_unlock(${TEMPLATE_LOCK})`;
  }
}

// The seed is part of the template, so its source is part of the template's name.
function seedSource(): Promise<string> {
  return Deno.readTextFile(new URL("../lib/seed.ts", import.meta.url));
}

/** `deno task verify` (tasks/verify.ts) against the database at `url`: exit code, stdout then stderr. */
export async function verifyTask(url: string): Promise<{ code: number; text: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "tasks/verify.ts"],
    env: { DATABASE_URL: url, VOX_SECRET_KEY: "0".repeat(64), LOG_LEVEL: "error" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, text: dec.decode(out.stdout) + dec.decode(out.stderr) };
}
