// The metrics pages' pure helpers, without a database or a browser (pages_metrics_test.ts has those).
import assert from "node:assert/strict";
import { sortEntries } from "../components/metrics_view.ts";

Deno.test("sortEntries() puts rows without a value last in both directions", () => {
  const entry = (name: string, naturalness: number | null) => ({ providerName: name, naturalness }) as never;
  const rows = [entry("a", null), entry("b", 70), entry("c", 90), entry("d", null)];
  const names = (dir: "asc" | "desc") =>
    sortEntries(rows, "naturalness", dir).map((e: { providerName: string }) => e.providerName);
  assert.deepEqual(names("asc"), ["b", "c", "a", "d"]);
  assert.deepEqual(names("desc"), ["c", "b", "a", "d"]);
});
