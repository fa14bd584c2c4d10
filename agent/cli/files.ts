/**
 * Application and scenario files as `vox push` reads them: parsed with positions, validated
 * with the shared schemas of agent/format.ts (the ones the server applies), and every problem
 * reported as `file:line:column: field: message`.
 */
import { basename, extname } from "node:path";
import { isNode, LineCounter, parseDocument } from "yaml";
import type { z } from "zod";
import { applicationSchema, scenarioSchema, toYaml } from "../format.ts";
import { CliError } from "./errors.ts";

/** What a file configures: a workflow (application) or an eval set (scenario). */
export type FileKind = "workflow" | "eval_set";

/** A validated file. */
export interface ConfigFile {
  path: string;
  kind: FileKind;
  /** The item name: the file name without its extension. */
  name: string;
  /** The config as the schema output it (what the server stores). */
  config: Record<string, unknown>;
  text: string;
}

/** An application has `url` or `html`; anything else is a scenario. */
export function kindOf(doc: Record<string, unknown>): FileKind {
  return "url" in doc || "html" in doc ? "workflow" : "eval_set";
}

/** Reads and validates a file; every problem at once, in a CliError. */
export async function loadConfigFile(path: string, kind?: FileKind): Promise<ConfigFile> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new CliError(`${path}: cannot read (${(err as Error).message})`);
  }
  return validateText(path, text, kind);
}

/** Validates YAML text as an application or scenario (detected unless given). */
export function validateText(path: string, text: string, kind?: FileKind): ConfigFile {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const at = (offset: number) => {
    const p = lines.linePos(offset);
    return `${path}:${p.line}:${p.col}`;
  };
  if (doc.errors.length) {
    throw new CliError(doc.errors.map((e) => `${at(e.pos[0])}: ${e.message.split("\n")[0]}`).join("\n"));
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 50 });
  } catch (err) {
    throw new CliError(`${path}: ${(err as Error).message}`);
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) {
    throw new CliError(`${path}:1:1: the document must be a mapping (url/html, steps, tags …)`);
  }
  const k = kind ?? kindOf(value as Record<string, unknown>);
  const schema: z.ZodType = k === "workflow" ? applicationSchema : scenarioSchema;
  const checked = schema.safeParse(value);
  if (!checked.success) {
    const problems = checked.error.issues.map((issue) => {
      // The deepest node of the path that exists (a missing field points at its parent).
      let node: unknown = null;
      for (let n = issue.path.length; n >= 0 && !node; n--) {
        const p = issue.path.slice(0, n) as (string | number)[];
        node = p.length ? doc.getIn(p, true) : doc.contents;
      }
      const pos = isNode(node) && node.range ? at(node.range[0]) : `${path}:1:1`;
      const field = issue.path.length ? issue.path.join(".") : "(document)";
      return `${pos}: ${field}: ${issue.message}`;
    });
    throw new CliError(
      `${path}: not a valid ${k === "workflow" ? "application" : "scenario"} file\n${problems.join("\n")}`,
    );
  }
  return {
    path,
    kind: k,
    name: basename(path, extname(path)),
    config: checked.data as Record<string, unknown>,
    text,
  };
}

/** JSON with sorted keys: equal configs give equal text whatever their key order. */
export function canonical(v: unknown): string {
  return JSON.stringify(
    v,
    (_k, x) =>
      x && typeof x === "object" && !Array.isArray(x)
        ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0))
        : x,
  );
}

/** A line diff of two configs as YAML (`-` old, `+` new, two lines of context). */
export function configDiff(before: unknown, after: unknown): string {
  const a = toYaml(JSON.parse(canonical(before))).trimEnd().split("\n");
  const b = toYaml(JSON.parse(canonical(after))).trimEnd().split("\n");
  // Longest common subsequence table, then a walk that emits the edit script.
  const lcs = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
    }
  }
  const ops: [" " | "-" | "+", string][] = [];
  let i = 0, j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) ops.push([" ", a[i++]]), j++;
    else if (j < b.length && (i === a.length || lcs[i][j + 1] >= lcs[i + 1][j])) ops.push(["+", b[j++]]);
    else ops.push(["-", a[i++]]);
  }
  const keep = ops.map((_, k) => ops.slice(Math.max(0, k - 2), k + 3).some(([o]) => o !== " "));
  const out: string[] = [];
  ops.forEach(([o, line], k) => {
    if (keep[k]) out.push(`${o} ${line}`);
    else if (keep[k - 1]) out.push("  …");
  });
  return out.join("\n");
}
