/**
 * `vox run`: jobs on a server (started, followed over their event streams, their results
 * gated) or a local run through the eval agent's run mode, gated the same way.
 */
import { fileURLToPath } from "node:url";
import type { BaselineOptions } from "./baseline.ts";
import type { Api } from "./client.ts";
import { CliError } from "./errors.ts";
import type { Gate } from "./gates.ts";
import { note } from "./io.ts";
import { fromReport, fromResult, type Measurement, resultDetailSchema } from "./measurement.ts";
import { ProgressView } from "./progress.ts";
import { evaluate, type Evaluation } from "./verdict.ts";

/** A job as the API returns it. */
export interface Job {
  id: number;
  workflowId: number;
  evalSetId: number;
  region: string;
  status: string;
  progress: unknown;
  error: string | null;
}

const FINAL = new Set(["completed", "failed", "cancelled"]);

/** A result by id, as a measurement. */
export async function fetchResult(api: Api, id: number): Promise<Measurement> {
  const raw = await api.json(`/api/v1/results/${id}`).catch((err) => {
    if (err instanceof CliError && / 404 /.test(err.message)) {
      throw new CliError(`no result ${id} that you can see`);
    }
    throw err;
  });
  const parsed = resultDetailSchema.safeParse(raw);
  if (!parsed.success) throw new CliError(`result ${id}: the server's answer is not a result`);
  return fromResult(parsed.data, api.url);
}

/** A local report file as a measurement. */
export async function readReport(path: string): Promise<Measurement> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new CliError(`${path}: cannot read the report (${(err as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CliError(`${path}: not JSON`);
  }
  return fromReport(json, path);
}

/** Is `ref` a result id (digits) rather than a file? */
export const isResultId = (ref: string) => /^\d+$/.test(ref);

/**
 * The baseline `ref` names: a result id, a report file, or "last mainline" / "last" (the newest
 * mainline result, or the newest of the caller's, of the same workflow, eval set and region).
 */
export async function resolveBaseline(
  api: Api | null,
  ref: string,
  pair?: { workflowId: number; evalSetId: number; region: string },
): Promise<Measurement> {
  const last = /^last( mainline)?$/.exec(ref.trim());
  if (last) {
    if (!api || !pair) throw new CliError(`--baseline "${ref}" needs a server run (--workflow, --eval-set)`);
    const q = new URLSearchParams({
      scope: last[1] ? "mainline" : "mine",
      workflowId: String(pair.workflowId),
      evalSetId: String(pair.evalSetId),
      region: pair.region,
      limit: "1",
    });
    const { results } = await api.json<{ results: { id: number }[] }>(`/api/v1/results?${q}`);
    if (!results.length) {
      throw new CliError(
        `--baseline "${ref}": no ${
          last[1] ? "mainline " : ""
        }result yet for this workflow and eval set in ${pair.region}`,
      );
    }
    return await fetchResult(api, results[0].id);
  }
  if (isResultId(ref)) {
    if (!api) throw new CliError(`--baseline ${ref} is a result id: it needs a server (vox login)`);
    return await fetchResult(api, Number(ref));
  }
  return await readReport(ref);
}

/** Options of a server run. */
export interface ServerRun {
  workflowId: number;
  evalSetId: number;
  regions: string[];
  repeat: number;
  wait: boolean;
  timeoutS: number;
  gates: Gate[];
  baseline?: string;
  stats: BaselineOptions;
}

function progressOf(p: unknown): { step?: number; totalSteps?: number; message?: string } {
  if (!p || typeof p !== "object") return {};
  const o = p as Record<string, unknown>;
  return {
    step: typeof o.step === "number" ? o.step : undefined,
    totalSteps: typeof o.totalSteps === "number" ? o.totalSteps : undefined,
    message: typeof o.message === "string" ? o.message.slice(0, 120) : undefined,
  };
}

/** Follows a job's event stream until it ends (reconnecting if the stream drops); its final state. */
async function follow(
  api: Api,
  job: Job,
  view: ProgressView,
  deadline: number,
): Promise<{ job: Job; resultId?: number; timedOut: boolean }> {
  const key = `job ${job.id} (${job.region})`;
  view.update(key, { status: job.status });
  let resultId: number | undefined;
  let current = job;
  while (!FINAL.has(current.status)) {
    const left = deadline - Date.now();
    if (left <= 0) return { job: current, timedOut: true };
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), left);
    try {
      for await (const { data } of api.events(`/api/v1/jobs/${job.id}/events`, abort.signal)) {
        const d = data as Record<string, unknown>;
        if (typeof d.status === "string") current = { ...current, status: d.status };
        if (typeof d.error === "string") current = { ...current, error: d.error };
        if (typeof d.resultId === "number") resultId = d.resultId;
        view.update(key, { status: current.status, ...progressOf(d.progress) });
      }
    } catch (err) {
      if (!abort.signal.aborted) {
        // A server without live streams (503) is still a server: poll the job instead.
        if (err instanceof CliError && !/ 503 /.test(err.message)) throw err;
        note(`${key}: no live event stream (${(err as Error).message}); checking again in 2 s`);
        await new Promise((r) => setTimeout(r, 2000));
      }
    } finally {
      clearTimeout(timer);
    }
    // The stream ended (job over, server restart) or timed out: the job's state decides.
    current = await api.json<Job>(`/api/v1/jobs/${job.id}`);
    view.update(key, { status: current.status });
  }
  return { job: current, resultId, timedOut: false };
}

/** Starts the jobs; with `wait`, follows them and evaluates their results. */
export async function serverRun(
  api: Api,
  opts: ServerRun,
): Promise<{ jobs: Job[]; evaluations: Evaluation[] }> {
  // Baselines first, so "last" never means a result of this very run.
  const baselines = new Map<string, Measurement>();
  if (opts.baseline) {
    for (const region of opts.regions) {
      baselines.set(region, await resolveBaseline(api, opts.baseline, { ...opts, region }));
    }
  }
  const jobs: Job[] = [];
  for (const region of opts.regions) {
    const job = await api.json<Job>(`/api/v1/workflows/${opts.workflowId}/run`, "POST", {
      evalSetId: opts.evalSetId,
      region,
      repeat: opts.repeat,
    });
    note(`started job ${job.id} in ${region}`);
    jobs.push(job);
  }
  if (!opts.wait) return { jobs, evaluations: [] };
  const view = new ProgressView();
  const deadline = Date.now() + opts.timeoutS * 1000;
  const ended = await Promise.all(jobs.map((j) => follow(api, j, view, deadline)));
  const evaluations: Evaluation[] = [];
  for (const { job, resultId, timedOut } of ended) {
    const title = `job ${job.id} (${job.region})`;
    if (timedOut) {
      let why = `did not finish within ${opts.timeoutS} s (still ${job.status})`;
      if (job.status === "pending") {
        const cancelled = await api.json<Job>(`/api/v1/jobs/${job.id}/cancel`, "POST").then(
          () => true,
          () => false,
        );
        const { agents } = await api.json<{ agents: { region: string; state: string }[] }>("/api/v1/agents");
        const online = agents.filter((a) => a.region === job.region && a.state !== "OFFLINE").length;
        why += `; ${
          online
            ? `${online} eval agent(s) online in ${job.region} were busy`
            : `no eval agent is online in region ${job.region}`
        }` +
          (cancelled ? "; the job was cancelled" : "");
      }
      evaluations.push({ title, gates: [], error: why });
      continue;
    }
    if (job.status !== "completed") {
      evaluations.push({ title, gates: [], error: `job ${job.status}: ${job.error ?? "no reason given"}` });
      continue;
    }
    let id = resultId;
    if (id === undefined) {
      const { results } = await api.json<{ results: { id: number }[] }>(
        `/api/v1/results?jobId=${job.id}&limit=1`,
      );
      id = results[0]?.id;
    }
    if (id === undefined) {
      evaluations.push({ title, gates: [], error: "the job completed but its result is not visible" });
      continue;
    }
    const m = await fetchResult(api, id);
    evaluations.push(
      evaluate(`${title}, result ${id}`, m, opts.gates, baselines.get(job.region), opts.stats),
    );
  }
  return { jobs, evaluations };
}

/** Options of a local run. */
export interface LocalRun {
  app: string;
  suite: string;
  repeat: number;
  report?: string;
  gates: Gate[];
  baseline?: string;
  stats: BaselineOptions;
  /** `--replay`: the result whose stored speech the run speaks, and the key that reads it. */
  replay?: { url: string; apiKey: string };
}

/** Runs the eval agent's run mode (agent/main.ts run) on this machine and evaluates its report. */
export async function localRun(opts: LocalRun): Promise<Evaluation> {
  const baseline = opts.baseline ? await resolveBaseline(null, opts.baseline) : undefined;
  const report = opts.report ?? await Deno.makeTempFile({ prefix: "vox-report-", suffix: ".json" });
  const agentMain = fileURLToPath(new URL("../main.ts", import.meta.url));
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      agentMain,
      "run",
      "--app",
      opts.app,
      "--suite",
      opts.suite,
      "--repeat",
      String(opts.repeat),
      "--report",
      report,
      ...(opts.replay ? ["--replay", opts.replay.url] : []),
    ],
    // The key goes to the agent in its environment, never on a command line others can read.
    ...(opts.replay ? { env: { VOX_API_KEY: opts.replay.apiKey } } : {}),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  // The agent's output is progress: onto stderr, so stdout carries only the verdict.
  const pump = async (s: ReadableStream<Uint8Array<ArrayBuffer>>) => {
    let buf = "";
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
      buf += chunk;
      const lines = buf.split("\n");
      buf = lines.pop()!;
      for (const line of lines) if (line.trim()) note(`  agent: ${line}`);
    }
    if (buf.trim()) note(`  agent: ${buf}`);
  };
  const [status] = await Promise.all([child.status, pump(child.stdout), pump(child.stderr)]);
  const title = `local run ${opts.app} × ${opts.suite}`;
  let m: Measurement;
  try {
    m = await readReport(report);
  } catch (err) {
    return {
      title: `local run (${opts.app} × ${opts.suite})`,
      gates: [],
      error: `the eval agent wrote no report (exit ${status.code}): ${(err as Error).message}`,
    };
  }
  const raw = JSON.parse(await Deno.readTextFile(report));
  if (!status.success || raw.ok === false) {
    const errors = Array.isArray(raw.errors)
      ? raw.errors.map((e: { message?: string }) => e.message).join("; ")
      : "";
    return {
      title: `local run ${report}`,
      gates: [],
      error: `the run failed (exit ${status.code})${errors ? `: ${errors}` : ""}`,
    };
  }
  return evaluate(title, m, opts.gates, baseline, opts.stats);
}
