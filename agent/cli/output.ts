/** Output of verdicts for people and CI: a table, JSON, JUnit XML or a Markdown summary. */
import type { Summary } from "../stats.ts";
import type { Measurement } from "./measurement.ts";
import { type Evaluation, exitCode, statusOf } from "./verdict.ts";

/** The formats of `--format`. */
export const FORMATS = ["table", "json", "junit", "markdown"] as const;
export type Format = typeof FORMATS[number];

const n = (v: number | null | undefined, unit = "") => v == null ? "—" : `${v}${unit}`;
const MARK = { passed: "✓ passed", failed: "✗ failed", error: "! could not run" } as const;

function metricRows(m: Measurement): string[][] {
  const row = (
    name: string,
    s: Summary,
  ) => [name, n(s.median, " ms"), n(s.p90, " ms"), n(s.sd, " ms"), `${s.n}`];
  return [row("response latency", m.response), row("interrupt latency", m.interrupt)];
}

function scores(m: Measurement): string {
  const failed = m.turns.filter((t) => !t.ok).length;
  return `turns ${m.turns.length} (failed ${failed}), noise reduction ${n(m.noiseReduction)}, ` +
    `network resilience ${n(m.networkResilience)}, naturalness ${n(m.naturalness)}`;
}

function pad(rows: string[][]): string[] {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => [...r[i]].length)));
  return rows.map((r) => r.map((c, i) => c + " ".repeat(widths[i] - [...c].length)).join("  ").trimEnd());
}

/** Plain text for a terminal or a CI log. */
export function table(evs: Evaluation[]): string {
  const out: string[] = [];
  for (const ev of evs) {
    out.push(`${ev.title}: ${MARK[statusOf(ev)]}`);
    if (ev.measurement) {
      if (ev.measurement.link) out.push(`  ${ev.measurement.link}`);
      for (const l of pad([["", "median", "p90", "sd", "n"], ...metricRows(ev.measurement)])) {
        out.push(`  ${l}`);
      }
      out.push(`  ${scores(ev.measurement)}`);
    }
    for (const g of ev.gates) out.push(`  ${g.failed ? "✗" : "✓"} ${g.message}`);
    if (ev.baseline) {
      out.push(`  baseline ${ev.baseline.label}:`);
      for (const k of ev.baseline.kinds) {
        out.push(
          `    ${
            k.test.verdict === "regression" ? "✗" : "✓"
          } ${k.kind}: ${k.test.verdict}; ${k.test.summary}`,
        );
      }
    }
    if (ev.error) out.push(`  ! ${ev.error}`);
  }
  return out.join("\n") + "\n";
}

/** Machine-readable verdicts. */
export function json(evs: Evaluation[]): string {
  return JSON.stringify(
    {
      status: ["passed", "failed", "error"][exitCode(evs)],
      exitCode: exitCode(evs),
      evaluations: evs.map((ev) => ({ ...ev, status: statusOf(ev) })),
    },
    null,
    2,
  ) + "\n";
}

const esc = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/**
 * JUnit XML as CI tools read it (testsuites › testsuite › testcase › failure/error, with counts):
 * one suite per job or report, one test case per gate and per baseline comparison, and one
 * "run" case (an error when the job could not run).
 */
export function junit(evs: Evaluation[]): string {
  const suites: string[] = [];
  let tests = 0, failures = 0, errors = 0;
  for (const ev of evs) {
    const cases: string[] = [];
    let f = 0, e = 0;
    const tc = (cls: string, name: string, body = "") =>
      cases.push(`    <testcase classname="${esc(cls)}" name="${esc(name)}" time="0">${body}</testcase>`);
    if (ev.error && !ev.measurement) {
      e++;
      tc("vox.run", "run", `<error type="could_not_run" message="${esc(ev.error)}">${esc(ev.error)}</error>`);
    } else {
      tc("vox.run", "run");
      if (ev.error) {
        e++;
        tc("vox.baseline", "baseline", `<error type="could_not_judge" message="${esc(ev.error)}"/>`);
      }
    }
    for (const g of ev.gates) {
      if (g.failed) f++;
      tc("vox.gates", g.gate.text, g.failed ? `<failure type="threshold" message="${esc(g.message)}"/>` : "");
    }
    for (const k of ev.baseline?.kinds ?? []) {
      if (k.test.verdict === "insufficient") continue;
      const bad = k.test.verdict === "regression";
      if (bad) f++;
      tc(
        "vox.baseline",
        `${k.kind} latency vs ${ev.baseline!.label}`,
        bad
          ? `<failure type="regression" message="${esc(k.test.summary)}"/>`
          : `<system-out>${esc(k.test.summary)}</system-out>`,
      );
    }
    tests += cases.length;
    failures += f;
    errors += e;
    suites.push(
      `  <testsuite name="${
        esc(ev.title)
      }" tests="${cases.length}" failures="${f}" errors="${e}" skipped="0" time="0">\n` +
        cases.join("\n") + "\n  </testsuite>",
    );
  }
  return `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<testsuites name="vox" tests="${tests}" failures="${failures}" errors="${errors}" time="0">\n` +
    suites.join("\n") + "\n</testsuites>\n";
}

/** A Markdown summary (GitHub's job summary): verdict, metrics table, gates, baseline, link. */
export function markdown(evs: Evaluation[]): string {
  const out: string[] = [];
  const icon = { passed: "✅", failed: "❌", error: "⚠️" } as const;
  for (const ev of evs) {
    const s = statusOf(ev);
    out.push(`### ${icon[s]} Vox: ${ev.title} — ${MARK[s].slice(2)}`, "");
    if (ev.measurement) {
      out.push("| metric | median | p90 | sd | n |", "| --- | ---: | ---: | ---: | ---: |");
      for (const r of metricRows(ev.measurement)) out.push(`| ${r.join(" | ")} |`);
      out.push("", scores(ev.measurement), "");
    }
    if (ev.gates.length) {
      out.push("| gate | value | |", "| --- | ---: | --- |");
      for (const g of ev.gates) {
        out.push(`| \`${g.gate.text}\` | ${n(g.actual)} | ${g.failed ? "❌ failed" : "✅ passed"} |`);
      }
      out.push("");
    }
    if (ev.baseline) {
      out.push(`Baseline ${ev.baseline.label} (one-sided Mann-Whitney U, Hodges-Lehmann shift):`, "");
      for (const k of ev.baseline.kinds) out.push(`- **${k.kind}**: ${k.test.verdict} — ${k.test.summary}`);
      out.push("");
    }
    if (ev.error) out.push(`> ${ev.error}`, "");
    if (ev.measurement?.link) out.push(`[${ev.measurement.label}](${ev.measurement.link})`, "");
  }
  return out.join("\n");
}

/** The verdicts in `format`. */
export function render(evs: Evaluation[], format: Format): string {
  return { table, json, junit, markdown }[format](evs);
}
