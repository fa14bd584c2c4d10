// safeNext() against the browser's own URL resolution: whatever `next` is, the path it returns
// resolves to the origin it is served from.
import assert from "node:assert/strict";
import fc from "fast-check";
import { safeNext } from "../lib/auth/redirects.ts";

const ORIGINS = ["http://vox.test", "https://vox.example:8443"];
// Where a Location header may be resolved from: the site's root and a page deep inside it.
const BASES = ORIGINS.flatMap((o) => [o, `${o}/login`, `${o}/a/b/page?x=1`]);

/** Whether a browser following `Location: <path>` from `base` stays on base's origin. */
function staysHome(path: string, base: string): boolean {
  return new URL(path, base).origin === new URL(base).origin;
}

// Pieces attackers combine: separators the parser rewrites, encodings, hosts and schemes.
const piece = fc.constantFrom(
  "/",
  "\\",
  "\t",
  "\n",
  "\r",
  " ",
  "\u0000",
  "\u001f",
  "\u007f",
  "%09",
  "%0a",
  "%2f",
  "%2F",
  "%5c",
  ".",
  "..",
  "./",
  "evil.com",
  "@",
  ":",
  "//",
  "http:",
  "https://evil.com",
  "javascript:",
  "\u3002",
  "\uff0f",
  "?",
  "#",
  "a",
);
const crafted = fc.array(piece, { maxLength: 10 }).map((parts) => parts.join(""));
const anyNext = fc.oneof(crafted, fc.string({ unit: "binary", maxLength: 40 }), fc.webPath());

Deno.test("safeNext() keeps every redirect on the origin it is served from", () => {
  fc.assert(
    fc.property(anyNext, (next) => {
      const out = safeNext(next, "/");
      assert.ok(out.startsWith("/") && !out.startsWith("//"), JSON.stringify(out));
      for (const base of BASES) {
        assert.ok(staysHome(out, base), `${JSON.stringify(next)} → ${out} from ${base}`);
      }
    }),
    { numRuns: 5000 },
  );
});

Deno.test("safeNext() returns what the browser would request, so the header holds what was checked", () => {
  fc.assert(
    fc.property(anyNext, (next) => {
      const out = safeNext(next, "/fallback");
      if (out === "/fallback") return;
      const url = new URL(out, ORIGINS[0]);
      assert.equal(url.pathname + url.search + url.hash, out);
    }),
    { numRuns: 2000 },
  );
});

Deno.test("known open-redirect shapes fall back; ordinary paths pass", () => {
  const attacks = [
    "/\t/evil.com",
    "\t/evil.com",
    "/\n/evil.com",
    "/\r\n/evil.com",
    "/\\evil.com",
    "\\/evil.com",
    "//evil.com",
    "///evil.com",
    "/ /evil.com",
    "/\u0000/evil.com",
    " //evil.com",
    "/.//evil.com",
    "/..//evil.com",
    "https://evil.com",
    "javascript:alert(1)",
    "evil.com",
  ];
  for (const next of attacks) {
    const out = safeNext(next, "/");
    for (const base of BASES) assert.ok(staysHome(out, base), JSON.stringify(next));
    assert.equal(out, "/", JSON.stringify(next));
  }
  // `next=%09/evil.com` arrives decoded; encoded forms that survive stay paths on this origin.
  assert.equal(safeNext(decodeURIComponent("%09/evil.com"), "/"), "/");
  assert.equal(safeNext("/%09/evil.com", "/"), "/%09/evil.com");
  assert.equal(safeNext("/jobs/12?tab=turns#t3", "/"), "/jobs/12?tab=turns#t3");
  assert.equal(safeNext("/a/../b", "/"), "/b");
  assert.equal(safeNext(undefined, "/home"), "/home");
});
