/// <reference lib="dom" />
// One steps editor of /run-your-own (the launch steps or the eval steps): a guided list of
// steps or their YAML, a switch between the two, and a download in the CLI's format.
import { useState } from "preact/hooks";
import {
  type AudioChoices,
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
        ? <StepList steps={editor.steps} onSteps={(steps) => onChange({ ...editor, steps })} />
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

/**
 * The guided steps: one row per step (its fields, move up/down, remove) and "add a step".
 * With `choices`, a speak or barge-in step offers those clip names for its file and those
 * voices for its phrase (datalists named after `listId`, so two lists on a page stay apart).
 */
export function StepList(
  { steps, onSteps, choices, listId = "steps" }: {
    steps: GuidedStep[];
    onSteps: (steps: GuidedStep[]) => void;
    choices?: AudioChoices;
    listId?: string;
  },
) {
  const lists = choices && { files: `${listId}-audio-files`, voices: `${listId}-voices` };
  const setStep = (i: number, s: GuidedStep) => onSteps(steps.map((x, j) => j === i ? s : x));
  const move = (i: number, d: number) => {
    const next = [...steps];
    [next[i], next[i + d]] = [next[i + d], next[i]];
    onSteps(next);
  };
  return (
    <ol class="ryo-steps">
      {steps.map((s, i) => (
        <StepRow
          key={i}
          step={s}
          first={i === 0}
          last={i === steps.length - 1}
          lists={lists}
          onChange={(n) => setStep(i, n)}
          onMove={(d) => move(i, d)}
          onRemove={() => onSteps(steps.filter((_, j) => j !== i))}
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
            if (action) onSteps([...steps, { action }]);
          }}
        >
          <option value="">+ Add a step…</option>
          {(Object.keys(GUIDED_ACTIONS) as GuidedAction[]).map((a) => (
            <option key={a} value={a}>{GUIDED_ACTIONS[a].label}</option>
          ))}
        </select>
        {choices && lists && (
          <>
            <datalist id={lists.files} data-testid={lists.files}>
              {choices.clips.map((n) => <option key={`p-${n}`} value={n} label="project clip" />)}
              {choices.library.map((n) => <option key={`l-${n}`} value={n} label="library" />)}
            </datalist>
            <datalist id={lists.voices} data-testid={lists.voices}>
              {choices.voices.map((v) => <option key={v} value={v} />)}
            </datalist>
          </>
        )}
      </li>
    </ol>
  );
}

function StepRow(
  { step, first, last, lists, onChange, onMove, onRemove }: {
    step: GuidedStep;
    lists?: { files: string; voices: string };
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
  // A step with neither a phrase nor a file yet (just switched, or new) keeps the choice made
  // here: the console's guided view rebuilds its steps from YAML, where an empty value is dropped.
  const [say, setSay] = useState<"text" | "file">("text");
  const useFile = step.file !== undefined ? true : step.text !== undefined ? false : say === "file";
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
              onChange={(e) => {
                const to = (e.target as HTMLSelectElement).value === "file" ? "file" : "text";
                setSay(to);
                onChange(
                  to === "file"
                    ? { ...step, text: undefined, voice: undefined, file: step.file ?? "" }
                    : { ...step, file: undefined, text: step.text ?? "" },
                );
              }}
            >
              <option value="text">Phrase</option>
              <option value="file">Audio file</option>
            </select>
            <input
              class="ryo-say"
              aria-label={useFile ? "Audio file name" : "Phrase"}
              list={useFile ? lists?.files : undefined}
              value={(useFile ? step.file : step.text) ?? ""}
              placeholder={useFile ? "hello.wav" : "What the caller says"}
              onInput={(e) => {
                const v = (e.target as HTMLInputElement).value;
                onChange(useFile ? { ...step, file: v } : { ...step, text: v });
              }}
            />
            {!useFile && lists && (
              <label class="ryo-mini">
                <span>voice</span>
                <input
                  class="ryo-voice"
                  list={lists.voices}
                  value={step.voice ?? ""}
                  placeholder="en-us"
                  onInput={(e) =>
                    onChange({ ...step, voice: (e.target as HTMLInputElement).value || undefined })}
                />
              </label>
            )}
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
