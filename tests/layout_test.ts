// The layout's rules (STYLE.md §15), checked on the module graph Deno itself resolves with
// `deno info --json`: dependencies point one way (main.ts → routes/ → lib/ → agent/protocol.ts),
// so nothing under lib/ imports routes/, islands/ or components/; no entry point's graph of
// local modules has an import cycle; agent/ (eval agent, vox CLI) imports nothing of the server;
// the bench and the tasks do not import the tests.
import assert from "node:assert/strict";
import { join } from "node:path";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** One import of a local module: where it is written, what it resolves to, and how. */
interface Edge {
  from: string;
  to: string;
  /** 1-based line of the import in `from`. */
  line: number;
  kind: "code" | "type" | "dynamic";
}

interface InfoDependency {
  specifier: string;
  isDynamic?: boolean;
  code?: { specifier: string; span?: { start: { line: number } } };
  type?: { specifier: string; span?: { start: { line: number } } };
}

/** The repository-relative path of a file:// specifier inside the repository, else null. */
function local(specifier: string): string | null {
  if (!specifier.startsWith("file://")) return null;
  const path = decodeURIComponent(new URL(specifier).pathname);
  return path.startsWith(ROOT + "/") ? path.slice(ROOT.length + 1) : null;
}

/** Every import between local modules in the graph of `root` (an absolute path). */
async function localEdges(root: string): Promise<Edge[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "--config", join(ROOT, "deno.json"), root],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, `deno info ${root} failed:\n${new TextDecoder().decode(out.stderr)}`);
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { specifier: string; dependencies?: InfoDependency[] }[];
  };
  const edges: Edge[] = [];
  for (const m of info.modules) {
    const from = local(m.specifier);
    if (!from) continue;
    for (const d of m.dependencies ?? []) {
      const target = d.code ?? d.type;
      const to = target && local(target.specifier);
      if (!to) continue;
      const kind = d.isDynamic ? "dynamic" : d.code ? "code" : "type";
      edges.push({ from, to, line: (target.span?.start.line ?? -1) + 1, kind });
    }
  }
  return edges;
}

/** Source files under `dir` (repository-relative), recursively. */
function sourceFiles(dir: string): string[] {
  const files: string[] = [];
  for (const e of Deno.readDirSync(join(ROOT, dir))) {
    const path = `${dir}/${e.name}`;
    if (e.isDirectory) files.push(...sourceFiles(path));
    else if (/\.(ts|tsx)$/.test(e.name)) files.push(path);
  }
  return files.sort();
}

/** The direct imports of every file under `dirs`: one graph rooted at a module importing them all. */
async function importsOf(dirs: string[]): Promise<Edge[]> {
  const files = dirs.flatMap(sourceFiles);
  const root = await Deno.makeTempFile({ prefix: "vox-layout-", suffix: ".ts" });
  try {
    await Deno.writeTextFile(
      root,
      files.map((f) => `import ${JSON.stringify(new URL(`file://${join(ROOT, f)}`).href)};\n`).join(""),
    );
    const wanted = new Set(files);
    return (await localEdges(root)).filter((e) => wanted.has(e.from));
  } finally {
    await Deno.remove(root);
  }
}

const show = (e: Edge) => `${e.from}:${e.line} imports ${e.to}${e.kind === "code" ? "" : ` (${e.kind})`}`;

/** Modules that import each other in a circle, directly or through one another. */
interface Knot {
  /** The modules of one strongly connected component, sorted. */
  modules: string[];
  /** One cycle through the first module: the shortest way back to it. */
  path: Edge[];
  /** Every import between two modules of the knot: the ones to break. */
  edges: Edge[];
}

/**
 * The import cycles of a graph, as knots: each strongly connected component of more than one
 * module (or a module importing itself), found with Tarjan's algorithm.
 */
function knots(edges: Edge[]): Knot[] {
  const next = new Map<string, Edge[]>();
  for (const e of edges) next.set(e.from, [...(next.get(e.from) ?? []), e]);
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (v: string) => {
    index.set(v, index.size);
    low.set(v, index.get(v)!);
    stack.push(v);
    onStack.add(v);
    for (const { to } of next.get(v) ?? []) {
      if (!index.has(to)) {
        visit(to);
        low.set(v, Math.min(low.get(v)!, low.get(to)!));
      } else if (onStack.has(to)) {
        low.set(v, Math.min(low.get(v)!, index.get(to)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      components.push(component.sort());
    }
  };
  for (const v of [...next.keys()].sort()) if (!index.has(v)) visit(v);

  const found: Knot[] = [];
  for (const modules of components) {
    const members = new Set(modules);
    const inside = edges.filter((e) => members.has(e.from) && members.has(e.to));
    if (inside.length === 0) continue;
    // The shortest way back to the first module inside the knot (breadth first).
    const start = modules[0];
    const via = new Map<string, Edge>();
    const queue = [start];
    while (queue.length > 0 && !via.has(start)) {
      const v = queue.shift()!;
      for (const e of next.get(v) ?? []) {
        if (!members.has(e.to) || via.has(e.to)) continue;
        via.set(e.to, e);
        queue.push(e.to);
      }
    }
    const path: Edge[] = [];
    let at = start;
    do {
      const e = via.get(at)!;
      path.unshift(e);
      at = e.from;
    } while (at !== start);
    found.push({ modules, path, edges: inside });
  }
  return found.sort((a, b) => a.modules[0].localeCompare(b.modules[0]));
}

/**
 * A knot for a failure message: its modules, one cycle, and the imports that tie it (the
 * cycle's own first, at most 40 in all: a knot of dozens of modules needs its cycle broken,
 * not every edge read).
 */
function describe(k: Knot, n: number): string {
  const edges = [...k.path, ...k.edges.filter((e) => !k.path.includes(e))];
  const more = edges.length > 40 ? [`    … and ${edges.length - 40} more imports inside this knot`] : [];
  return [
    `knot ${n} (${k.modules.length} modules): ${[k.path[0].from, ...k.path.map((e) => e.to)].join(" → ")}`,
    ...edges.slice(0, 40).map((e) => `    ${show(e)}`),
    ...more,
  ].join("\n");
}

Deno.test("nothing under lib/ imports routes/, islands/ or components/", async () => {
  const wrong = (await importsOf(["lib"])).filter((e) => /^(routes|islands|components)\//.test(e.to));
  if (wrong.length > 0) {
    assert.fail(
      `lib/ must not depend on routes/, islands/ or components/; these imports do:\n  ${
        wrong.map(show).join("\n  ")
      }`,
    );
  }
});

for (const entry of ["main.ts", "agent/main.ts", "agent/cli/main.ts"]) {
  Deno.test(`the local module graph of ${entry} has no import cycle`, async () => {
    const found = knots(await localEdges(join(ROOT, entry)));
    if (found.length > 0) {
      assert.fail(
        `${found.length} import cycle(s) in the graph of ${entry}; each knot lists the imports that tie it:\n  ${
          found.map((k, i) => describe(k, i + 1)).join("\n  ")
        }`,
      );
    }
  });
}

Deno.test("agent/ (the eval agent and the vox CLI) imports nothing of the server: no lib/, routes/, islands/, components/", async () => {
  const wrong = (await importsOf(["agent"])).filter((e) => /^(lib|routes|islands|components)\//.test(e.to));
  if (wrong.length > 0) {
    assert.fail(
      `agent/ runs apart from the server and talks to it over the network; these imports do not:\n  ${
        wrong.map(show).join("\n  ")
      }`,
    );
  }
});

Deno.test("bench/ and tasks/ import nothing from tests/", async () => {
  const wrong = (await importsOf(["bench", "tasks"])).filter((e) => e.to.startsWith("tests/"));
  if (wrong.length > 0) {
    assert.fail(
      `programs must not depend on the test tree; these imports do:\n  ${wrong.map(show).join("\n  ")}`,
    );
  }
});

Deno.test("the cycle finder reports each knot with a cycle through it and the imports that tie it", () => {
  const e = (from: string, to: string): Edge => ({ from, to, line: 1, kind: "code" });
  assert.deepEqual(knots([e("a", "b"), e("b", "c")]), []);
  const [abc, x] = knots([e("x", "x"), e("a", "b"), e("b", "c"), e("c", "a"), e("b", "a"), e("c", "d")]);
  assert.deepEqual(abc.modules, ["a", "b", "c"]);
  assert.deepEqual(abc.path.map((p) => `${p.from}→${p.to}`), ["a→b", "b→a"]);
  assert.deepEqual(abc.edges.map((p) => `${p.from}→${p.to}`), ["a→b", "b→c", "c→a", "b→a"]);
  assert.deepEqual(x.modules, ["x"]);
  assert.deepEqual(x.path.map((p) => `${p.from}→${p.to}`), ["x→x"]);
});
