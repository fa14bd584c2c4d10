/// <reference lib="dom" />
// One steps editor of /run-your-own (the launch steps or the eval steps): a guided list of
// steps or their YAML, a switch between the two, and a download in the CLI's format.
import {
  type Editor,
  GUIDED_ACTIONS,
  type GuidedAction,
  type GuidedStep,
  stepsToYaml,
  yamlToSteps,
} from "./steps.ts";

/** A numbered form section editing one list of steps; every change is handed to onChange. */
export function StepsSection(
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
