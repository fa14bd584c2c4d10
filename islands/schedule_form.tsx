/// <reference lib="dom" />
// A new schedule: which pair, where, once or recurring. A recurring cron is previewed as it is
// typed: in words when it is a common shape, and always as the next five runs in the chosen
// time zone (croner, the library the server schedules with). The API's 400s show at the field.
import { Cron } from "croner";
import { useEffect, useState } from "preact/hooks";
import { call, ConsoleApiError, fieldFor } from "../components/console/client.ts";

export interface ScheduleFormProps {
  [key: string]: unknown;
  workflows: { id: number; name: string }[];
  evalSets: { id: number; name: string }[];
  regions: string[];
}

/** The next `n` runs of a cron in a time zone, or the reason there are none. */
export function nextRuns(expr: string, tz: string, n = 5): Date[] | string {
  if (expr.trim().split(/\s+/).length !== 5) return "needs exactly 5 fields: minute hour day month weekday";
  try {
    return new Cron(expr, { timezone: tz, mode: "5-part", paused: true }).nextRuns(n);
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

/** Common cron shapes in words; null for anything else (the run list still explains it). */
export function cronWords(expr: string): string | null {
  const f = expr.trim().split(/\s+/);
  if (f.length !== 5) return null;
  const [m, h, dom, mon, dow] = f;
  const rest = dom === "*" && mon === "*";
  const at = (hh: string, mm: string) => `${hh.padStart(2, "0")}:${mm.padStart(2, "0")}`;
  if (f.every((x) => x === "*")) return "every minute";
  if (/^\*\/\d+$/.test(m) && h === "*" && rest && dow === "*") return `every ${m.slice(2)} minutes`;
  if (/^\d+$/.test(m) && h === "*" && rest && dow === "*") return `every hour at minute ${m}`;
  if (/^\d+$/.test(m) && /^\*\/\d+$/.test(h) && rest && dow === "*") {
    return `every ${h.slice(2)} hours at minute ${m}`;
  }
  if (/^\d+$/.test(m) && /^\d+$/.test(h) && rest && dow === "*") return `every day at ${at(h, m)}`;
  if (/^\d+$/.test(m) && /^\d+$/.test(h) && rest && dow === "1-5") return `weekdays at ${at(h, m)}`;
  return null;
}

const FIELDS = [
  "workflowId",
  "evalSetId",
  "region",
  "scheduleType",
  "cronExpression",
  "timezone",
  "runAt",
  "maxRuns",
];

export default function ScheduleForm(props: ScheduleFormProps) {
  const browserTz = typeof Intl !== "undefined" ? Intl.DateTimeFormat().resolvedOptions().timeZone : "UTC";
  const [v, setV] = useState({
    workflowId: String(props.workflows[0]?.id ?? ""),
    evalSetId: String(props.evalSets[0]?.id ?? ""),
    region: props.regions[0] ?? "",
    scheduleType: "recurring",
    cronExpression: "0 * * * *",
    timezone: "UTC",
    runAt: "",
    maxRuns: "",
  });
  // The server renders UTC; once in the browser, the user's own zone.
  useEffect(() => setV((old) => ({ ...old, timezone: browserTz })), []);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [formError, setFormError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const tz = v.timezone;
  const set = (k: keyof typeof v) => (e: Event) => setV({ ...v, [k]: (e.target as HTMLInputElement).value });

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setErrors({});
    setFormError(null);
    const body: Record<string, unknown> = {
      workflowId: Number(v.workflowId),
      evalSetId: Number(v.evalSetId),
      region: v.region,
      scheduleType: v.scheduleType,
      timezone: tz,
      ...(v.scheduleType === "recurring"
        ? { cronExpression: v.cronExpression }
        : { runAt: v.runAt ? new Date(v.runAt).toISOString() : undefined }),
      ...(v.maxRuns ? { maxRuns: Number(v.maxRuns) } : {}),
    };
    try {
      await call("POST", "/api/v1/schedules", body);
      location.reload();
    } catch (err) {
      setBusy(false);
      if (!(err instanceof ConsoleApiError)) return setFormError("Something went wrong; try again");
      const next: Record<string, string> = {};
      for (const i of err.issues) {
        const f = fieldFor(i.field, FIELDS);
        if (f && !next[f]) next[f] = i.message;
      }
      setErrors(next);
      if (!Object.keys(next).length) setFormError(err.message);
    }
  };

  const runs = v.scheduleType === "recurring" ? nextRuns(v.cronExpression, tz) : null;
  const words = v.scheduleType === "recurring" ? cronWords(v.cronExpression) : null;
  const fmt = (d: Date) =>
    new Intl.DateTimeFormat("en-GB", {
      timeZone: tz,
      weekday: "short",
      year: "numeric",
      month: "short",
      day: "numeric",
      hour: "2-digit",
      minute: "2-digit",
    }).format(d);
  const field = (name: string, label: string, input: preact.JSX.Element, hint?: string) => (
    <div class="c-field">
      <label for={`sch-${name}`}>{label}</label>
      {input}
      {hint && <small class="muted" id={`sch-${name}-hint`}>{hint}</small>}
      {errors[name] && <p class="c-field-error" id={`sch-${name}-error`}>{errors[name]}</p>}
    </div>
  );
  const aria = (name: string) => ({
    id: `sch-${name}`,
    name,
    "aria-invalid": errors[name] ? ("true" as const) : undefined,
    "aria-describedby": errors[name] ? `sch-${name}-error` : undefined,
  });

  return (
    <form id="new-schedule" class="c-form" onSubmit={submit} noValidate>
      {field(
        "workflowId",
        "Workflow",
        <select {...aria("workflowId")} value={v.workflowId} onChange={set("workflowId")}>
          {props.workflows.map((w) => <option key={w.id} value={String(w.id)}>{w.name}</option>)}
        </select>,
      )}
      {field(
        "evalSetId",
        "Eval set",
        <select {...aria("evalSetId")} value={v.evalSetId} onChange={set("evalSetId")}>
          {props.evalSets.map((w) => <option key={w.id} value={String(w.id)}>{w.name}</option>)}
        </select>,
      )}
      {field("region", "Region", <input {...aria("region")} value={v.region} onInput={set("region")} />)}
      {field(
        "scheduleType",
        "Runs",
        <select {...aria("scheduleType")} value={v.scheduleType} onChange={set("scheduleType")}>
          <option value="recurring">Recurring (cron)</option>
          <option value="once">Once</option>
        </select>,
      )}
      {v.scheduleType === "recurring"
        ? field(
          "cronExpression",
          "Cron",
          <input {...aria("cronExpression")} value={v.cronExpression} onInput={set("cronExpression")} />,
          "minute hour day month weekday, e.g. */15 * * * * or 0 9 * * 1-5",
        )
        : field(
          "runAt",
          "When",
          <input {...aria("runAt")} type="datetime-local" value={v.runAt} onInput={set("runAt")} />,
        )}
      {field(
        "timezone",
        "Time zone",
        <input
          {...aria("timezone")}
          value={tz}
          onInput={set("timezone")}
        />,
        "An IANA zone; your browser's is filled in",
      )}
      {field(
        "maxRuns",
        "Stop after (runs, optional)",
        <input {...aria("maxRuns")} type="number" min={1} value={v.maxRuns} onInput={set("maxRuns")} />,
      )}
      {runs !== null && (
        <div class="c-preview" aria-live="polite" data-testid="cron-preview">
          {typeof runs === "string" ? <p class="c-field-error">{runs}</p> : (
            <>
              {words && (
                <p>
                  <strong>{words[0].toUpperCase() + words.slice(1)}</strong> ({tz})
                </p>
              )}
              <p class="muted small">Next five runs in {tz}:</p>
              <ol>{runs.map((d) => <li key={d.getTime()}>{fmt(d)}</li>)}</ol>
            </>
          )}
        </div>
      )}
      {formError && <p class="error-box" role="alert">{formError}</p>}
      <div class="c-form-actions">
        <button class="button primary" type="submit" disabled={busy}>
          {busy ? "Working…" : "Create schedule"}
        </button>
      </div>
    </form>
  );
}
