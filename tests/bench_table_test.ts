// The README's benchmark tables are bench/results.json rendered (bench/table.ts): a bench run
// that is committed without `deno task bench:table --write` fails here.
import assert from "node:assert/strict";
import { BEGIN, END, renderBenchTable, replaceSection } from "../bench/table.ts";

const root = new URL("../", import.meta.url);

Deno.test("the README's bench tables are the committed bench/results.json", async () => {
  const readme = await Deno.readTextFile(new URL("README.md", root));
  const results = JSON.parse(await Deno.readTextFile(new URL("bench/results.json", root)));
  const section = readme.slice(readme.indexOf(BEGIN) + BEGIN.length, readme.indexOf(END)).trim();
  // deno fmt re-wraps the prose line and may re-pad the tables: compare the words and cells.
  const words = (t: string) => t.replace(/\s+/g, " ").replace(/-{3,}/g, "---");
  assert.equal(words(section), words(renderBenchTable(results)));
});

Deno.test("a figure a run could not measure is a dash, never NaN or undefined", () => {
  const rendered = renderBenchTable({
    measured_at: "2026-12-01T00:00:00Z",
    quick: true,
    dispatch_p50_ms: 1.5,
  });
  assert.doesNotMatch(rendered, /NaN|undefined|null/);
  assert.match(rendered, /\(quick run\)/);
  assert.match(rendered, /1\.5 \/ — ms/);
  assert.throws(() => replaceSection("no markers here", rendered), /bench:table/);
});
