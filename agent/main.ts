/**
 * vox_eval_agentd entry point.
 *
 *   deno task agent run --app A.yaml --suite S.yaml [--repeat N] [--report out.json|out.csv] …
 *   deno task agent run … --dry-run   (every pair loaded and checked as a run needs it, no browser)
 *   deno task agent validate [--app A.yaml] [--suite S.yaml]   (each file's format, no browser)
 *   deno task agent [daemon] [--server URL --token TOKEN --region REGION …]   (agent/daemon.ts)
 *
 * `--app`/`-a` and `--suite`/`-s` take comma-separated files or folders and may repeat (every
 * application × scenario pair runs, like voice-agent-tester's matrix). Exit code 0 when every
 * run completed, 1 when a run failed (the partial report is still written), 2 on bad usage.
 * `validate` checks every file's format as the server does (`format.ts`, audio files present;
 * url `{{params}}` left unfilled) and exits 0 when all are valid, 1 when one is not. The
 * voice-agent-tester flags (--params, --retries, tags, CSV reports …) are in docs/agent.md.
 */
import { parseArgs } from "node:util";
import { dirname, extname, join, resolve } from "node:path";
import { toBase64 } from "./audio.ts";
import { ConfigError, expandPaths, loadConfig, type LoadedConfig, type LoadOptions } from "./config.ts";
import { reportCsv } from "./csv_report.ts";
import { parseParams } from "./format.ts";
import { runDaemon } from "./daemon.ts";
import { DAEMON_USAGE, daemonSettings, DaemonSettingsError } from "./daemon_settings.ts";
import { type EgressPolicy, parseAllowList } from "./egress.ts";
import { runMatrix } from "./job.ts";
import { buildReport, type Report } from "./report.ts";
import { loadReplay, ReplayError, type ReplayInfo } from "./replay.ts";
import {
  prepareSpeech,
  type ReplayAudio,
  speechArtifactName,
  SpeechError,
  speechRecords,
  type SpokenAudio,
} from "./voices.ts";

const USAGE = `usage: deno task agent run --app <application.yaml> --suite <scenario.yaml>
         [--repeat N] [--report <file.json|file.csv>] [--concurrency N] [--headless true|false]
         [--verbose] [--recordings <dir>] [--step-timeout <ms>] [--params key=value,…]
         [--assets <dir>] [--application-tags a,b] [--scenario-tags a,b] [--retries N]
         [--record] [--audio-url <url|file>] [--audio-volume <gain>] [--dry-run]
         [--egress open|strict] [--allow <list>] [--replay <result URL|report.json>]
       --app/-a (--applications) and --suite/-s (--scenarios) accept comma-separated files or
       folders (a matrix); --dry-run loads and checks every pair without a browser
       --egress strict applies a daemon's network policy: no loopback, private, link-local or
       cloud-metadata destinations except those --allow names (hosts, host:port, CIDRs, URL prefixes)
       --replay speaks the audio a stored result spoke (https://vox.example/api/v1/results/42, read
       with VOX_API_KEY) or a run-mode report did (report.json) instead of synthesizing it again
       deno task agent validate [--app <application.yaml>] [--suite <scenario.yaml>] [--assets <dir>]`;

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
    ...(report.network ?? []).map((p) =>
      `    ${p.profile} (${p.method ?? "netem"}): ${fmt(p.score, "")}  response ${
        p.response_latency_change_ms == null
          ? "–"
          : `${p.response_latency_change_ms >= 0 ? "+" : ""}${fmt(p.response_latency_change_ms)}`
      }  interrupt ${
        p.interrupt_latency_change_ms == null
          ? "–"
          : `${p.interrupt_latency_change_ms >= 0 ? "+" : ""}${fmt(p.interrupt_latency_change_ms)}`
      }  failed turns ${p.turns_failed ?? "–"} (clean ${p.clean_turns_failed ?? "–"})${
        p.error ? `  ✗ ${p.error}` : ""
      }`
    ),
    `  naturalness        ${fmt(m.naturalness, "")}`,
    `  turns: ${report.turns.length}, failed: ${report.turns.filter((t) => !t.ok).length}${
      report.notes.measurement_health ? ` (${report.notes.measurement_health})` : ""
    }`,
  ];
  for (const t of report.turns.filter((t) => !t.ok)) {
    lines.push(`    ✗ ${t.kind} (run ${t.run}, ${t.file} step ${t.step}): ${t.note ?? "failed"}`);
  }
  if (report.replay) {
    lines.push(
      `  replayed the caller audio of ${report.replay.of} (${report.replay.utterances} utterance(s))`,
    );
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

/**
 * Writes each utterance's audio as `speech-<sha256>.wav` beside the recordings (a replay reads
 * it from there: `--replay <report.json>`); returns the hashes written.
 */
async function keepSpeech(
  spoken: ReadonlyMap<string, SpokenAudio>,
  outDir: string | undefined,
  report: Report,
): Promise<Set<string>> {
  const recording = report.runs.find((r) => r.recording)?.recording;
  const dir = outDir ?? (recording ? dirname(recording) : null);
  const kept = new Set<string>();
  if (!dir) return kept;
  await Deno.mkdir(dir, { recursive: true });
  for (const s of spoken.values()) {
    if (kept.has(s.sha256)) continue;
    await Deno.writeFile(join(dir, speechArtifactName(s.sha256)), s.audio);
    kept.add(s.sha256);
  }
  return kept;
}

async function writeReport(path: string | undefined, report: Report) {
  if (!path) return;
  await Deno.mkdir(dirname(resolve(path)), { recursive: true });
  // `.csv`: voice-agent-tester's columns (and Vox's); anything else: Vox's JSON report.
  const text = extname(path).toLowerCase() === ".csv"
    ? reportCsv(report)
    : JSON.stringify(report, null, 2) + "\n";
  await Deno.writeTextFile(path, text);
  console.log(`  report: ${resolve(path)}`);
}

/** One problem a dry run (or loading before a run) found: the file, the step when known, why. */
interface Problem {
  file: string;
  step: number | null;
  action: string | null;
  message: string;
}

function problemOf(err: unknown): Problem {
  if (err instanceof ConfigError) {
    return { file: err.file, step: err.step ?? null, action: err.action ?? null, message: err.message };
  }
  return { file: "(arguments)", step: null, action: null, message: (err as Error).message };
}

/**
 * Loads every application and scenario (each file once, every problem kept) and applies the
 * tag filters (voice-agent-tester's: a file is kept when one of its tags is listed).
 */
async function loadAll(
  appArgs: string[],
  suiteArgs: string[],
  options: LoadOptions & {
    applicationTags?: string;
    scenarioTags?: string;
    spoken?: Map<string, SpokenAudio>;
    replay?: ReplayAudio;
  },
): Promise<{ apps: LoadedConfig[]; suites: LoadedConfig[]; problems: Problem[] }> {
  const problems: Problem[] = [];
  const load = async (args: string[], kind: "application" | "scenario") => {
    let files: string[];
    try {
      files = await expandPaths(args);
    } catch (err) {
      problems.push(problemOf(err));
      return [];
    }
    const out: LoadedConfig[] = [];
    for (const file of files) {
      try {
        out.push(await loadConfig(file, kind, options));
      } catch (err) {
        problems.push(problemOf(err));
      }
    }
    return out;
  };
  const byTags = (list: LoadedConfig[], tags: string | undefined, what: string) => {
    if (!tags) return list;
    const want = tags.split(",").map((t) => t.trim()).filter(Boolean);
    const kept = list.filter((c) => c.tags.some((t) => want.includes(t)));
    if (list.length > 0 && kept.length === 0) {
      problems.push({
        file: "(tags)",
        step: null,
        action: null,
        message: `no ${what} has one of the tags ${want.join(", ")}`,
      });
    }
    return kept;
  };
  const apps = byTags(await load(appArgs, "application"), options.applicationTags, "application");
  const suites = byTags(await load(suiteArgs, "scenario"), options.scenarioTags, "scenario");
  // Run mode: cloud voices read their keys from the environment (OPENAI_API_KEY).
  const key = Deno.env.get("OPENAI_API_KEY");
  const cacheDir = Deno.env.get("VOX_AGENT_AUDIO_CACHE_DIR");
  for (const config of [...apps, ...suites]) {
    config.speech = {
      secrets: key ? { OPENAI_API_KEY: key } : {},
      cacheDir: cacheDir ? join(cacheDir, "speech") : undefined,
      spoken: options.spoken,
      replay: options.replay,
    };
  }
  return { apps, suites, problems };
}

/** Whether `ffmpeg` runs (puppeteer's screencast pipes the video through it). */
async function hasFfmpeg(): Promise<boolean> {
  try {
    return (await new Deno.Command("ffmpeg", { args: ["-version"], stdout: "null", stderr: "null" }).output())
      .success;
  } catch {
    return false;
  }
}

/** `--audio-url`: a URL (http/https, fetched once by the agent) or a local file, as base64. */
async function audioBedOf(source: string, volume: number): Promise<{ b64: string; levelDb: number }> {
  let bytes: Uint8Array;
  if (/^https?:\/\//i.test(source)) {
    const res = await fetch(source, { signal: AbortSignal.timeout(30_000) });
    if (!res.ok) throw new Error(`--audio-url: ${source} answered HTTP ${res.status}`);
    bytes = new Uint8Array(await res.arrayBuffer());
  } else {
    try {
      bytes = await Deno.readFile(source);
    } catch (err) {
      throw new Error(`--audio-url: cannot read ${source} (${(err as Error).message.split(":")[0]})`);
    }
  }
  if (bytes.length > 50_000_000) throw new Error(`--audio-url: ${source} is over 50 MB`);
  // The page normalises the bed to a level; volume 1 is -20 dBFS RMS (a gain in dB above it).
  return { b64: toBase64(bytes), levelDb: -20 + 20 * Math.log10(volume) };
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
        egress: { type: "string", default: "open" },
        allow: { type: "string", multiple: true },
        "application-tags": { type: "string" },
        "scenario-tags": { type: "string" },
        params: { type: "string", short: "p", multiple: true },
        assets: { type: "string", multiple: true },
        retries: { type: "string", default: "0" },
        record: { type: "boolean", default: false },
        "audio-url": { type: "string" },
        "audio-volume": { type: "string", default: "1" },
        "assets-server": { type: "string" },
        "dry-run": { type: "boolean", default: false },
        replay: { type: "string" },
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
  const retries = Number(v.retries);
  const volume = Number(v["audio-volume"]);
  if (!Number.isInteger(repeat) || repeat < 1 || !Number.isInteger(concurrency) || concurrency < 1) {
    console.error(`--repeat and --concurrency must be positive integers\n${USAGE}`);
    return 2;
  }
  if (!Number.isInteger(retries) || retries < 0 || retries > 100) {
    console.error(`--retries must be an integer from 0 to 100\n${USAGE}`);
    return 2;
  }
  if (!Number.isFinite(volume) || volume <= 0 || volume > 10) {
    console.error(`--audio-volume must be a gain above 0 and at most 10\n${USAGE}`);
    return 2;
  }
  let params: Record<string, string>;
  try {
    params = parseParams(v.params ?? []);
  } catch (err) {
    console.error(`${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (v["assets-server"]) {
    console.log("note: --assets-server is not needed: Vox serves html applications and audio itself");
  }
  let egress: EgressPolicy | undefined;
  if (v.egress !== "open" && v.egress !== "strict") {
    console.error(`--egress must be open or strict\n${USAGE}`);
    return 2;
  }
  try {
    if (v.egress === "strict") egress = { allow: parseAllowList((v.allow ?? []).join(",")) };
  } catch (err) {
    console.error(`--allow: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  const started = new Date();
  const reportPath = v.report;
  const outDir = v.recordings ??
    (reportPath ? join(dirname(resolve(reportPath)), "recordings") : undefined);
  // --replay: the stored result's speech, fetched (or taken from the cache) before anything runs.
  let replay: { audio: ReplayAudio; info: ReplayInfo } | undefined;
  if (v.replay) {
    try {
      replay = await loadReplay(v.replay, {
        apiKey: Deno.env.get("VOX_API_KEY"),
        cacheDir: Deno.env.get("VOX_AGENT_AUDIO_CACHE_DIR") ??
          join(Deno.env.get("TMPDIR") ?? "/tmp", "vox-audio-cache"),
      });
    } catch (err) {
      if (!(err instanceof ReplayError)) throw err;
      console.error(`✗ ${err.message}`);
      const problem = { message: err.message, file: "(replay)", step: null, action: null };
      await writeReport(reportPath, buildReport([], started, [problem]));
      return 1;
    }
    console.log(
      `replaying ${replay.info.of}: ${replay.info.utterances} utterance(s), ${replay.info.fetched} fetched, ${replay.info.cached} from the cache`,
    );
  }
  const spoken = new Map<string, SpokenAudio>();
  const { apps, suites, problems } = await loadAll(appArgs, suiteArgs, {
    params,
    assets: v.assets,
    applicationTags: v["application-tags"],
    scenarioTags: v["scenario-tags"],
    spoken,
    replay: replay?.audio,
  });
  for (const c of [...apps, ...suites]) for (const w of c.warnings ?? []) console.log(`! ${c.path}: ${w}`);
  if (v["dry-run"]) {
    // One line per problem (file, step, reason); every runnable pair listed; no browser.
    for (const p of problems) console.error(`✗ ${p.message}`);
    if (problems.length === 0) {
      for (const a of apps) for (const s of suites) console.log(`ok ${a.path} × ${s.path}`);
      console.log(`dry run: ${apps.length * suites.length} pair(s) runnable`);
    } else console.error(`dry run: ${problems.length} problem(s)`);
    return problems.length === 0 ? 0 : 1;
  }
  if (problems.length === 0 && replay) {
    // A text the result did not speak fails here, before a browser starts.
    for (const config of [...apps, ...suites]) {
      try {
        await prepareSpeech([config]);
      } catch (err) {
        if (!(err instanceof SpeechError)) throw err;
        problems.push({
          file: config.path,
          step: null,
          action: null,
          message: `${config.path}: ${err.message}`,
        });
      }
    }
  }
  if (problems.length > 0) {
    const report = buildReport([], started, problems);
    if (replay) report.replay = replay.info;
    for (const p of problems) console.error(`✗ ${p.message}`);
    await writeReport(reportPath, report);
    return 1;
  }
  if (v.record && !(await hasFfmpeg())) {
    console.error(
      "--record needs ffmpeg on PATH for the video (the audio is recorded on every run without it)",
    );
    return 2;
  }
  let audioBed;
  if (v["audio-url"]) {
    try {
      audioBed = await audioBedOf(v["audio-url"], volume);
    } catch (err) {
      console.error(`✗ ${(err as Error).message}`);
      return 1;
    }
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
      retries,
      audioBed,
      recordVideo: v.record,
      headless: v.headless !== "false",
      verbose: v.verbose,
      outDir,
      stepTimeoutMs: Number(v["step-timeout"]),
      egress,
      secrets: secretsFromEnv(),
      onProgress: (line) => console.log(line),
    }));
  } catch (err) {
    // Runs never throw; what is left is the browser itself (missing binary, no display).
    const message = `cannot run the browser: ${(err as Error).message.split("\n")[0]}`;
    report = buildReport([], started, [{ message, file: "(browser)", step: null, action: null }]);
  }
  for (const sig of signals) Deno.removeSignalListener(sig, stop);
  if (spoken.size > 0) report.speech = speechRecords(spoken, await keepSpeech(spoken, outDir, report));
  if (replay) report.replay = replay.info;
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
        assets: { type: "string", multiple: true },
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
        // The format only, as the server checks it: url {{params}} are a run's input.
        const config = await loadConfig(file, kind, { assets: v.assets, formatOnly: true });
        console.log(`ok ${kind} ${file}`);
        for (const w of config.warnings ?? []) console.log(`! ${file}: ${w}`);
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

/**
 * Run mode's workflow secrets (a Realtime endpoint's key, `realtime.auth.secret: NAME`): the
 * environment's VOX_SECRET_<NAME> variables. Daemon jobs get them from the server instead.
 */
export function secretsFromEnv(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(Deno.env.toObject())) {
    if (k.startsWith("VOX_SECRET_") && k !== "VOX_SECRET_KEY") out[k.slice("VOX_SECRET_".length)] = v;
  }
  return out;
}
