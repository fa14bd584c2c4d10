/**
 * The result view's receipts (issue 13): the SHA-256 of the stored report and of each
 * recording, as GET /api/v1/results/{id} returns them, with how to check them. Server-rendered
 * only: each hash selects whole on one click or tap, so it copies without JavaScript.
 */
import { Fragment } from "preact";
import { Section } from "./ui.tsx";

/** The receipts section of one result; `recordings` are its audio artifacts, in upload order. */
export function Receipts(
  { reportSha256, recordings }: {
    reportSha256: string | null;
    recordings: readonly { name: string; sha256: string }[];
  },
) {
  return (
    <Section title="Receipts">
      <dl class="c-dl" data-testid="receipts">
        <dt>Report</dt>
        <dd>
          <code class="c-hash" data-receipt="report">{reportSha256 ?? "—"}</code>
        </dd>
        {recordings.map((a) => (
          <Fragment key={a.name}>
            <dt>{a.name}</dt>
            <dd>
              <code class="c-hash" data-receipt={a.name}>{a.sha256}</code>
            </dd>
          </Fragment>
        ))}
      </dl>
      <p class="muted small">
        SHA-256, recorded when the result was stored. {recordings[0] && (
          <>
            Check a download with <code>sha256sum {recordings[0].name}</code>;{" "}
          </>
        )}
        <code>deno task verify</code>{" "}
        on the server re-checks them and re-derives every turn from its recording.
      </p>
    </Section>
  );
}
