/// <reference lib="dom" />
// The console's guided view of a workflow's or eval set's YAML: the step rows of /run-your-own
// (one row per step, move, remove, add) and, for a workflow, its link. It edits the same YAML
// text the form sends; keys the rows have no place for (tags, html, …) are kept as they are.
// Loaded only when someone opens it, so pages that never do don't carry the YAML library.
import { parse, stringify } from "yaml";
import { type AudioChoices, type GuidedStep, stepsToYaml, yamlToSteps } from "../run_your_own/steps.ts";
import { StepList } from "../run_your_own/steps_editor.tsx";

/** A document the rows can show (its other keys and its steps), or why they cannot. */
export function guidedDoc(text: string): { doc: Record<string, unknown>; steps: GuidedStep[] } | string {
  let doc: unknown;
  try {
    doc = parse(text) ?? {};
  } catch {
    return "The YAML does not parse; fix it here first.";
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    return "The YAML is not a mapping with steps.";
  }
  const steps = yamlToSteps(stringify({ steps: (doc as { steps?: unknown }).steps ?? [] }));
  if (typeof steps === "string") return steps;
  return { doc: doc as Record<string, unknown>, steps };
}

/** The document with these steps (and link, when given), its other keys untouched. */
export function withSteps(doc: Record<string, unknown>, steps: GuidedStep[], url?: string): string {
  const out: Record<string, unknown> = { ...doc };
  if (url !== undefined) {
    if (url.trim()) out.url = url.trim();
    else delete out.url;
  }
  out.steps = (parse(stepsToYaml(steps)) as { steps: unknown[] }).steps;
  return stringify(out, { lineWidth: 0 });
}

/** The rows for `yaml` (offering `choices` for speak steps); every change hands the new YAML to onYaml. */
export function GuidedYaml(
  { id, yaml, onYaml, link, choices }: {
    id: string;
    yaml: string;
    onYaml: (yaml: string) => void;
    link: boolean;
    choices?: AudioChoices;
  },
) {
  const g = guidedDoc(yaml);
  if (typeof g === "string") return <p class="small ryo-note">{g}</p>;
  const url = typeof g.doc.url === "string" ? g.doc.url : "";
  const others = Object.keys(g.doc).filter((k) => k !== "steps" && k !== "url");
  return (
    <div class="c-guided" data-testid={`${id}-guided`}>
      {link && (
        <div class="c-field">
          <label for={`${id}-url`}>Link to the agent's page</label>
          <input
            id={`${id}-url`}
            type="url"
            value={url}
            placeholder="https://example.com/voice-agent"
            onInput={(e) => onYaml(withSteps(g.doc, g.steps, (e.target as HTMLInputElement).value))}
          />
        </div>
      )}
      <StepList
        steps={g.steps}
        onSteps={(steps) => onYaml(withSteps(g.doc, steps))}
        choices={choices}
        listId={id}
      />
      {others.length > 0 && (
        <p class="muted small">Also in this document, kept as they are: {others.join(", ")}.</p>
      )}
    </div>
  );
}
