/**
 * vox_eval_agentd entry point.
 *
 *   deno task agent run --app A.yaml --suite S.yaml [--repeat N] [--report out.json]
 *   deno task agent validate [--app A.yaml] [--suite S.yaml]   (load and check, no browser)
 *   deno task agent [daemon] [--server URL --token TOKEN --region REGION …]   (agent/daemon.ts)
 *
 * `--app`/`-a` and `--suite`/`-s` take comma-separated files or folders and may repeat (every
 * application × scenario pair runs, like voice-agent-tester's matrix). Exit code 0 when every
 * run completed, 1 when a run failed (the partial report is still written), 2 on bad usage.
 * `validate` checks every file as `run` would before starting a browser (the formats of
 * `format.ts`, audio files present) and exits 0 when all are valid, 1 when one is not.
 */
import { parseArgs } from "node:util";
import { dirname, join, resolve } from "node:path";
import { ConfigError, expandPaths, loadConfig, type LoadedConfig } from "./config.ts";
import { runDaemon } from "./daemon.ts";
import { DAEMON_USAGE, daemonSettings, DaemonSettingsError } from "./daemon_settings.ts";
import { runMatrix } from "./job.ts";
import { buildReport, type Report } from "./report.ts";

const USAGE = `usage: deno task agent run --app <application.yaml> --suite <scenario.yaml>
         [--repeat N] [--report <file.json>] [--concurrency N] [--headless true|false]
         [--verbose] [--recordings <dir>] [--step-timeout <ms>]
       --app/-a and --suite/-s accept comma-separated files or folders (a matrix)
       deno task agent validate [--app <application.yaml>] [--suite <scenario.yaml>]`;

function fmt(v: number | null, unit = " ms"): string {
  return v == null ? "—" : `${v}${unit}`;
}

/** A human summary of a report. */
export function summaryText(report: Report): string {
  const m = report.metrics;
  const lines = [
    "",
    "Vox run summary",
    `  response latency   median ${fmt(m.response_latency.median)}  sd ${fmt(m.response_latency.sd)}  p90 ${
      fmt(m.response_latency.p90)
    }  n ${m.response_latency.n}`,
    `  interrupt latency  median ${fmt(m.interrupt_latency.median)}  sd ${fmt(m.interrupt_latency.sd)}  p90 ${
      fmt(m.interrupt_latency.p90)
    }  n ${m.interrupt_latency.n}`,
    `  noise reduction    ${fmt(m.noise_reduction, "")}${
      m.noise_reduction == null ? `  (${report.notes.noise_reduction})` : ""
    }`,
    `  network resilience ${fmt(m.network_resilience, "")}${
      m.network_resilience == null ? `  (${report.notes.network_resilience})` : ""
    }`,
    `  naturalness        ${fmt(m.naturalness, "")}`,
    `  turns: ${report.turns.length}, failed: ${report.turns.filter((t) => !t.ok).length}`,
  ];
  for (const t of report.turns.filter((t) => !t.ok)) {
    lines.push(`    ✗ ${t.kind} (run ${t.run}, ${t.file} step ${t.step}): ${t.note ?? "failed"}`);
  }
  for (const r of report.runs) if (r.recording) lines.push(`  recording: ${r.recording}`);
  for (const e of report.errors) {
    lines.push(
      `  ✗ ${e.file}${e.step ? ` step ${e.step}` : ""}${e.action ? ` (${e.action})` : ""}: ${e.message}`,
    );
  }
  lines.push(report.ok ? "  all runs completed" : "  the run failed");
  return lines.join("\n");
}

async function writeReport(path: string | undefined, report: Report) {
  if (!path) return;
  await Deno.mkdir(dirname(resolve(path)), { recursive: true });
  await Deno.writeTextFile(path, JSON.stringify(report, null, 2) + "\n");
  console.log(`  report: ${resolve(path)}`);
}

async function run(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        app: { type: "string", short: "a", multiple: true },
        applications: { type: "string", multiple: true },
        suite: { type: "string", short: "s", multiple: true },
        scenarios: { type: "string", multiple: true },
        repeat: { type: "string", default: "1" },
        report: { type: "string", short: "r" },
        concurrency: { type: "string", short: "c", default: "1" },
        headless: { type: "string", default: "true" },
        verbose: { type: "boolean", short: "v", default: false },
        recordings: { type: "string" },
        "step-timeout": { type: "string", default: "30000" },
        "application-tags": { type: "string" },
        "scenario-tags": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    });
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const v = parsed.values;
  if (v.help) {
    console.log(USAGE);
    return 0;
  }
  const appArgs = [...(v.app ?? []), ...(v.applications ?? [])];
  const suiteArgs = [...(v.suite ?? []), ...(v.scenarios ?? [])];
  if (appArgs.length === 0 || suiteArgs.length === 0) {
    console.error(`--app and --suite are required\n${USAGE}`);
    return 2;
  }
  const repeat = Number(v.repeat);
  const concurrency = Number(v.concurrency);
  if (!Number.isInteger(repeat) || repeat < 1 || !Number.isInteger(concurrency) || concurrency < 1) {
    console.error(`--repeat and --concurrency must be positive integers\n${USAGE}`);
    return 2;
  }
  const started = new Date();
  const reportPath = v.report;
  const outDir = v.recordings ??
    (reportPath ? join(dirname(resolve(reportPath)), "recordings") : undefined);
  let apps: LoadedConfig[];
  let suites: LoadedConfig[];
  try {
    apps = await Promise.all((await expandPaths(appArgs)).map((p) => loadConfig(p, "application")));
    suites = await Promise.all((await expandPaths(suiteArgs)).map((p) => loadConfig(p, "scenario")));
    const byTags = (list: LoadedConfig[], tags?: string) => {
      if (!tags) return list;
      const want = tags.split(",").map((t) => t.trim());
      return list.filter((c) => c.tags.some((t) => want.includes(t)));
    };
    apps = byTags(apps, v["application-tags"]);
    suites = byTags(suites, v["scenario-tags"]);
    if (apps.length === 0 || suites.length === 0) {
      throw new ConfigError("(tags)", "no config matches the tags");
    }
  } catch (err) {
    const e = err instanceof ConfigError
      ? { message: err.message, file: err.file, step: err.step ?? null, action: err.action ?? null }
      : { message: (err as Error).message, file: "(arguments)", step: null, action: null };
    const report = buildReport([], started, [e]);
    console.error(`✗ ${e.message}`);
    await writeReport(reportPath, report);
    return 1;
  }
  console.log(
    `Vox agent: ${apps.length} application(s) × ${suites.length} scenario(s) × ${repeat} repetition(s)`,
  );
  // Ctrl-C or SIGTERM stops the current step and still writes the partial report.
  const abort = new AbortController();
  const stop = () => {
    console.error("stopping: the current step is cancelled, the partial report follows");
    abort.abort();
  };
  const signals: Deno.Signal[] = Deno.build.os === "windows" ? ["SIGINT"] : ["SIGINT", "SIGTERM"];
  for (const sig of signals) Deno.addSignalListener(sig, stop);
  let report: Report;
  try {
    ({ report } = await runMatrix(apps, suites, {
      signal: abort.signal,
      repeat,
      concurrency,
      headless: v.headless !== "false",
      verbose: v.verbose,
      outDir,
      stepTimeoutMs: Number(v["step-timeout"]),
      onProgress: (line) => console.log(line),
    }));
  } catch (err) {
    // Runs never throw; what is left is the browser itself (missing binary, no display).
    const message = `cannot run the browser: ${(err as Error).message.split("\n")[0]}`;
    report = buildReport([], started, [{ message, file: "(browser)", step: null, action: null }]);
  }
  for (const sig of signals) Deno.removeSignalListener(sig, stop);
  console.log(summaryText(report));
  await writeReport(reportPath, report);
  return report.ok ? 0 : 1;
}

/** `validate`: loads every file as `run` would, prints a verdict per file, never starts a browser. */
async function validate(args: string[]): Promise<number> {
  let v;
  try {
    v = parseArgs({
      args,
      options: {
        app: { type: "string", short: "a", multiple: true },
        applications: { type: "string", multiple: true },
        suite: { type: "string", short: "s", multiple: true },
        scenarios: { type: "string", multiple: true },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }).values;
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (v.help) {
    console.log(USAGE);
    return 0;
  }
  const groups = [
    ["application", [...(v.app ?? []), ...(v.applications ?? [])]],
    ["scenario", [...(v.suite ?? []), ...(v.scenarios ?? [])]],
  ] as const;
  if (groups.every(([, paths]) => paths.length === 0)) {
    console.error(`validate needs --app or --suite\n${USAGE}`);
    return 2;
  }
  let invalid = 0;
  for (const [kind, paths] of groups) {
    if (paths.length === 0) continue;
    let files: string[];
    try {
      files = await expandPaths(paths);
    } catch (err) {
      console.error(`✗ ${(err as Error).message}`);
      invalid++;
      continue;
    }
    for (const file of files) {
      try {
        await loadConfig(file, kind);
        console.log(`ok ${kind} ${file}`);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        console.error(`✗ ${err.message}`);
        invalid++;
      }
    }
  }
  return invalid === 0 ? 0 : 1;
}

async function daemon(args: string[]): Promise<number> {
  let flags;
  try {
    flags = parseArgs({
      args,
      options: {
        server: { type: "string" },
        token: { type: "string" },
        region: { type: "string" },
        name: { type: "string" },
        concurrency: { type: "string", short: "c" },
        grace: { type: "string" },
        assets: { type: "string" },
        "work-dir": { type: "string" },
        headless: { type: "string" },
        "step-timeout": { type: "string" },
        verbose: { type: "boolean", short: "v" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
    }).values;
  } catch (err) {
    console.error(`${(err as Error).message}\n${DAEMON_USAGE}`);
    return 2;
  }
  if (flags.help) {
    console.log(DAEMON_USAGE);
    return 0;
  }
  let settings;
  try {
    settings = daemonSettings(flags);
  } catch (err) {
    if (!(err instanceof DaemonSettingsError)) throw err;
    console.error(`${err.message}\n${DAEMON_USAGE}`);
    return 2;
  }
  return await runDaemon(settings);
}

if (import.meta.main) {
  const [command, ...rest] = Deno.args;
  if (command === "run") Deno.exit(await run(rest));
  if (command === "validate") Deno.exit(await validate(rest));
  if (command === "help" || command === "--help" || command === "-h") {
    console.log(`${USAGE}\n${DAEMON_USAGE}`);
    Deno.exit(0);
  }
  // No subcommand (or `daemon`): vox_eval_agentd connects to its server and runs pushed jobs.
  if (command === undefined || command === "daemon") Deno.exit(await daemon(rest));
  if (command.startsWith("-")) Deno.exit(await daemon(Deno.args));
  console.error(`unknown command ${command}\n${USAGE}\n${DAEMON_USAGE}`);
  Deno.exit(2);
}
