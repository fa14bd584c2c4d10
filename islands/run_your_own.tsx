/// <reference lib="dom" />
// The /run-your-own form and job panel. Everything it does is a call to /api/v1: it saves a
// workflow (the launch steps) and an eval set (the eval steps), runs them as a job, follows
// the job's event stream, and cancels it while it is pending. Validation is the API's: a 400
// names the field, and the message is shown next to that field.
import { useEffect, useRef, useState } from "preact/hooks";
import { parse, stringify } from "yaml";
import type { ResultDetail } from "../lib/results.ts";

export interface RunYourOwnProps {
  [key: string]: unknown;
  signedIn: boolean;
  providers: { id: string; name: string; sku: number }[];
  /** Regions that have eval agents. */
  regions: string[];
  /** The signed-in user's projects (empty when signed out). */
  projects: { id: number; name: string }[];
}

/** The step actions the guided editor offers; anything else is edited as YAML. */
export const GUIDED_ACTIONS = {
  click: { label: "Click", fields: ["selector"] },
  wait_for_element: { label: "Wait for element", fields: ["selector", "timeout"] },
  speak: { label: "Speak", fields: ["say"] },
  wait_for_voice: { label: "Wait for voice", fields: ["measure", "timeout"] },
  wait_for_silence: { label: "Wait for silence", fields: ["timeout"] },
  barge_in: { label: "Barge in", fields: ["say", "after_ms"] },
  sleep: { label: "Pause", fields: ["time"] },
} as const;
export type GuidedAction = keyof typeof GUIDED_ACTIONS;
const STEP_KEYS = new Set(["action", "selector", "timeout", "text", "file", "metrics", "after_ms", "time"]);

/** One step as the guided editor holds it (voice-agent-tester field names). */
export interface GuidedStep {
  action: GuidedAction;
  selector?: string;
  timeout?: number;
  text?: string;
  file?: string;
  metrics?: string;
  after_ms?: number;
  time?: number;
}

/** What a simple page needs to be ready: its body. */
export const DEFAULT_LAUNCH: GuidedStep[] = [{
  action: "wait_for_element",
  selector: "body",
  timeout: 15000,
}];
/** One response turn and one interruption. */
export const DEFAULT_EVAL: GuidedStep[] = [
  { action: "speak", text: "Hi! What can you help me with today?" },
  { action: "wait_for_voice", metrics: "elapsed_time", timeout: 15000 },
  { action: "barge_in", text: "Sorry, one more question.", after_ms: 800 },
  { action: "wait_for_silence", timeout: 20000 },
];

/** The steps as a voice-agent-tester document (`steps:` …). */
export function stepsToYaml(steps: GuidedStep[]): string {
  return stringify({ steps: steps.map(clean) }, { lineWidth: 0 });
}

/**
 * The steps of a YAML document when the guided editor can show every one of them, else a
 * sentence saying why it cannot (the YAML itself is still the API's to judge).
 */
export function yamlToSteps(text: string): GuidedStep[] | string {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch {
    return "The YAML does not parse; fix it here first.";
  }
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) return "The YAML is not a mapping with steps.";
  const keys = Object.keys(doc);
  if (keys.some((k) => k !== "steps")) {
    return `The guided form has no place for ${
      keys.filter((k) => k !== "steps").join(", ")
    }; keep it in YAML.`;
  }
  const steps = (doc as { steps?: unknown }).steps ?? [];
  if (!Array.isArray(steps)) return "steps must be a list.";
  const out: GuidedStep[] = [];
  for (const s of steps) {
    if (!s || typeof s !== "object" || !((s as { action?: string }).action! in GUIDED_ACTIONS)) {
      return `The guided form has no "${(s as { action?: string })?.action ?? "?"}" step; keep it in YAML.`;
    }
    if (Object.keys(s).some((k) => !STEP_KEYS.has(k))) return "Some steps have options only YAML can hold.";
    out.push(s as GuidedStep);
  }
  return out;
}

function clean(s: GuidedStep): Record<string, unknown> {
  return Object.fromEntries(Object.entries(s).filter(([, v]) => v !== undefined && v !== ""));
}

interface Editor {
  mode: "guided" | "yaml";
  steps: GuidedStep[];
  yaml: string;
  /** Why switching to the guided form was refused. */
  note: string | null;
}

const editorOf = (steps: GuidedStep[]): Editor => ({
  mode: "guided",
  steps,
  yaml: stepsToYaml(steps),
  note: null,
});
const editorYaml = (e: Editor) => e.mode === "guided" ? stepsToYaml(e.steps) : e.yaml;

type Field = "type" | "product" | "link" | "region" | "project" | "launch" | "eval" | "form";
type Status = "pending" | "running" | "completed" | "failed" | "cancelled";
const FINAL = new Set<Status>(["completed", "failed", "cancelled"]);
const REGION_PLACEHOLDER = "e.g. eu-west";

interface Turn {
  kind: "response" | "interrupt";
  latency_ms: number | null;
  ok: boolean;
}
interface JobView {
  id: number;
  workflowId: number;
  evalSetId: number;
  region: string;
  status: Status;
  error: string | null;
  progress: { step: number; totalSteps: number; message: string } | null;
  turns: Turn[];
  resultId: number | null;
  result: ResultDetail | null;
  stream: "connecting" | "live" | "polling" | "closed";
}

class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(path, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const data = await res.json().catch(() => null);
  if (!res.ok) {
    const e = data?.error ?? {};
    throw new ApiError(
      res.status,
      e.code ?? "error",
      e.message ?? `${method} ${path} failed (${res.status})`,
    );
  }
  return data as T;
}

/** Which form field an API message is about (`field: message`), for the call that failed. */
export function fieldOf(call: "workflow" | "evalSet" | "run", message: string): Field {
  const field = message.split(":")[0];
  if (call === "run") return field === "region" ? "region" : "form";
  if (field === "projectId") return "project";
  if (call === "evalSet") return field.startsWith("yaml") || field.startsWith("config") ? "eval" : "form";
  if (field === "provider" || field.startsWith("provider.") || field === "name") return "product";
  if (/^(yaml|config)\.url\b/.test(field)) return "link";
  if (field.startsWith("yaml") || field.startsWith("config")) return "launch";
  return "form";
}

const fmt = (v: number | null | undefined, unit = " ms") =>
  v === null || v === undefined ? "—" : `${Math.round(v)}${unit}`;

/** The entrance: describe the product, save and run, then watch the job. */
export default function RunYourOwn(props: RunYourOwnProps) {
  const [sku, setSku] = useState<0 | 1>(0);
  const [providerId, setProviderId] = useState<string>("new");
  const [productName, setProductName] = useState("");
  const [link, setLink] = useState("");
  const [regions, setRegions] = useState(props.regions);
  const [region, setRegion] = useState(props.regions[0] ?? "");
  // Agents come and go while the form is open: the list is asked for again when it matters.
  const refreshRegions = () =>
    api<{ agents: { region: string }[] }>("GET", "/api/v1/agents")
      .then(({ agents }) => setRegions([...new Set(agents.map((a) => a.region))].sort()))
      .catch(() => {});
  const defaultProject = props.projects.find((p) => p.name === "Default") ?? props.projects[0];
  const [projectId, setProjectId] = useState<number | null>(defaultProject?.id ?? null);
  const [launch, setLaunch] = useState<Editor>(() => editorOf(DEFAULT_LAUNCH));
  const [evals, setEvals] = useState<Editor>(() => editorOf(DEFAULT_EVAL));
  const [errors, setErrors] = useState<Partial<Record<Field, string>>>({});
  const [busy, setBusy] = useState(false);
  const [job, setJob] = useState<JobView | null>(null);
  const [cancelError, setCancelError] = useState<string | null>(null);
  const panel = useRef<HTMLElement>(null);

  // A field's message goes as soon as the field is edited: it spoke of the old value.
  const edited = (f: Field) => errors[f] && setErrors((e) => ({ ...e, [f]: undefined, form: undefined }));
  const appYaml = () => {
    const steps = editorYaml(launch).trimEnd();
    return link.trim() ? `${steps}\nurl: ${JSON.stringify(link.trim())}\n` : `${steps}\n`;
  };
  const choices = props.providers.filter((p) => p.sku === sku);
  const picked = props.providers.find((p) => p.id === providerId && p.sku === sku);

  const submit = async (e: Event) => {
    e.preventDefault();
    if (!props.signedIn || busy) return;
    const name = picked ? picked.name : productName.trim();
    if (!name) return setErrors({ product: "Name your product, or pick one above." });
    if (projectId === null) return setErrors({ project: "You have no project to save into." });
    setErrors({});
    setBusy(true);
    let call: "workflow" | "evalSet" | "run" = "workflow";
    const created: string[] = [];
    try {
      const workflow = await api<{ id: number }>("POST", "/api/v1/workflows", {
        projectId,
        name: `${name} · launch`,
        provider: picked ? { id: picked.id } : { name, sku },
        yaml: appYaml(),
      });
      created.push(`/api/v1/workflows/${workflow.id}`);
      call = "evalSet";
      const evalSet = await api<{ id: number }>("POST", "/api/v1/eval-sets", {
        projectId,
        name: `${name} · eval`,
        yaml: editorYaml(evals),
      });
      created.push(`/api/v1/eval-sets/${evalSet.id}`);
      call = "run";
      const started = await api<JobView & { progress: unknown }>(
        "POST",
        `/api/v1/workflows/${workflow.id}/run`,
        { evalSetId: evalSet.id, region: region.trim() },
      );
      showJob(started);
    } catch (err) {
      // A half-saved pair would only clutter the console: what this attempt created goes.
      for (const path of created.reverse()) await api("DELETE", path).catch(() => {});
      const message = err instanceof Error ? err.message : String(err);
      if (err instanceof ApiError && err.status === 401) {
        setErrors({ form: "Your session has ended. Log in again to save and run." });
      } else setErrors({ [fieldOf(call, message)]: message });
    } finally {
      setBusy(false);
    }
  };

  const showJob = (j: JobView & { progress: unknown }) => {
    setCancelError(null);
    setJob({
      id: j.id,
      workflowId: j.workflowId,
      evalSetId: j.evalSetId,
      region: j.region,
      status: j.status,
      error: j.error,
      progress: null,
      turns: [],
      resultId: null,
      result: null,
      stream: "connecting",
    });
    queueMicrotask(() => panel.current?.scrollIntoView({ behavior: "smooth", block: "start" }));
  };

  const runAgain = async () => {
    if (!job) return;
    try {
      showJob(
        await api("POST", `/api/v1/workflows/${job.workflowId}/run`, {
          evalSetId: job.evalSetId,
          region: job.region,
        }),
      );
    } catch (err) {
      setCancelError(err instanceof Error ? err.message : String(err));
    }
  };

  const cancel = async () => {
    if (!job) return;
    setCancelError(null);
    try {
      const j = await api<{ status: Status; error: string | null }>("POST", `/api/v1/jobs/${job.id}/cancel`);
      setJob((v) => v && v.id === job.id ? { ...v, status: j.status, error: j.error } : v);
    } catch (err) {
      setCancelError(err instanceof Error ? err.message : String(err));
    }
  };

  // Follows the job: its event stream, or polling when the server offers no stream.
  const jobId = job?.id;
  useEffect(() => {
    if (jobId === undefined) return;
    let closed = false;
    let poll: ReturnType<typeof setInterval> | undefined;
    const update = (f: (v: JobView) => JobView) => setJob((v) => v && v.id === jobId ? f(v) : v);
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
            `/api/v1/results?workflowId=${job!.workflowId}&limit=200`,
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
      update((v) => ({
        ...v,
        status: data.status,
        error: data.error ?? null,
        progress: data.status === "running" ? progressOf(data.progress) ?? v.progress : v.progress,
      }));
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

  const err = (f: Field) =>
    errors[f] && <p class="ryo-field-error" role="alert" data-error-for={f}>{errors[f]}</p>;

  return (
    <div class="ryo" data-testid="run-your-own">
      {!props.signedIn && (
        <div class="ryo-signin" data-testid="signin-prompt">
          <div>
            <strong>Log in to save and run.</strong>{" "}
            <span class="muted">
              Fill in the form freely; an account stores your product and runs it on Vox's eval agents.
            </span>
          </div>
          <div class="ryo-signin-actions">
            <a class="button primary" href="/login?next=%2Frun-your-own">Log in</a>
            <a class="button" href="/signup">Sign up</a>
          </div>
        </div>
      )}
      <form class="ryo-form" onSubmit={submit} novalidate>
        <section class="card ryo-section">
          <h2>
            <span class="ryo-num">1</span> Your product
          </h2>
          <div class="ryo-types" role="radiogroup" aria-label="Product type">
            {([[0, "ConvoAI engine", "A conversational voice agent: it listens and answers."], [
              1,
              "RTC engine",
              "A real-time audio/video SDK carrying a voice agent.",
            ]] as const).map(([value, label, hint]) => (
              <label key={value} class={`ryo-type${sku === value ? " on" : ""}`}>
                <input
                  type="radio"
                  name="sku"
                  value={value}
                  checked={sku === value}
                  onChange={() => {
                    setSku(value);
                    setProviderId("new");
                  }}
                />
                <span class="ryo-type-label">{label}</span>
                <span class="ryo-type-hint">{hint}</span>
              </label>
            ))}
          </div>
          <div class="ryo-grid">
            <label class="ryo-field">
              <span>Product</span>
              <select
                name="provider"
                value={picked ? picked.id : "new"}
                onChange={(e) => setProviderId((e.target as HTMLSelectElement).value)}
              >
                <option value="new">New product…</option>
                {choices.map((p) => <option key={p.id} value={p.id}>{p.name}</option>)}
              </select>
            </label>
            {!picked && (
              <label class="ryo-field">
                <span>Product name</span>
                <input
                  name="productName"
                  value={productName}
                  placeholder="e.g. Acme Voice"
                  maxLength={100}
                  onInput={(e) => (edited("product"), setProductName((e.target as HTMLInputElement).value))}
                  aria-invalid={errors.product ? "true" : undefined}
                />
              </label>
            )}
          </div>
          {err("product")}
          <label class="ryo-field">
            <span>Link to the agent's page</span>
            <input
              name="link"
              type="url"
              value={link}
              placeholder="https://example.com/voice-agent"
              onInput={(e) => (edited("link"), setLink((e.target as HTMLInputElement).value))}
              aria-invalid={errors.link ? "true" : undefined}
            />
          </label>
          {err("link")}
          <div class="ryo-grid">
            <label class="ryo-field">
              <span>Target region</span>
              <input
                name="region"
                list="ryo-regions"
                value={region}
                placeholder={props.regions[0] ?? REGION_PLACEHOLDER}
                onInput={(e) => (edited("region"), setRegion((e.target as HTMLInputElement).value))}
                onFocus={refreshRegions}
                aria-invalid={errors.region ? "true" : undefined}
              />
              <datalist id="ryo-regions">
                {regions.map((r) => <option key={r} value={r} />)}
              </datalist>
              <small class="muted">
                {regions.length
                  ? `Eval agents are in: ${regions.join(", ")}. Another region waits for an agent there.`
                  : "No eval agent is connected yet; the job waits until one in this region is."}
              </small>
            </label>
            {props.projects.length > 1 && (
              <label class="ryo-field">
                <span>Project</span>
                <select
                  name="project"
                  value={String(projectId)}
                  onChange={(e) => setProjectId(Number((e.target as HTMLSelectElement).value))}
                >
                  {props.projects.map((p) => <option key={p.id} value={p.id}>{p.name}</option>)}
                </select>
              </label>
            )}
          </div>
          {err("region")}
          {err("project")}
        </section>

        <StepsSection
          num={2}
          id="launch"
          title="Steps to launch it"
          hint="What the browser does on your page before the call starts: click Start, wait for the widget…"
          editor={launch}
          onChange={(e) => (edited("launch"), setLaunch(e))}
          download={{ name: "app.yaml", text: appYaml() }}
          error={err("launch")}
        />
        <StepsSection
          num={3}
          id="eval"
          title="Eval steps"
          hint="The conversation: what the caller says, when to wait for the agent's voice, when to barge in."
          editor={evals}
          onChange={(e) => (edited("eval"), setEvals(e))}
          download={{ name: "suite.yaml", text: editorYaml(evals) }}
          error={err("eval")}
        />

        <div class="ryo-submit">
          {err("form")}
          {props.signedIn
            ? (
              <button class="button primary ryo-go" type="submit" disabled={busy} data-testid="save-run">
                {busy ? "Saving…" : "Save and run"}
              </button>
            )
            : <a class="button primary ryo-go" href="/login?next=%2Frun-your-own">Log in to save and run</a>}
          <span class="muted small">
            {props.signedIn
              ? "Saves a workflow and an eval set in your project, then starts a job."
              : "Or run it locally with the CLI below."}
          </span>
        </div>
      </form>

      {job && (
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
      )}
    </div>
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

function StepsSection(
  { num, id, title, hint, editor, onChange, error, download }: {
    num: number;
    download: { name: string; text: string };
    id: "launch" | "eval";
    title: string;
    hint: string;
    editor: Editor;
    onChange: (e: Editor) => void;
    error: unknown;
  },
) {
  const toYaml = () => onChange({ ...editor, mode: "yaml", yaml: stepsToYaml(editor.steps), note: null });
  const toGuided = () => {
    const steps = yamlToSteps(editor.yaml);
    if (typeof steps === "string") onChange({ ...editor, note: steps });
    else onChange({ ...editor, mode: "guided", steps, note: null });
  };
  const setStep = (i: number, s: GuidedStep) =>
    onChange({ ...editor, steps: editor.steps.map((x, j) => j === i ? s : x) });
  const move = (i: number, d: number) => {
    const steps = [...editor.steps];
    [steps[i], steps[i + d]] = [steps[i + d], steps[i]];
    onChange({ ...editor, steps });
  };
  return (
    <section class="card ryo-section" data-section={id}>
      <div class="ryo-section-head">
        <h2>
          <span class="ryo-num">{num}</span> {title}
        </h2>
        <span class="spacer" />
        <a
          class="ryo-download small"
          href={`data:application/yaml;charset=utf-8,${encodeURIComponent(download.text)}`}
          download={download.name}
          title="voice-agent-tester format, for the local CLI"
        >
          ↓ {download.name}
        </a>
        <div class="seg" role="group" aria-label={`${title} editor`}>
          <a
            href="#"
            class={editor.mode === "guided" ? "on" : ""}
            onClick={(e) => (e.preventDefault(), editor.mode === "yaml" && toGuided())}
          >
            Guided
          </a>
          <a
            href="#"
            class={editor.mode === "yaml" ? "on" : ""}
            data-testid={`${id}-yaml-tab`}
            onClick={(e) => (e.preventDefault(), editor.mode === "guided" && toYaml())}
          >
            YAML
          </a>
        </div>
      </div>
      <p class="muted small">{hint}</p>
      {editor.mode === "guided"
        ? (
          <ol class="ryo-steps">
            {editor.steps.map((s, i) => (
              <StepRow
                key={i}
                step={s}
                first={i === 0}
                last={i === editor.steps.length - 1}
                onChange={(n) => setStep(i, n)}
                onMove={(d) => move(i, d)}
                onRemove={() => onChange({ ...editor, steps: editor.steps.filter((_, j) => j !== i) })}
              />
            ))}
            <li class="ryo-add">
              <select
                aria-label="Add a step"
                value=""
                onChange={(e) => {
                  const select = e.target as HTMLSelectElement;
                  const action = select.value as GuidedAction;
                  select.value = "";
                  if (action) onChange({ ...editor, steps: [...editor.steps, { action }] });
                }}
              >
                <option value="">+ Add a step…</option>
                {(Object.keys(GUIDED_ACTIONS) as GuidedAction[]).map((a) => (
                  <option key={a} value={a}>{GUIDED_ACTIONS[a].label}</option>
                ))}
              </select>
            </li>
          </ol>
        )
        : (
          <textarea
            class="ryo-yaml"
            name={`${id}Yaml`}
            spellcheck={false}
            rows={Math.max(8, editor.yaml.split("\n").length + 1)}
            value={editor.yaml}
            onInput={(e) =>
              onChange({ ...editor, yaml: (e.target as HTMLTextAreaElement).value, note: null })}
          />
        )}
      {editor.note && <p class="small ryo-note">{editor.note}</p>}
      {error}
    </section>
  );
}

function StepRow(
  { step, first, last, onChange, onMove, onRemove }: {
    step: GuidedStep;
    first: boolean;
    last: boolean;
    onChange: (s: GuidedStep) => void;
    onMove: (d: number) => void;
    onRemove: () => void;
  },
) {
  const fields = GUIDED_ACTIONS[step.action].fields as readonly string[];
  const num = (v: string) => v === "" ? undefined : Number(v);
  const input = (key: "selector" | "timeout" | "after_ms" | "time", label: string, placeholder: string) => (
    <label class="ryo-mini">
      <span>{label}</span>
      <input
        value={step[key] ?? ""}
        type={key === "selector" ? "text" : "number"}
        min={key === "selector" ? undefined : 0}
        placeholder={placeholder}
        onInput={(e) => {
          const v = (e.target as HTMLInputElement).value;
          onChange({ ...step, [key]: key === "selector" ? v : num(v) });
        }}
      />
    </label>
  );
  const useFile = step.file !== undefined;
  return (
    <li class="ryo-step">
      <span class="ryo-step-name">{GUIDED_ACTIONS[step.action].label}</span>
      <div class="ryo-step-fields">
        {fields.includes("selector") && input("selector", "CSS selector", "#start-call")}
        {fields.includes("say") && (
          <>
            <select
              aria-label="Phrase or audio file"
              value={useFile ? "file" : "text"}
              onChange={(e) =>
                (e.target as HTMLSelectElement).value === "file"
                  ? onChange({ ...step, text: undefined, file: step.file ?? "" })
                  : onChange({ ...step, file: undefined, text: step.text ?? "" })}
            >
              <option value="text">Phrase</option>
              <option value="file">Audio file</option>
            </select>
            <input
              class="ryo-say"
              value={(useFile ? step.file : step.text) ?? ""}
              placeholder={useFile ? "hello.wav" : "What the caller says"}
              onInput={(e) => {
                const v = (e.target as HTMLInputElement).value;
                onChange(useFile ? { ...step, file: v } : { ...step, text: v });
              }}
            />
          </>
        )}
        {fields.includes("after_ms") && input("after_ms", "into reply, ms", "300")}
        {fields.includes("measure") && (
          <label class="ryo-check">
            <input
              type="checkbox"
              checked={step.metrics === "elapsed_time"}
              onChange={(e) =>
                onChange({
                  ...step,
                  metrics: (e.target as HTMLInputElement).checked ? "elapsed_time" : undefined,
                })}
            />{" "}
            report step time
          </label>
        )}
        {fields.includes("time") && input("time", "ms", "1000")}
        {fields.includes("timeout") && input("timeout", "timeout, ms", "15000")}
      </div>
      <div class="ryo-step-tools">
        <button
          type="button"
          class="ryo-icon"
          aria-label="Move up"
          disabled={first}
          onClick={() => onMove(-1)}
        >
          ↑
        </button>
        <button
          type="button"
          class="ryo-icon"
          aria-label="Move down"
          disabled={last}
          onClick={() => onMove(1)}
        >
          ↓
        </button>
        <button type="button" class="ryo-icon" aria-label="Remove step" onClick={onRemove}>×</button>
      </div>
    </li>
  );
}
