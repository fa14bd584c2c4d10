/// <reference lib="dom" />
// The job panel of /run-your-own: one started job followed to its end over its event stream
// (or by polling when the server offers none), with its progress, turns and result, and the
// buttons to cancel it while it is pending or to run the same pair again.
import { useEffect, useRef, useState } from "preact/hooks";
import { FINAL_JOB_STATUSES, type JobStatus } from "../../lib/job_status.ts";
import type { ResultDetail } from "../../lib/results.ts";
import { api } from "./api.ts";

type Status = JobStatus;
const FINAL = FINAL_JOB_STATUSES;

/** A job as the API answers when it starts one. */
export interface StartedJob {
  id: number;
  workflowId: number;
  evalSetId: number;
  region: string;
  status: Status;
  error: string | null;
}

interface Turn {
  kind: "response" | "interrupt";
  latency_ms: number | null;
  ok: boolean;
}
interface JobView extends StartedJob {
  progress: { step: number; totalSteps: number; message: string } | null;
  turns: Turn[];
  resultId: number | null;
  result: ResultDetail | null;
  stream: "connecting" | "live" | "polling" | "closed";
}

const fmt = (v: number | null | undefined, unit = " ms") =>
  v === null || v === undefined ? "—" : `${Math.round(v)}${unit}`;

/**
 * Follows `start` until it ends. "Run again" starts the same pair anew and hands the new job
 * to onStarted; the island then shows a fresh panel for it.
 */
export function JobPanel({ start, onStarted }: { start: StartedJob; onStarted: (job: StartedJob) => void }) {
  const [job, setJob] = useState<JobView>(() => ({
    id: start.id,
    workflowId: start.workflowId,
    evalSetId: start.evalSetId,
    region: start.region,
    status: start.status,
    error: start.error,
    progress: null,
    turns: [],
    resultId: null,
    result: null,
    stream: "connecting",
  }));
  const [cancelError, setCancelError] = useState<string | null>(null);
  const panel = useRef<HTMLElement>(null);

  useEffect(() => panel.current?.scrollIntoView({ behavior: "smooth", block: "start" }), [start.id]);

  const runAgain = async () => {
    try {
      onStarted(
        await api<StartedJob>("POST", `/api/v1/workflows/${job.workflowId}/run`, {
          evalSetId: job.evalSetId,
          region: job.region,
        }),
      );
    } catch (err) {
      setCancelError(err instanceof Error ? err.message : String(err));
    }
  };

  const cancel = async () => {
    setCancelError(null);
    try {
      const j = await api<{ status: Status; error: string | null }>("POST", `/api/v1/jobs/${job.id}/cancel`);
      setJob((v) => ({ ...v, status: j.status, error: j.error }));
    } catch (err) {
      setCancelError(err instanceof Error ? err.message : String(err));
    }
  };

  // Follows the job: its event stream, or polling when the server offers no stream.
  const jobId = start.id;
  useEffect(() => {
    let closed = false;
    let poll: ReturnType<typeof setInterval> | undefined;
    const update = (f: (v: JobView) => JobView) => setJob(f);
    const finish = async (status: Status, resultId: number | null) => {
      closed = true;
      es?.close();
      if (poll) clearInterval(poll);
      update((v) => ({ ...v, stream: "closed" }));
      if (status !== "completed") return;
      try {
        let id = resultId;
        if (id === null) {
          const { results } = await api<{ results: { id: number; jobId: number }[] }>(
            "GET",
            `/api/v1/results?workflowId=${start.workflowId}&limit=200`,
          );
          id = results.find((r) => r.jobId === jobId)?.id ?? null;
        }
        if (id === null) return;
        const result = await api<ResultDetail>("GET", `/api/v1/results/${id}`);
        update((v) => ({ ...v, resultId: id, result }));
      } catch { /* the status is still right; the metrics stay unshown */ }
    };
    const onStatus = (
      data: { status: Status; error?: string | null; progress?: unknown; resultId?: number },
    ) => {
      // A final status the page already knows (its own cancel) is never undone by a later
      // message that was sent before it.
      update((v) =>
        FINAL.has(v.status) && !FINAL.has(data.status) ? v : ({
          ...v,
          status: data.status,
          error: data.error ?? null,
          progress: data.status === "running" ? progressOf(data.progress) ?? v.progress : v.progress,
        })
      );
      if (FINAL.has(data.status)) finish(data.status, data.resultId ?? null);
    };
    const startPolling = () => {
      if (closed || poll) return;
      update((v) => ({ ...v, stream: "polling" }));
      poll = setInterval(() => {
        api<{ status: Status; error: string | null; progress: unknown }>("GET", `/api/v1/jobs/${jobId}`)
          .then(onStatus).catch(() => {});
      }, 2000);
    };
    const es = typeof EventSource === "undefined" ? null : new EventSource(`/api/v1/jobs/${jobId}/events`);
    if (!es) startPolling();
    else {
      es.addEventListener("status", (msg) => {
        update((v) => ({ ...v, stream: "live" }));
        onStatus(JSON.parse((msg as MessageEvent).data));
      });
      es.addEventListener("progress", (msg) => {
        const data = JSON.parse((msg as MessageEvent).data) as { status: Status; progress?: unknown };
        const p = progressOf(data.progress);
        const turn = (data.progress as { turn?: Turn } | undefined)?.turn;
        update((v) => ({
          ...v,
          stream: "live",
          status: data.status,
          progress: p ?? v.progress,
          turns: turn ? [...v.turns, turn] : v.turns,
        }));
      });
      es.onerror = () => {
        if (closed) return;
        // CLOSED: the server refused the stream (e.g. 503), it will not come back by itself.
        if (es.readyState === EventSource.CLOSED) startPolling();
        else update((v) => ({ ...v, stream: "connecting" }));
      };
    }
    return () => {
      closed = true;
      es?.close();
      if (poll) clearInterval(poll);
    };
  }, [jobId]);

  return (
    <section class="card ryo-job" ref={panel} data-testid="job-panel" data-status={job.status}>
      <div class="ryo-job-head">
        <h2>Job #{job.id}</h2>
        <span class={`ryo-status ryo-status-${job.status}`} data-testid="job-status">{job.status}</span>
        <span class="muted small">in {job.region}</span>
        <span class="spacer" />
        {job.stream !== "closed" && (
          <span class={`live-badge ${job.stream === "live" ? "live" : "connecting"}`}>
            <span class="dot" /> {job.stream === "polling" ? "polling" : job.stream}
          </span>
        )}
        {job.status === "pending" && (
          <button class="button danger small" type="button" onClick={cancel} data-testid="cancel">
            Cancel
          </button>
        )}
        {FINAL.has(job.status) && (
          <button class="button small" type="button" onClick={runAgain}>Run again</button>
        )}
      </div>
      {cancelError && <p class="ryo-field-error" role="alert">{cancelError}</p>}
      <JobBody job={job} />
    </section>
  );
}

function progressOf(p: unknown): JobView["progress"] {
  if (!p || typeof p !== "object") return null;
  const o = p as { step?: number; totalSteps?: number; message?: string };
  if (typeof o.step !== "number") return null;
  return { step: o.step, totalSteps: o.totalSteps ?? 0, message: o.message ?? "" };
}

function JobBody({ job }: { job: JobView }) {
  if (job.status === "pending") {
    return (
      <p class="muted" data-testid="job-note">
        Waiting for an eval agent in {job.region}. You can cancel until one takes the job.
      </p>
    );
  }
  if (job.status === "cancelled") {
    return <p class="muted" data-testid="job-note">Cancelled before it started.</p>;
  }
  const p = job.progress;
  const pct = p && p.totalSteps ? Math.min(100, Math.round((p.step / p.totalSteps) * 100)) : null;
  const turns = job.result ? (job.result.turns as Turn[]) : job.turns;
  return (
    <>
      {job.status === "running" && (
        <div class="ryo-progress" data-testid="job-progress">
          <div class="ryo-bar">
            <div
              class={`ryo-bar-fill${pct === null ? " indeterminate" : ""}`}
              style={`width:${pct ?? 30}%`}
            />
          </div>
          <span class="small muted">
            {p
              ? `Step ${p.step} of ${p.totalSteps}${p.message ? ` · ${p.message}` : ""}`
              : "Starting the browser…"}
          </span>
        </div>
      )}
      {job.status === "failed" && <p class="error-box">{job.error ?? "The job failed."}</p>}
      {job.result && <ResultView result={job.result} />}
      {job.status === "completed" && !job.result && <p class="muted">Loading the result…</p>}
      {turns.length > 0 && (
        <table class="table compact ryo-turns" data-testid="turns">
          <thead>
            <tr>
              <th>#</th>
              <th>Turn</th>
              <th class="num">Latency</th>
              <th>Outcome</th>
            </tr>
          </thead>
          <tbody>
            {turns.map((t, i) => (
              <tr key={i}>
                <td>{i + 1}</td>
                <td>{t.kind === "interrupt" ? "Interruption" : "Response"}</td>
                <td class="num">{fmt(t.latency_ms)}</td>
                <td>{t.ok ? "ok" : <span class="ryo-bad">missed</span>}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

function ResultView({ result }: { result: ResultDetail }) {
  const stats = [["Response latency", result.responseLatency], [
    "Interrupt latency",
    result.interruptLatency,
  ]] as const;
  const scores = [
    ["Network resilience", result.networkResilience],
    ["Noise reduction", result.noiseReduction],
    ["Naturalness", result.naturalness],
  ] as const;
  const recording = result.artifacts.find((a) => a.contentType.startsWith("audio/")) ?? result.artifacts[0];
  return (
    <div class="ryo-result" data-testid="result">
      <div class="ryo-metrics">
        {stats.map(([label, s]) => (
          <div class="ryo-metric" key={label}>
            <div class="ryo-metric-label">{label}</div>
            <div class="big">
              {fmt(s.median, "")}
              <small>ms median</small>
            </div>
            <dl class="ryo-dl">
              <dt>sd</dt>
              <dd>{fmt(s.sd)}</dd>
              <dt>p90</dt>
              <dd>{fmt(s.p90)}</dd>
              <dt>n</dt>
              <dd>{s.n}</dd>
            </dl>
          </div>
        ))}
        <div class="ryo-metric">
          <div class="ryo-metric-label">Scores</div>
          <dl class="ryo-dl ryo-scores">
            {scores.map(([label, v]) => [
              <dt key={`${label}-t`}>{label}</dt>,
              <dd key={`${label}-d`}>{v === null ? "—" : Math.round(v)}</dd>,
            ])}
          </dl>
        </div>
      </div>
      <p class="small muted">
        {recording
          ? (
            <a
              class="button small"
              href={`/api/v1/results/${result.id}/artifacts/${recording.name}`}
              download
            >
              Download the recording ({recording.name})
            </a>
          )
          : "No recording was uploaded for this run."} <a href="/leaderboard">Compare on the leaderboard</a>
      </p>
    </div>
  );
}
