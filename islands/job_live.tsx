/// <reference lib="dom" />
// A job's live status on its console page: the job's event stream (or polling when the
// server has none) moves the badge and the progress line; when the job ends the page
// reloads once so the server renders the result.
import { useEffect, useState } from "preact/hooks";

export interface JobLiveProps {
  [key: string]: unknown;
  jobId: number;
  status: string;
  error: string | null;
  final: boolean;
  live: boolean;
}

const FINAL = new Set(["completed", "failed", "cancelled", "timed_out"]);

interface Progress {
  step?: number;
  totalSteps?: number;
  message?: string;
  turn?: { kind: string; latency_ms: number | null; ok: boolean };
}

export default function JobLive(props: JobLiveProps) {
  const [status, setStatus] = useState(props.status);
  const [error, setError] = useState(props.error);
  const [progress, setProgress] = useState<Progress | null>(null);
  const [turns, setTurns] = useState<NonNullable<Progress["turn"]>[]>([]);
  const [stream, setStream] = useState<"idle" | "connecting" | "live" | "polling">("idle");

  useEffect(() => {
    if (props.final) return;
    let closed = false;
    let poll: ReturnType<typeof setInterval> | undefined;
    const onStatus = (d: { status: string; error?: string | null; progress?: unknown }) => {
      setStatus(d.status);
      setError(d.error ?? null);
      if (d.progress && typeof d.progress === "object") setProgress(d.progress as Progress);
      if (FINAL.has(d.status) && !closed) {
        closed = true;
        es?.close();
        if (poll) clearInterval(poll);
        location.reload();
      }
    };
    const startPolling = () => {
      if (closed || poll) return;
      setStream("polling");
      poll = setInterval(() => {
        fetch(`/api/v1/jobs/${props.jobId}`, { credentials: "same-origin" })
          .then((r) => (r.ok ? r.json() : null)).then((d) => d && onStatus(d)).catch(() => {});
      }, 2000);
    };
    const es = props.live && typeof EventSource !== "undefined"
      ? new EventSource(`/api/v1/jobs/${props.jobId}/events`)
      : null;
    if (!es) startPolling();
    else {
      setStream("connecting");
      es.addEventListener("status", (m) => {
        setStream("live");
        onStatus(JSON.parse((m as MessageEvent).data));
      });
      es.addEventListener("progress", (m) => {
        setStream("live");
        const d = JSON.parse((m as MessageEvent).data) as { status: string; progress?: Progress };
        setStatus(d.status);
        if (d.progress) setProgress(d.progress);
        const turn = d.progress?.turn;
        if (turn) setTurns((t) => [...t, turn]);
      });
      es.onerror = () => {
        if (closed) return;
        if (es.readyState === EventSource.CLOSED) startPolling();
        else setStream("connecting");
      };
    }
    return () => {
      closed = true;
      es?.close();
      if (poll) clearInterval(poll);
    };
  }, [props.jobId]);

  return (
    <section class="card c-live" aria-live="polite" data-testid="job-status" data-status={status}>
      <p class="c-live-row">
        <span class={`c-badge c-badge-${status}`}>{status.replace(/_/g, " ")}</span>
        {stream === "live" && <span class="muted small">live</span>}
        {stream === "polling" && <span class="muted small">checking every 2 s</span>}
        {stream === "connecting" && <span class="muted small">connecting…</span>}
        {progress?.totalSteps
          ? <span class="muted small">step {progress.step} of {progress.totalSteps}</span>
          : null}
        {progress?.message && <span class="muted small">{progress.message}</span>}
      </p>
      {status === "pending" && <p class="muted small">Waiting for an eval agent in this region.</p>}
      {error && <p class="error-box">{error}</p>}
      {turns.length > 0 && (
        <ol class="c-live-turns">
          {turns.map((t, i) => (
            <li key={i}>
              {t.kind} {t.latency_ms === null ? "—" : `${Math.round(t.latency_ms)} ms`}{" "}
              {t.ok ? "" : "(failed)"}
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
