// `deno task verify`: re-derives every board result from its stored report and recordings and
// checks the published figures against a computation from scratch (lib/verify.ts). Prints one
// line per mismatch and exits 1 when there is any. `--all` checks every stored result, not only
// the board's; `--json` prints the whole report.
import { artifactStoreFromConfig } from "../lib/artifact_store.ts";
import { loadConfig } from "../lib/config.ts";
import { openDatabase } from "../lib/db.ts";
import { log } from "../lib/log.ts";
import { TOLERANCE_MS, verifyBoards } from "../lib/verify.ts";

const config = loadConfig();
const db = await openDatabase(config, log);
let failed = false;
try {
  const report = await verifyBoards(db.sql, artifactStoreFromConfig(config), {
    all: Deno.args.includes("--all"),
  });
  if (Deno.args.includes("--json")) console.log(JSON.stringify(report, null, 2));
  else {
    console.log(
      `checked ${report.results} results, ${report.recordings} recordings, ${report.turnsRederived} turns ` +
        `re-derived (largest difference ${report.maxTurnDiffMs ?? "—"} ms, tolerance ${TOLERANCE_MS} ms); ` +
        `published figures ${report.figuresAgree ? "agree" : "DISAGREE"}`,
    );
    for (const m of report.mismatches) {
      console.log(`MISMATCH result ${m.resultId} (job ${m.jobId}): ${m.what}`);
    }
    console.log(report.mismatches.length === 0 ? "0 mismatches" : `${report.mismatches.length} mismatches`);
  }
  failed = report.mismatches.length > 0;
} finally {
  await db.close();
}
if (failed) Deno.exit(1);
