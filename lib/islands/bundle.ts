import { dirname, join, relative, resolve } from "node:path";
import type { Logger } from "../log.ts";

const ROOT = resolve(dirname(new URL(import.meta.url).pathname), "../..");
const CLIENT_ENTRY = "lib/islands/reviver.ts";
/** Where the bundled reviver lands under a build's folder. */
const CLIENT_OUT = "lib/islands/reviver.js";

/** Where the built island bundles are and the URL they are served under. */
export interface IslandAssets {
  buildId: string;
  dir: string;
  /** URL of the client runtime module that hydrates island markers. */
  runtimeUrl: string;
  islands: string[];
}

/**
 * Bundles the client runtime and every `islands/*.tsx` for the browser with `deno bundle`
 * (code-split, so Preact is shared by all islands). The build id is a hash of the inputs:
 * an unchanged tree reuses the previous build, and URLs change whenever content does,
 * so bundles can be cached forever.
 */
export async function buildIslands(opts: { outRoot: string; log: Logger }): Promise<IslandAssets> {
  const islands = await listIslands();
  const buildId = await hashInputs();
  const outRoot = resolve(opts.outRoot);
  const dir = join(outRoot, buildId);
  const assets = {
    buildId,
    dir,
    runtimeUrl: `/_islands/${buildId}/${CLIENT_OUT}`,
    islands,
  };
  if (await exists(join(dir, CLIENT_OUT))) return assets;

  const started = performance.now();
  await Deno.mkdir(outRoot, { recursive: true });
  // Build into a private directory and rename, so concurrent starts never see half a build.
  const tmp = await Deno.makeTempDir({ dir: outRoot, prefix: ".build-" });
  const entries = [CLIENT_ENTRY, ...islands.map((name) => `islands/${name}.tsx`)];
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "bundle",
      "--quiet",
      "--platform=browser",
      "--format=esm",
      "--code-splitting",
      "--minify",
      "--outdir",
      tmp,
      ...entries,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    throw new Error(`Bundling islands failed:\n${new TextDecoder().decode(out.stderr)}`);
  }
  try {
    await Deno.rename(tmp, dir);
  } catch (err) {
    await Deno.remove(tmp, { recursive: true }).catch(() => {});
    if (!(await exists(join(dir, CLIENT_OUT)))) throw err;
  }
  opts.log.info("islands built", {
    buildId,
    islands,
    ms: Math.round(performance.now() - started),
  });
  return assets;
}

async function listIslands(): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(join(ROOT, "islands"))) {
    if (e.isFile && /^[a-z0-9_]+\.tsx$/.test(e.name)) names.push(e.name.slice(0, -4));
  }
  return names.sort();
}

async function hashInputs(): Promise<string> {
  const files: string[] = ["deno.json", "deno.lock"];
  for (const dir of ["islands", "lib", "components"]) {
    await walk(join(ROOT, dir), files);
  }
  files.sort();
  const h = new Uint8Array(
    await crypto.subtle.digest(
      "SHA-256",
      new TextEncoder().encode(
        (await Promise.all(files.map(async (f) => {
          const text = await Deno.readTextFile(join(ROOT, f)).catch(() => "");
          return `${f}\0${text}`;
        }))).join("\0"),
      ),
    ),
  );
  return Array.from(h.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}

async function walk(dir: string, out: string[]): Promise<void> {
  try {
    for await (const e of Deno.readDir(dir)) {
      const path = join(dir, e.name);
      if (e.isDirectory) await walk(path, out);
      else if (/\.(tsx?|css)$/.test(e.name)) out.push(relative(ROOT, path));
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch {
    return false;
  }
}
