/// <reference lib="dom" />
// One console action on one thing (delete, revoke, cancel, duplicate, run now): a button
// that, when the action destroys something, first says what it will remove and asks again.
// Then it calls the API and reloads the page or moves on; a refusal is shown beside it.
import { useEffect, useRef, useState } from "preact/hooks";
import { call, ConsoleApiError, fill } from "../components/console/client.ts";

export interface ConsoleActionProps {
  [key: string]: unknown;
  label: string;
  method: "POST" | "PATCH" | "PUT" | "DELETE";
  action: string;
  body?: Record<string, unknown>;
  /** When set, the first press shows this and a confirm button. */
  confirm?: string;
  danger?: boolean;
  /** URL template filled from the answer; the page reloads otherwise. */
  redirect?: string;
}

export default function ConsoleAction(props: ConsoleActionProps) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const confirmRef = useRef<HTMLButtonElement>(null);

  useEffect(() => {
    if (asking) confirmRef.current?.focus();
  }, [asking]);

  const run = async () => {
    setBusy(true);
    setError(null);
    try {
      const answer = await call<Record<string, unknown> | null>(props.method, props.action, props.body);
      if (props.redirect) location.assign(fill(props.redirect, answer ?? {}));
      else location.reload();
    } catch (err) {
      setBusy(false);
      setAsking(false);
      setError(err instanceof ConsoleApiError ? err.message : "Something went wrong; try again");
    }
  };

  const cls = `button small${props.danger ? " danger" : ""}`;
  return (
    <span class="c-action" data-label={props.label}>
      {asking
        ? (
          <span class="c-confirm" role="group" aria-label={`Confirm: ${props.label}`}>
            <span class="c-confirm-text">{props.confirm}</span>
            <button ref={confirmRef} type="button" class={cls} disabled={busy} onClick={run}>
              {busy ? "Working…" : `Yes, ${props.label.toLowerCase()}`}
            </button>
            <button type="button" class="button small" disabled={busy} onClick={() => setAsking(false)}>
              Keep it
            </button>
          </span>
        )
        : (
          <button
            type="button"
            class={cls}
            disabled={busy}
            onClick={() => (props.confirm ? setAsking(true) : run())}
          >
            {busy ? "Working…" : props.label}
          </button>
        )}
      {error && <span class="c-action-error" role="alert">{error}</span>}
    </span>
  );
}
