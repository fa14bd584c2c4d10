/// <reference lib="dom" />
// The /run-your-own form. Everything it does is a call to /api/v1: it saves a workflow (the
// launch steps) and an eval set (the eval steps), runs them as a job and hands the job to
// the job panel. A product run from here before is updated in place (or saved as a new pair,
// if the user asks), so repeated runs don't fill the plan's workflow limit. Validation is the API's: a 400 names the field, and the message is shown
// next to that field. The pieces live in components/run_your_own/: the API client, the
// steps and their YAML, the steps editor and the job panel.
import { useState } from "preact/hooks";
import { api, ApiError, type Field, fieldOf } from "../components/run_your_own/api.ts";
import { JobPanel, type StartedJob } from "../components/run_your_own/job_panel.tsx";
import {
  DEFAULT_EVAL,
  DEFAULT_LAUNCH,
  type Editor,
  editorFromYaml,
  editorOf,
  editorYaml,
  stepsToYaml,
} from "../components/run_your_own/steps.ts";
import { StepsSection } from "../components/run_your_own/steps_editor.tsx";

export interface RunYourOwnProps {
  [key: string]: unknown;
  signedIn: boolean;
  providers: { id: string; name: string; sku: number }[];
  /** Regions that have eval agents. */
  regions: string[];
  /** The signed-in user's projects (empty when signed out). */
  projects: { id: number; name: string }[];
  /** Pairs this page saved before ("<name> · launch" + "<name> · eval"), newest first. */
  saved?: SavedPair[];
}

/** A workflow and eval set /run-your-own saved for a product, with what they hold. */
export interface SavedPair {
  name: string;
  projectId: number;
  providerId: string;
  workflowId: number;
  evalSetId: number;
  link: string;
  launchYaml: string;
  evalYaml: string;
}

const REGION_PLACEHOLDER = "e.g. eu-west";

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
  const [job, setJob] = useState<StartedJob | null>(null);
  const [saved, setSaved] = useState<SavedPair[]>(props.saved ?? []);
  const [reuse, setReuse] = useState<"update" | "new">("update");

  // A field's message goes as soon as the field is edited: it spoke of the old value.
  const edited = (f: Field) => errors[f] && setErrors((e) => ({ ...e, [f]: undefined, form: undefined }));
  const appYaml = () => {
    const steps = editorYaml(launch).trimEnd();
    return link.trim() ? `${steps}\nurl: ${JSON.stringify(link.trim())}\n` : `${steps}\n`;
  };
  const choices = props.providers.filter((p) => p.sku === sku);
  const picked = props.providers.find((p) => p.id === providerId && p.sku === sku);
  /** The pair saved before for a product (picked by id, or typed by name) in the project. */
  const savedFor = (pid: string | null, name: string) =>
    projectId === null ? undefined : saved.find((s) =>
      s.projectId === projectId &&
      (pid ? s.providerId === pid : name !== "" && s.name.toLowerCase() === name.toLowerCase())
    );
  const match = savedFor(picked?.id ?? null, productName.trim());
  const load = (s: SavedPair) => {
    setLink(s.link);
    setLaunch(editorFromYaml(s.launchYaml));
    setEvals(editorFromYaml(s.evalYaml));
    setErrors({});
  };
  // Untouched fields take a picked product's saved steps at once; edited ones wait for "Load".
  const pristine = () =>
    link === "" && editorYaml(launch) === stepsToYaml(DEFAULT_LAUNCH) &&
    editorYaml(evals) === stepsToYaml(DEFAULT_EVAL);

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
    const launchYaml = appYaml();
    const evalYaml = editorYaml(evals);
    try {
      let pair: SavedPair;
      if (match && reuse === "update") {
        // The saved pair takes the form's steps: no new workflow or eval set.
        await api("PATCH", `/api/v1/workflows/${match.workflowId}`, { yaml: launchYaml });
        call = "evalSet";
        await api("PATCH", `/api/v1/eval-sets/${match.evalSetId}`, { yaml: evalYaml });
        pair = match;
      } else {
        const workflow = await api<{ id: number; provider: { id: string } }>("POST", "/api/v1/workflows", {
          projectId,
          name: `${name} · launch`,
          provider: picked ? { id: picked.id } : { name, sku },
          yaml: launchYaml,
        });
        created.push(`/api/v1/workflows/${workflow.id}`);
        call = "evalSet";
        const evalSet = await api<{ id: number }>("POST", "/api/v1/eval-sets", {
          projectId,
          name: `${name} · eval`,
          yaml: evalYaml,
        });
        created.push(`/api/v1/eval-sets/${evalSet.id}`);
        pair = {
          name,
          projectId,
          providerId: workflow.provider.id,
          workflowId: workflow.id,
          evalSetId: evalSet.id,
          link: "",
          launchYaml: "",
          evalYaml: "",
        };
      }
      call = "run";
      const started = await api<StartedJob>("POST", `/api/v1/workflows/${pair.workflowId}/run`, {
        evalSetId: pair.evalSetId,
        region: region.trim(),
      });
      // The next run of this product updates this pair.
      const stored = { ...pair, link: link.trim(), launchYaml: editorYaml(launch), evalYaml };
      setSaved((all) => [stored, ...all.filter((s) => s.workflowId !== pair.workflowId)]);
      setReuse("update");
      setJob(started);
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
                onChange={(e) => {
                  const id = (e.target as HTMLSelectElement).value;
                  setProviderId(id);
                  const before = savedFor(id === "new" ? null : id, "");
                  if (before && pristine()) load(before);
                }}
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
          {match && (
            <div class="ryo-saved" data-testid="saved-pair">
              <p>
                You ran <strong>{match.name}</strong> from here before: its{" "}
                <a href={`/console/workflows/${match.workflowId}`}>workflow</a> and{" "}
                <a href={`/console/eval-sets/${match.evalSetId}`}>eval set</a> are saved.{" "}
                <button
                  type="button"
                  class="button small"
                  data-testid="load-saved"
                  onClick={() => load(match)}
                >
                  Load its steps
                </button>
              </p>
              <div class="ryo-saved-choice" role="radiogroup" aria-label="Saving">
                <label>
                  <input
                    type="radio"
                    name="reuse"
                    value="update"
                    checked={reuse === "update"}
                    onChange={() => setReuse("update")}
                  />{" "}
                  Update them with this form
                </label>
                <label>
                  <input
                    type="radio"
                    name="reuse"
                    value="new"
                    checked={reuse === "new"}
                    onChange={() => setReuse("new")}
                  />{" "}
                  Save as a new workflow and eval set
                </label>
              </div>
            </div>
          )}
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
              ? match && reuse === "update"
                ? `Updates ${match.name}'s saved workflow and eval set, then starts a job.`
                : "Saves a workflow and an eval set in your project, then starts a job."
              : "Or run it locally with the CLI below."}
          </span>
        </div>
      </form>

      {job && <JobPanel key={job.id} start={job} onStarted={setJob} />}
    </div>
  );
}
