// The one static file server: /static/, the island bundles under /_islands/ and the demo voice
// agent under /demo/ all serve files this way. A path never leaves its folder.
import { extname, join, normalize } from "node:path";
import { errorBody } from "./errors.ts";

const CONTENT_TYPES: Record<string, string> = {
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".map": "application/json",
  ".wav": "audio/wav",
  ".html": "text/html; charset=utf-8",
};

/** How serveFile() answers for one folder. */
export interface StaticOptions {
  /** The Cache-Control header of every file. */
  cacheControl: string;
  /** Headers added to every file (a page's own security policy). */
  headers?: Record<string, string>;
  /** Extensions served (e.g. [".html"]); others are 404. Default: any file, unknown types as octet-stream. */
  only?: string[];
  /** The 404 message. */
  missing?: string;
}

/**
 * The file at `rel` under `root` with its content type, cache headers and an ETag (a matching
 * If-None-Match is a 304). A path that escapes `root`, a folder or a missing file is a JSON 404.
 */
export async function serveFile(
  req: Request,
  root: string,
  rel: string,
  opts: StaticOptions,
): Promise<Response> {
  const notFound = () =>
    Response.json(errorBody("not_found", opts.missing ?? "No such file"), { status: 404 });
  const clean = normalize(rel);
  const ext = extname(clean);
  if (clean.startsWith("..") || clean.startsWith("/") || clean.includes("\0")) return notFound();
  if (opts.only && !opts.only.includes(ext)) return notFound();
  try {
    const path = join(root, clean);
    const stat = await Deno.stat(path);
    if (!stat.isFile) return notFound();
    const etag = `"${stat.size.toString(36)}-${(stat.mtime?.getTime() ?? 0).toString(36)}"`;
    const headers = {
      "content-type": CONTENT_TYPES[ext] ?? "application/octet-stream",
      "cache-control": opts.cacheControl,
      etag,
      ...opts.headers,
    };
    if (req.headers.get("if-none-match") === etag) return new Response(null, { status: 304, headers });
    return new Response(await Deno.readFile(path), { headers });
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return notFound();
    throw err;
  }
}
