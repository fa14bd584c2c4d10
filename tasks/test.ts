// `deno task test [files…]`: runs the suite against DATABASE_URL, or, when it is unset,
// against an embedded PostgreSQL kept in .vox/test-pg. Each run's databases are dropped after.
import { startEmbeddedPostgres } from "../lib/embedded_pg.ts";
import { createLogger } from "../lib/log.ts";
import { dropRunDatabases } from "../tests/_db.ts";

const env: Record<string, string> = { ...Deno.env.toObject() };
const runId = Date.now().toString(36);
env.VOX_TEST_RUN = runId;
let embedded: Awaited<ReturnType<typeof startEmbeddedPostgres>> | undefined;
if (!env.DATABASE_URL) {
  console.log("DATABASE_URL is not set: starting an embedded PostgreSQL for the tests");
  embedded = await startEmbeddedPostgres({ dataDir: ".vox/test-pg", log: createLogger() });
  env.DATABASE_URL = embedded.url;
}

const files = Deno.args.length > 0 ? Deno.args : ["tests/"];
const child = new Deno.Command(Deno.execPath(), {
  args: ["test", "-A", "--unstable-cron", ...files],
  env,
  stdin: "null",
}).spawn();
const removeSignal = () => {
  try {
    child.kill("SIGINT");
  } catch { /* already gone */ }
};
Deno.addSignalListener("SIGINT", removeSignal);
const status = await child.status;
Deno.removeSignalListener("SIGINT", removeSignal);

await dropRunDatabases(env.DATABASE_URL, runId).catch((err) =>
  console.error("could not drop test databases:", err)
);
await embedded?.stop();
Deno.exit(status.code);
