/**
 * `vox`: evaluations as code and as a gate in CI (docs/ci.md).
 *
 *   vox login [--url URL] [--api-key KEY]      store server + key (0600); VOX_URL/VOX_API_KEY override
 *   vox whoami
 *   vox push FILE… [--project P] [--provider NAME]
 *   vox pull [--workflow W] [--eval-set E] [--project P] [--out DIR]
 *   vox run --workflow W --eval-set E [--region R …] [--repeat N] [--wait] [gates]
 *   vox run --local --app A.yaml --suite S.yaml [--repeat N] [--report F] [--replay RESULT_ID] [gates]
 *   vox gate REPORT.json|RESULT_ID [gates]
 *   vox compare A B                            two result ids or report files
 *   vox results list [...] | vox results get ID | vox jobs get ID | vox jobs cancel ID
 *
 * gates: --fail-if EXPR (repeatable) --baseline REF --alpha A --min-effect-ms MS --format F.
 * Exit codes: 0 passed, 1 a gate or the baseline test failed, 2 could not run (bad input,
 * unreachable server, refused key, a job that failed or never ran).
 */
import { parseArgs } from "node:util";
import { Api } from "./client.ts";
import { CliError, EXIT } from "./errors.ts";
import { loadConfigFile } from "./files.ts";
import { type Gate, parseGate } from "./gates.ts";
import { hideSecret, note, out } from "./io.ts";
import { listProjectItems, pullItems, pushFile, resolveItem, resolveProject } from "./items.ts";
import { type Format, FORMATS, markdown, render } from "./output.ts";
import { fetchResult, isResultId, localRun, readReport, resolveBaseline, serverRun } from "./run.ts";
import { configPath, credentials, readConfig, serverUrl, writeConfig } from "./settings.ts";
import { evaluate, type Evaluation, exitCode } from "./verdict.ts";
import type { Measurement } from "./measurement.ts";

const USAGE = `usage: vox <command> [options]

  login [--url URL] [--api-key KEY]     store the server and API key (the key is read from stdin
                                        when not given); VOX_URL and VOX_API_KEY take precedence
  whoami                                who the key belongs to
  push FILE… [--project P] [--provider NAME]
                                        create or update workflows (application files) and eval
                                        sets (scenario files) named after the files
  pull [--workflow W] [--eval-set E] [--project P] [--out DIR]
                                        write them back as YAML (all of the project's by default)
  run --workflow W --eval-set E [--project P] [--region R …] [--repeat N] [--wait] [--timeout S]
  run --local --app A.yaml --suite S.yaml [--repeat N] [--report FILE] [--replay RESULT_ID]
                                        --replay speaks the caller audio that result stored
  gate REPORT.json|RESULT_ID            gates over a finished result or local report
  compare A B                           two results (ids) or reports side by side, with the test
  results list [--workflow W] [--eval-set E] [--region R] [--mainline] [--limit N]
  results get ID
  jobs get ID | jobs cancel ID

gates (run, gate): --fail-if 'response.p90 > 800' (repeatable) --baseline ID|FILE|"last mainline"|last
  --alpha 0.05 --min-effect-ms 25 --format table|json|junit|markdown
exit codes: 0 passed, 1 a gate or the baseline test failed, 2 could not run`;

const options = {
  url: { type: "string" },
  "api-key": { type: "string" },
  project: { type: "string" },
  provider: { type: "string" },
  workflow: { type: "string" },
  "eval-set": { type: "string" },
  out: { type: "string" },
  region: { type: "string", multiple: true },
  repeat: { type: "string" },
  wait: { type: "boolean" },
  timeout: { type: "string" },
  local: { type: "boolean" },
  replay: { type: "string" },
  app: { type: "string" },
  suite: { type: "string" },
  report: { type: "string" },
  "fail-if": { type: "string", multiple: true },
  baseline: { type: "string" },
  alpha: { type: "string" },
  "min-effect-ms": { type: "string" },
  format: { type: "string" },
  mainline: { type: "boolean" },
  limit: { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

type Flags = ReturnType<typeof parseArgs<{ options: typeof options; allowPositionals: true }>>["values"];

function num(flag: string, v: string | undefined, def: number, min: number, max: number): number {
  if (v === undefined) return def;
  const x = Number(v);
  if (!Number.isFinite(x) || x < min || x > max) {
    throw new CliError(`--${flag} ${v}: expected a number from ${min} to ${max}`);
  }
  return x;
}

function int(flag: string, v: string | undefined, def: number, min: number, max: number): number {
  const x = num(flag, v, def, min, max);
  if (!Number.isInteger(x)) throw new CliError(`--${flag} ${v}: expected a whole number`);
  return x;
}

function formatOf(f: Flags): Format {
  const v = f.format ?? "table";
  if (!(FORMATS as readonly string[]).includes(v)) {
    throw new CliError(`--format ${v}: expected one of ${FORMATS.join(", ")}`);
  }
  return v as Format;
}

function gatesOf(f: Flags): Gate[] {
  return (f["fail-if"] ?? []).map(parseGate);
}

function statsOf(f: Flags) {
  return {
    alpha: num("alpha", f.alpha, 0.05, 0.0001, 0.5),
    minEffectMs: num("min-effect-ms", f["min-effect-ms"], 25, 0, 60_000),
  };
}

async function api(): Promise<Api> {
  const creds = await credentials();
  hideSecret(creds.apiKey);
  return new Api(creds);
}

/** Prints verdicts, appends the Markdown summary to $GITHUB_STEP_SUMMARY, returns the exit code. */
async function report(evs: Evaluation[], format: Format): Promise<number> {
  out(render(evs, format));
  const summary = Deno.env.get("GITHUB_STEP_SUMMARY");
  if (summary) await Deno.writeTextFile(summary, markdown(evs) + "\n", { append: true });
  return exitCode(evs);
}

async function readKeyFromStdin(): Promise<string> {
  const buf = new Uint8Array(1024);
  const chunks: number[] = [];
  const tty = Deno.stdin.isTerminal();
  if (tty) {
    note("API key (input hidden): ");
    Deno.stdin.setRaw(true);
  }
  try {
    while (true) {
      const n = await Deno.stdin.read(buf);
      if (n === null) break;
      const part = buf.subarray(0, n);
      const end = part.findIndex((b) => b === 10 || b === 13 || b === 3);
      if (end >= 0) {
        if (part[end] === 3) throw new CliError("cancelled");
        chunks.push(...part.subarray(0, end));
        break;
      }
      chunks.push(...part);
    }
  } finally {
    if (tty) Deno.stdin.setRaw(false);
  }
  return new TextDecoder().decode(new Uint8Array(chunks)).trim();
}

async function login(f: Flags): Promise<number> {
  const path = configPath();
  const stored = await readConfig(path);
  const rawUrl = f.url ?? Deno.env.get("VOX_URL") ?? stored.url;
  if (!rawUrl) throw new CliError("vox login needs --url (the Vox server, e.g. https://vox.example.com)");
  const url = serverUrl(rawUrl);
  const apiKey = f["api-key"] ?? Deno.env.get("VOX_API_KEY") ?? await readKeyFromStdin();
  if (!apiKey) throw new CliError("no API key given (--api-key, VOX_API_KEY or stdin)");
  hideSecret(apiKey);
  const { user } = await new Api({ url, apiKey }).json<{ user: { username: string } }>("/api/v1/user");
  await writeConfig(path, { url, apiKey });
  note(`logged in to ${url} as ${user.username}; credentials in ${path} (mode 0600)`);
  return EXIT.passed;
}

async function whoami(): Promise<number> {
  const a = await api();
  const { user } = await a.json<{ user: Record<string, unknown> }>("/api/v1/user");
  out(
    `${user.username} <${user.email}> role ${user.role}${
      user.isAdmin ? " (admin)" : ""
    } on ${a.url} via ${user.via}\n`,
  );
  return EXIT.passed;
}

async function push(f: Flags, files: string[]): Promise<number> {
  if (files.length === 0) throw new CliError("vox push needs files: vox push app.yaml scenario.yaml");
  // Every file is validated before anything is sent: a bad second file changes nothing.
  const loaded = await Promise.all(files.map((p) => loadConfigFile(p)));
  const names = new Set<string>();
  for (const l of loaded) {
    const key = `${l.kind}:${l.name}`;
    if (names.has(key)) {
      throw new CliError(`${l.path}: two files would both be the ${l.kind.replace("_", " ")} "${l.name}"`);
    }
    names.add(key);
  }
  const a = await api();
  const projectId = await resolveProject(a, f.project);
  for (const file of loaded) {
    const r = await pushFile(a, file, projectId, f.provider);
    const noun = r.kind === "workflow" ? "workflow" : "eval set";
    const mark = { created: "+", updated: "~", unchanged: "=" }[r.action];
    out(`${mark} ${noun} ${r.name} (id ${r.id}): ${r.action}\n`);
    if (r.diff) out(r.diff.split("\n").map((l) => `    ${l}`).join("\n") + "\n");
  }
  return EXIT.passed;
}

async function pull(f: Flags): Promise<number> {
  const a = await api();
  const projectId = f.project ? await resolveProject(a, f.project) : undefined;
  const items = [];
  if (f.workflow) {
    items.push({ kind: "workflow" as const, item: await resolveItem(a, "workflow", f.workflow, projectId) });
  }
  if (f["eval-set"]) {
    items.push({
      kind: "eval_set" as const,
      item: await resolveItem(a, "eval_set", f["eval-set"], projectId),
    });
  }
  if (!items.length) {
    const pid = projectId ?? await resolveProject(a);
    for (const item of await listProjectItems(a, "workflow", pid)) {
      items.push({ kind: "workflow" as const, item });
    }
    for (const item of await listProjectItems(a, "eval_set", pid)) {
      items.push({ kind: "eval_set" as const, item });
    }
  }
  const paths = await pullItems(a, items, f.out ?? ".");
  out(paths.join("\n") + (paths.length ? "\n" : ""));
  return EXIT.passed;
}

async function regionsOf(a: Api, f: Flags): Promise<string[]> {
  if (f.region?.length) return f.region;
  const { agents } = await a.json<{ agents: { region: string; state: string }[] }>("/api/v1/agents");
  const online = [...new Set(agents.filter((x) => x.state !== "OFFLINE").map((x) => x.region))];
  if (online.length === 1) return online;
  throw new CliError(
    `--region is needed: ${
      online.length ? `eval agents are online in ${online.join(", ")}` : "no eval agent is online"
    }`,
  );
}

async function run(f: Flags): Promise<number> {
  const format = formatOf(f);
  const gates = gatesOf(f);
  const stats = statsOf(f);
  const repeat = int("repeat", f.repeat, 1, 1, 100);
  if (f.local) {
    if (!f.app || !f.suite) throw new CliError("vox run --local needs --app and --suite");
    await loadConfigFile(f.app, "workflow");
    await loadConfigFile(f.suite, "eval_set");
    let replay;
    if (f.replay !== undefined) {
      if (!isResultId(f.replay)) throw new CliError(`--replay ${f.replay}: a result id is needed`);
      const creds = await credentials();
      hideSecret(creds.apiKey);
      replay = { url: `${serverUrl(creds.url)}/api/v1/results/${f.replay}`, apiKey: creds.apiKey };
    }
    const ev = await localRun({
      app: f.app,
      suite: f.suite,
      repeat,
      report: f.report,
      gates,
      baseline: f.baseline,
      stats,
      replay,
    });
    return await report([ev], format);
  }
  if (f.replay !== undefined) {
    throw new CliError("vox run --replay needs --local (the run happens on this machine)");
  }
  if (!f.workflow || !f["eval-set"]) {
    throw new CliError("vox run needs --workflow and --eval-set (or --local)");
  }
  const timeoutS = num("timeout", f.timeout, 1800, 1, 86_400);
  const a = await api();
  const projectId = f.project ? await resolveProject(a, f.project) : undefined;
  const workflow = await resolveItem(a, "workflow", f.workflow, projectId);
  const evalSet = await resolveItem(a, "eval_set", f["eval-set"], projectId);
  const regions = await regionsOf(a, f);
  const wait = Boolean(f.wait) || gates.length > 0 || f.baseline !== undefined;
  const { jobs, evaluations } = await serverRun(a, {
    workflowId: workflow.id,
    evalSetId: evalSet.id,
    regions,
    repeat,
    wait,
    timeoutS,
    gates,
    baseline: f.baseline,
    stats,
  });
  if (!wait) {
    out(
      format === "json"
        ? JSON.stringify({ jobs }, null, 2) + "\n"
        : jobs.map((j) => `job ${j.id} ${j.region} ${j.status}\n`).join(""),
    );
    return EXIT.passed;
  }
  return await report(evaluations, format);
}

async function measurementOf(ref: string, a: () => Promise<Api>): Promise<Measurement> {
  return isResultId(ref) ? await fetchResult(await a(), Number(ref)) : await readReport(ref);
}

async function gate(f: Flags, refs: string[]): Promise<number> {
  if (refs.length !== 1) throw new CliError("vox gate needs one report file or result id");
  const format = formatOf(f);
  const gates = gatesOf(f);
  const stats = statsOf(f);
  const lazy = (() => {
    let p: Promise<Api> | null = null;
    return () => p ??= api();
  })();
  const m = await measurementOf(refs[0], lazy);
  const baseline = f.baseline
    ? (isResultId(f.baseline)
      ? await fetchResult(await lazy(), Number(f.baseline))
      : await resolveBaseline(null, f.baseline))
    : undefined;
  return await report([evaluate(m.label, m, gates, baseline, stats)], format);
}

async function compare(f: Flags, refs: string[]): Promise<number> {
  if (refs.length !== 2) throw new CliError("vox compare needs two results or reports: vox compare A B");
  const format = formatOf(f);
  const lazy = (() => {
    let p: Promise<Api> | null = null;
    return () => p ??= api();
  })();
  const [a, b] = [await measurementOf(refs[0], lazy), await measurementOf(refs[1], lazy)];
  const ev = evaluate(`${b.label} against ${a.label}`, b, [], a, statsOf(f));
  if (format === "table") {
    const v = (x: number | null) => x == null ? "—" : String(x);
    const d = (x: number | null, y: number | null) =>
      x == null || y == null ? "" : `${y - x >= 0 ? "+" : ""}${Math.round((y - x) * 100) / 100}`;
    const rows: string[][] = [["", a.label, b.label, "Δ"]];
    for (const kind of ["response", "interrupt"] as const) {
      for (const s of ["median", "p90", "sd", "n"] as const) {
        rows.push([`${kind}.${s}`, v(a[kind][s]), v(b[kind][s]), d(a[kind][s], b[kind][s])]);
      }
    }
    const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    out(rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()).join("\n") + "\n");
    for (const k of ev.baseline?.kinds ?? []) out(`${k.kind}: ${k.test.verdict}; ${k.test.summary}\n`);
    if (ev.error) out(`! ${ev.error}\n`);
    return exitCode([ev]);
  }
  return await report([ev], format);
}

async function results(f: Flags, args: string[]): Promise<number> {
  const a = await api();
  const format = formatOf(f);
  if (args[0] === "get" && args.length === 2 && isResultId(args[1])) {
    const raw = await a.json(`/api/v1/results/${args[1]}`);
    if (format === "json") out(JSON.stringify(raw, null, 2) + "\n");
    else {out(
        render([{
          title: `result ${args[1]}`,
          measurement: await fetchResult(a, Number(args[1])),
          gates: [],
        }], "table"),
      );}
    return EXIT.passed;
  }
  if (args[0] !== "list" || args.length !== 1) {
    throw new CliError("usage: vox results list [...] | vox results get ID");
  }
  const q = new URLSearchParams({
    scope: f.mainline ? "mainline" : "mine",
    limit: String(int("limit", f.limit, 20, 1, 200)),
  });
  if (f.workflow) q.set("workflowId", String((await resolveItem(a, "workflow", f.workflow)).id));
  if (f["eval-set"]) q.set("evalSetId", String((await resolveItem(a, "eval_set", f["eval-set"])).id));
  if (f.region?.length) q.set("region", f.region[0]);
  type Row = {
    id: number;
    jobId: number;
    workflowId: number;
    evalSetId: number;
    region: string;
    responseLatency: { median: number | null; p90: number | null };
    interruptLatency: { median: number | null; p90: number | null };
    createdAt: string;
  };
  const body = await a.json<{ results: Row[]; total: number }>(`/api/v1/results?${q}`);
  if (format === "json") {
    out(JSON.stringify(body, null, 2) + "\n");
    return EXIT.passed;
  }
  const rows = [[
    "id",
    "job",
    "workflow",
    "eval set",
    "region",
    "response median/p90",
    "interrupt median/p90",
    "created",
  ]];
  for (const r of body.results) {
    rows.push([
      String(r.id),
      String(r.jobId),
      String(r.workflowId),
      String(r.evalSetId),
      r.region,
      `${r.responseLatency.median ?? "—"} / ${r.responseLatency.p90 ?? "—"} ms`,
      `${r.interruptLatency.median ?? "—"} / ${r.interruptLatency.p90 ?? "—"} ms`,
      r.createdAt,
    ]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  out(
    rows.map((r) => r.map((c, i) => c.padEnd(widths[i])).join("  ").trimEnd()).join("\n") +
      `\n${body.total} in all\n`,
  );
  return EXIT.passed;
}

async function jobs(f: Flags, args: string[]): Promise<number> {
  if (args.length !== 2 || !["get", "cancel"].includes(args[0]) || !isResultId(args[1])) {
    throw new CliError("usage: vox jobs get ID | vox jobs cancel ID");
  }
  const a = await api();
  const job = args[0] === "cancel"
    ? await a.json<Record<string, unknown>>(`/api/v1/jobs/${args[1]}/cancel`, "POST")
    : await a.json<Record<string, unknown>>(`/api/v1/jobs/${args[1]}`);
  if (formatOf(f) === "json") out(JSON.stringify(job, null, 2) + "\n");
  else out(`job ${job.id} ${job.region} ${job.status}${job.error ? `: ${job.error}` : ""}\n`);
  return EXIT.passed;
}

/** Runs `vox` with `args`; the exit code. */
export async function main(args: string[]): Promise<number> {
  // For a verdict command asked for junit/json: the failure as a document too, so a CI system
  // reading the file shows why nothing ran instead of an empty report.
  let errorDoc: { command: string; format: Format } | null = null;
  try {
    let parsed;
    try {
      parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
    } catch (err) {
      throw new CliError(`${(err as Error).message}\n${USAGE}`);
    }
    const [command, ...rest] = parsed.positionals;
    const f = parsed.values as Flags;
    if (["run", "gate", "compare"].includes(command) && (f.format === "junit" || f.format === "json")) {
      errorDoc = { command, format: f.format };
    }
    if (f.help || !command) {
      (command || f.help ? out : note)(USAGE + "\n");
      return f.help ? EXIT.passed : EXIT.error;
    }
    switch (command) {
      case "login":
        return await login(f);
      case "whoami":
        return await whoami();
      case "push":
        return await push(f, rest);
      case "pull":
        return await pull(f);
      case "run":
        return await run(f);
      case "gate":
        return await gate(f, rest);
      case "compare":
        return await compare(f, rest);
      case "results":
        return await results(f, rest);
      case "jobs":
        return await jobs(f, rest);
      default:
        throw new CliError(`unknown command "${command}"\n${USAGE}`);
    }
  } catch (err) {
    const message = err instanceof CliError
      ? err.message
      : `unexpected error: ${(err as Error)?.stack ?? err}`;
    note(`vox: ${message}`);
    if (errorDoc) {
      out(
        render(
          [{ title: `vox ${errorDoc.command}`, gates: [], error: message.split("\n")[0] }],
          errorDoc.format,
        ),
      );
    }
    return EXIT.error;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
