import assert from "node:assert/strict";
import { join } from "node:path";
import { createSql } from "../lib/db.ts";
import {
  loadMigrations,
  migrate,
  MigrationError,
  MIGRATIONS_DIR,
  migrationsCurrent,
} from "../lib/migrate.ts";
import { seed, SEEDED_PROVIDERS } from "../lib/seed.ts";
import { createTestDatabase } from "./_db.ts";

async function copyMigrations(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "vox-migrations-" });
  for await (const e of Deno.readDir(MIGRATIONS_DIR)) {
    await Deno.copyFile(join(MIGRATIONS_DIR, e.name), join(dir, e.name));
  }
  return dir;
}

Deno.test("migrate() applies every migration to a fresh database, then is a no-op", async () => {
  const db = await createTestDatabase({ empty: true });
  try {
    const files = await loadMigrations();
    assert.equal(await migrationsCurrent(db.sql), false);
    const first = await migrate(db.sql);
    assert.deepEqual(first.applied, files.map((f) => f.name));
    assert.equal(await migrationsCurrent(db.sql), true);
    const second = await migrate(db.sql);
    assert.deepEqual(second.applied, []);
    const rows = await db.sql`SELECT version, checksum FROM schema_migrations ORDER BY version`;
    assert.deepEqual(rows.map((r) => r.checksum), files.map((f) => f.checksum));
  } finally {
    await db.close();
  }
});

Deno.test("migrate() refuses a database whose applied migration was edited", async () => {
  const db = await createTestDatabase({ empty: true });
  const dir = await copyMigrations();
  try {
    await migrate(db.sql, { dir });
    const file = join(dir, "00001_init.sql");
    await Deno.writeTextFile(file, (await Deno.readTextFile(file)) + "\n-- edited\n");
    await assert.rejects(
      () => migrate(db.sql, { dir }),
      (err: unknown) => err instanceof MigrationError && /00001_init\.sql was edited/.test(err.message),
    );
    assert.equal(await migrationsCurrent(db.sql, dir), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await db.close();
  }
});

Deno.test("migrate() refuses a database that has a migration the code does not know", async () => {
  const db = await createTestDatabase({ empty: true });
  const dir = await copyMigrations();
  try {
    await Deno.writeTextFile(join(dir, "00099_future.sql"), "SELECT 1;");
    await assert.rejects(() => migrate(db.sql, { dir }), /breaks the sequence/);
    await Deno.remove(join(dir, "00099_future.sql"));
    const extra = join(dir, `${String((await loadMigrations(dir)).length + 1).padStart(5, "0")}_extra.sql`);
    await Deno.writeTextFile(extra, "CREATE TABLE extra_thing (id int);");
    await migrate(db.sql, { dir });
    await Deno.remove(extra);
    await assert.rejects(() => migrate(db.sql, { dir }), /does not have; refusing to start/);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await db.close();
  }
});

Deno.test("a failing migration leaves nothing half-applied", async () => {
  const db = await createTestDatabase({ empty: true });
  const dir = await copyMigrations();
  try {
    await migrate(db.sql, { dir });
    const next = join(dir, `${String((await loadMigrations(dir)).length + 1).padStart(5, "0")}_broken.sql`);
    await Deno.writeTextFile(next, "CREATE TABLE half_done (id int);\nSELECT no_such_function();");
    await assert.rejects(() => migrate(db.sql, { dir }));
    const [{ present }] = await db.sql`SELECT to_regclass('half_done') IS NOT NULL AS present`;
    assert.equal(present, false);
    const [{ count }] = await db.sql`SELECT count(*) FROM schema_migrations WHERE name LIKE '%broken%'`;
    assert.equal(count, 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
    await db.close();
  }
});

Deno.test("two migrators starting at once apply each migration exactly once", async () => {
  const db = await createTestDatabase({ empty: true });
  const a = createSql(db.url, { max: 2 });
  const b = createSql(db.url, { max: 2 });
  try {
    const [ra, rb] = await Promise.all([migrate(a), migrate(b)]);
    const files = await loadMigrations();
    assert.deepEqual([...ra.applied, ...rb.applied].sort(), files.map((f) => f.name).sort());
    const [{ count }] = await db.sql`SELECT count(*) FROM schema_migrations`;
    assert.equal(count, files.length);
  } finally {
    await a.end();
    await b.end();
    await db.close();
  }
});

Deno.test("seed() is idempotent and never changes existing rows", async () => {
  const db = await createTestDatabase();
  try {
    await db.sql`UPDATE plan_limits SET max_projects = 7 WHERE owner_kind = 'basic'`;
    await seed(db.sql);
    await seed(db.sql);
    const providers = await db.sql`SELECT id, name, sku FROM providers ORDER BY sku`;
    assert.deepEqual(
      providers.map((p) => ({ id: p.id, name: p.name, sku: p.sku })),
      SEEDED_PROVIDERS.map((p) => ({ id: p.id, name: p.name, sku: p.sku })),
    );
    const [basic] = await db.sql`SELECT max_projects FROM plan_limits WHERE owner_kind = 'basic'`;
    assert.equal(basic.maxProjects, 7);
    const [{ count }] = await db.sql`SELECT count(*) FROM pricing_discounts`;
    assert.equal(count, 4);
  } finally {
    await db.close();
  }
});

Deno.test("seeded pricing reproduces SPEC §3: six org seats cost 3060 cents", async () => {
  const db = await createTestDatabase();
  try {
    const [{ total }] = await db.sql`
      SELECT (6 * p.unit_price_cents * (10000 - d.discount_bps) / 10000) AS total
      FROM pricing_config p, pricing_discounts d
      WHERE p.plan = 'organization' AND 6 BETWEEN d.min_seats AND coalesce(d.max_seats, 2147483647)`;
    assert.equal(total, 3060);
  } finally {
    await db.close();
  }
});

Deno.test("provider ids are 12 random characters and can never be changed", async () => {
  const db = await createTestDatabase();
  try {
    const [p] = await db.sql`INSERT INTO providers (name, sku) VALUES ('Example RTC', 1) RETURNING id`;
    assert.match(p.id, /^[0-9a-z]{12}$/);
    await assert.rejects(
      () => db.sql`UPDATE providers SET id = 'aaaaaaaaaaaa' WHERE id = ${p.id}`,
      /id is immutable/,
    );
    await db.sql`UPDATE providers SET name = 'Example RTC Engine' WHERE id = ${p.id}`;
  } finally {
    await db.close();
  }
});

Deno.test("schema constraints reject bad enumerations and ownership", async () => {
  const db = await createTestDatabase();
  try {
    await assert.rejects(
      () => db.sql`INSERT INTO users (username, email, role) VALUES ('bob', 'bob@example.com', 'superuser')`,
      /users_role_check/,
    );
    await assert.rejects(
      () => db.sql`INSERT INTO projects (name) VALUES ('orphan')`,
      /projects_check/,
    );
    await assert.rejects(
      () => db.sql`INSERT INTO providers (name, sku) VALUES ('Odd', 5)`,
      /providers_sku_check/,
    );
  } finally {
    await db.close();
  }
});
