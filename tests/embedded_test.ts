import assert from "node:assert/strict";
import { createSql } from "../lib/db.ts";
import { startEmbeddedPostgres } from "../lib/embedded_pg.ts";
import { createLogger } from "../lib/log.ts";
import { postgresPids } from "./_procs.ts";

const log = createLogger({ test: "embedded" });

// /tmp is reachable by the postgres user the server runs as when tests run as root.
const root = await Deno.makeTempDir({ prefix: "vox-embedded-" });
await Deno.chmod(root, 0o755);
const dataDir = `${root}/pg`;

async function query(url: string, text: string) {
  const sql = createSql(url, { max: 1 });
  try {
    return await sql.unsafe(text);
  } finally {
    await sql.end();
  }
}

Deno.test("embedded PostgreSQL initialises, keeps data across a clean restart, and stops", async () => {
  const first = await startEmbeddedPostgres({ dataDir, log });
  await query(first.url, "CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)");
  await first.stop();
  assert.deepEqual(postgresPids(dataDir), []);

  const second = await startEmbeddedPostgres({ dataDir, log });
  try {
    const rows = await query(second.url, "SELECT v FROM kept");
    assert.equal(rows[0].v, 42);
  } finally {
    await second.stop();
  }
});

Deno.test("embedded PostgreSQL recovers after its owner was killed with -9", async () => {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "tests/_embedded_child.ts", dataDir],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("URL ")) {
    const { value, done } = await reader.read();
    if (done) break;
    out += value;
  }
  assert.match(out, /URL postgres:/);
  child.kill("SIGKILL");
  await child.status;
  reader.releaseLock();
  await child.stdout.cancel().catch(() => {});
  // The orphaned server still holds the directory, as after a real crash of Vox.
  assert.equal(postgresPids(dataDir).length > 0, true);

  const again = await startEmbeddedPostgres({ dataDir, log });
  try {
    const rows = await query(again.url, "SELECT v FROM kept");
    assert.equal(rows[0].v, 42);
  } finally {
    await again.stop();
  }
});

Deno.test("a stale postmaster.pid naming an unrelated live process is cleared", async () => {
  // Our own pid is alive but is not a postgres serving this directory.
  await Deno.writeTextFile(`${dataDir}/postmaster.pid`, `${Deno.pid}\n${dataDir}\n0\n5432\n`);
  const db = await startEmbeddedPostgres({ dataDir, log });
  try {
    const rows = await query(db.url, "SELECT count(*)::int AS n FROM kept");
    assert.equal(rows[0].n, 1);
  } finally {
    await db.stop();
  }
  await Deno.remove(root, { recursive: true });
});
