/// <reference lib="dom" />
// One console form: its fields as described by the page, sent to one API route as JSON.
// A 400's issues are shown next to the field they name (for YAML, with the line); any other
// refusal (a plan limit, a conflict) above the button. On success the page reloads, moves
// on, or shows a secret once with a copy button. Without JavaScript the fields still render
// and say that saving needs it.
import { useState } from "preact/hooks";
import type { GuidedYaml as GuidedYamlView } from "../components/console/guided_yaml.tsx";
import { call, ConsoleApiError, fieldFor, fill, setPath } from "../components/console/client.ts";
import type { AudioChoices } from "../components/run_your_own/steps.ts";

/** One input of a console form. */
export interface FormField {
  /** Dotted path in the JSON body ("provider.name"). */
  name: string;
  label: string;
  type?: "text" | "password" | "email" | "number" | "select" | "textarea" | "checkbox" | "datetime-local";
  value?: string | number | boolean;
  options?: { value: string; label: string }[];
  required?: boolean;
  hint?: string;
  rows?: number;
  /** Send as a number. */
  number?: boolean;
  /** Leave out of the body when empty. */
  omitEmpty?: boolean;
  autocomplete?: string;
  /** A YAML text: issues below it name their line. */
  yaml?: boolean;
  /** Sent as the JSON value typed in it. */
  json?: boolean;
  /** A YAML field with a "Guided" view beside it: step rows, and the link when "link". */
  guided?: "steps" | "link";
  /** What the guided view offers a speak step: clip names and voices. */
  choices?: AudioChoices;
}

/** What happens after the API accepted the form. */
export interface FormThen {
  reload?: boolean;
  /** URL template filled from the answer, e.g. "/console/jobs/{id}". */
  redirect?: string;
  /** Show `answer[field]` once, with a copy button and optionally a command using it. */
  secret?: {
    field: string;
    title: string;
    notice: string;
    command?: string;
    /** More ways to use it (e.g. the same agent in a container), each with its own copy button. */
    more?: { label: string; command: string }[];
  };
}

export interface ConsoleFormProps {
  [key: string]: unknown;
  id: string;
  method: "POST" | "PATCH" | "PUT";
  action: string;
  submit: string;
  fields: FormField[];
  fixed?: Record<string, unknown>;
  then: FormThen;
  inline?: boolean;
  /** Extra words above the button. */
  note?: string;
}

type Errors = Record<string, string>;

export default function ConsoleForm(props: ConsoleFormProps) {
  const { id, fields } = props;
  const [values, setValues] = useState<Record<string, string | boolean>>(() =>
    Object.fromEntries(
      fields.map((f) => [f.name, f.type === "checkbox" ? Boolean(f.value) : String(f.value ?? "")]),
    )
  );
  const [errors, setErrors] = useState<Errors>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [secret, setSecret] = useState<
    { value: string; command: string | null; more: { label: string; command: string }[] } | null
  >(null);
  const [copied, setCopied] = useState<string | null>(null);
  // The guided view is loaded the first time someone opens it.
  const [guided, setGuided] = useState<{ view: typeof GuidedYamlView; field: string | null } | null>(null);
  const [guidedNote, setGuidedNote] = useState<string | null>(null);
  const openGuided = async (field: string) => {
    const m = await import("../components/console/guided_yaml.tsx");
    const g = m.guidedDoc(String(values[field]));
    if (typeof g === "string") {
      setGuidedNote(g);
      return;
    }
    setGuidedNote(null);
    setGuided({ view: m.GuidedYaml, field });
  };

  const onSubmit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setErrors({});
    setFormError(null);
    const body: Record<string, unknown> = { ...(props.fixed ?? {}) };
    for (const f of fields) {
      const v = values[f.name];
      if (f.json) {
        try {
          setPath(body, f.name, JSON.parse(String(v)));
        } catch {
          setBusy(false);
          setErrors({ [f.name]: "is not valid JSON" });
          return;
        }
        continue;
      }
      if (f.type === "checkbox") setPath(body, f.name, Boolean(v));
      else if (f.omitEmpty && v === "") continue;
      else if (f.type === "datetime-local") {
        setPath(body, f.name, v ? new Date(String(v)).toISOString() : undefined);
      } else setPath(body, f.name, f.number ? Number(v) : v);
    }
    try {
      const answer = await call<Record<string, unknown>>(props.method, props.action, body);
      const then = props.then;
      if (then.secret) {
        const value = String((answer ?? {})[then.secret.field] ?? "");
        const vars = { ...answer, secret: value, origin: location.origin };
        setSecret({
          value,
          command: then.secret.command ? fill(then.secret.command, vars) : null,
          more: (then.secret.more ?? []).map((m) => ({ label: m.label, command: fill(m.command, vars) })),
        });
        setBusy(false);
        return;
      }
      if (then.redirect) location.assign(fill(then.redirect, answer ?? {}));
      else location.reload();
    } catch (err) {
      setBusy(false);
      if (!(err instanceof ConsoleApiError)) {
        setFormError("Something went wrong; try again");
        return;
      }
      const next: Errors = {};
      const names = fields.map((f) => f.name);
      for (const issue of err.issues) {
        const f = fieldFor(issue.field, names);
        if (!f || next[f]) continue;
        const field = fields.find((x) => x.name === f)!;
        const rest = issue.field.slice(f.length + 1);
        let where = rest ? `${rest}: ` : "";
        if (field.yaml && rest) {
          try {
            const { lineOf } = await import("../components/console/yaml_line.ts");
            const line = lineOf(String(values[f]), rest);
            if (line) where = `line ${line}, ${rest}: `;
          } catch { /* the path alone still says where */ }
        }
        next[f] = `${where}${issue.message}`;
      }
      setErrors(next);
      if (!Object.keys(next).length) setFormError(err.message);
      else requestAnimationFrame(() => document.getElementById(`${id}-${Object.keys(next)[0]}`)?.focus());
    }
  };

  const copy = async (text: string, what: string) => {
    try {
      await navigator.clipboard.writeText(text);
      setCopied(what);
    } catch {
      setCopied(null);
    }
  };

  if (secret) {
    const s = props.then.secret!;
    return (
      <div class="c-secret" role="status" data-testid={`${id}-secret`}>
        <p>
          <strong>{s.title}</strong> {s.notice}
        </p>
        <div class="c-copy">
          <input
            id={`${id}-secret-value`}
            class="c-secret-value"
            readOnly
            value={secret.value}
            aria-label={s.title}
            onFocus={(e) => (e.currentTarget as HTMLInputElement).select()}
          />
          <button type="button" class="button small" onClick={() => copy(secret.value, "secret")}>
            {copied === "secret" ? "Copied" : "Copy"}
          </button>
        </div>
        {secret.command && (
          <div class="c-command">
            <pre><code data-testid={`${id}-command`}>{secret.command}</code></pre>
            <button type="button" class="button small" onClick={() => copy(secret.command!, "command")}>
              {copied === "command" ? "Copied" : "Copy command"}
            </button>
          </div>
        )}
        {secret.more.map((m, i) => (
          <div key={i}>
            <p class="c-command-label">{m.label}</p>
            <div class="c-command">
              <pre><code data-testid={`${id}-command-${i + 2}`}>{m.command}</code></pre>
              <button type="button" class="button small" onClick={() => copy(m.command, `more-${i}`)}>
                {copied === `more-${i}` ? "Copied" : "Copy command"}
              </button>
            </div>
          </div>
        ))}
        <p>
          <button type="button" class="button" onClick={() => location.reload()}>Done</button>
        </p>
      </div>
    );
  }

  return (
    <form
      id={id}
      class={props.inline ? "c-form c-form-inline" : "c-form"}
      onSubmit={onSubmit}
      noValidate
      aria-busy={busy}
    >
      {fields.map((f) => {
        const fid = `${id}-${f.name}`;
        const err = errors[f.name];
        const described = [f.hint ? `${fid}-hint` : "", err ? `${fid}-error` : ""].filter(Boolean).join(" ");
        const common = {
          id: fid,
          name: f.name,
          required: f.required,
          "aria-invalid": err ? ("true" as const) : undefined,
          "aria-describedby": described || undefined,
        };
        const v = values[f.name];
        const set = (val: string | boolean) => setValues((old) => ({ ...old, [f.name]: val }));
        let input;
        if (f.type === "select") {
          input = (
            <select
              {...common}
              value={String(v)}
              onChange={(e) => set((e.target as HTMLSelectElement).value)}
            >
              {f.options!.map((o) => <option key={o.value} value={o.value}>{o.label}</option>)}
            </select>
          );
        } else if (f.type === "textarea" && f.guided && guided?.field === f.name) {
          const View = guided.view;
          input = (
            <View id={fid} yaml={String(v)} onYaml={set} link={f.guided === "link"} choices={f.choices} />
          );
        } else if (f.type === "textarea") {
          input = (
            <textarea
              {...common}
              rows={f.rows ?? 8}
              spellcheck={false}
              value={String(v)}
              onInput={(e) => set((e.target as HTMLTextAreaElement).value)}
            />
          );
        } else if (f.type === "checkbox") {
          input = (
            <input
              {...common}
              type="checkbox"
              checked={Boolean(v)}
              onChange={(e) => set((e.target as HTMLInputElement).checked)}
            />
          );
        } else {
          input = (
            <input
              {...common}
              type={f.type ?? "text"}
              value={String(v)}
              autoComplete={f.autocomplete}
              onInput={(e) => set((e.target as HTMLInputElement).value)}
            />
          );
        }
        return (
          <div key={f.name} class={`c-field${f.type === "checkbox" ? " c-check" : ""}`}>
            <label for={fid}>{f.label}{f.required && <span aria-hidden="true">*</span>}</label>
            {f.guided && (
              <div class="seg c-mode" role="group" aria-label={`${f.label} view`}>
                <button
                  type="button"
                  class={guided?.field === f.name ? "" : "on"}
                  aria-pressed={guided?.field === f.name ? "false" : "true"}
                  data-testid={`${fid}-yaml-view`}
                  onClick={() => (setGuided((g) => g && { ...g, field: null }), setGuidedNote(null))}
                >
                  YAML
                </button>
                <button
                  type="button"
                  class={guided?.field === f.name ? "on" : ""}
                  aria-pressed={guided?.field === f.name ? "true" : "false"}
                  data-testid={`${fid}-guided-view`}
                  onClick={() => openGuided(f.name)}
                >
                  Guided
                </button>
              </div>
            )}
            {input}
            {f.guided && guidedNote && guided?.field !== f.name && <p class="small ryo-note">{guidedNote}</p>}
            {f.hint && <small id={`${fid}-hint`} class="muted">{f.hint}</small>}
            {err && <p id={`${fid}-error`} class="c-field-error">{err}</p>}
          </div>
        );
      })}
      {props.note && <p class="muted small">{props.note}</p>}
      {formError && <p class="error-box c-form-error" role="alert">{formError}</p>}
      <div class="c-form-actions">
        <button type="submit" class="button primary" disabled={busy}>
          {busy ? "Working…" : props.submit}
        </button>
      </div>
      <noscript>
        <p class="muted small">Saving needs JavaScript; the API at {props.action} does the same.</p>
      </noscript>
    </form>
  );
}
