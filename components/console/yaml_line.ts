// Where a YAML validation issue points: the 1-based line of the value at a path such as
// "steps.2.action" in the text the user typed, so the error can be shown at that line.
import { LineCounter, parseDocument } from "yaml";

/** The line of `path` (dot-separated keys and indexes) in `text`, or null if not found. */
export function lineOf(text: string, path: string): number | null {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter });
  const keys = path.split(".").filter(Boolean).map((k) => (/^\d+$/.test(k) ? Number(k) : k));
  for (let n = keys.length; n >= 0; n--) {
    const node = n === 0
      ? doc.contents
      : doc.getIn(keys.slice(0, n), true) as { range?: number[] } | undefined;
    const range = (node as { range?: number[] } | null | undefined)?.range;
    if (range) return counter.linePos(range[0]).line;
  }
  return null;
}
