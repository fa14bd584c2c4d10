// HTTP measurements for `deno task bench`: requests/s at a fixed concurrency, time to first
// byte, and the JavaScript a page ships. The load generator runs in the bench process over
// keep-alive connections, so its own CPU is shared by the server and its baseline alike.
import { percentile, r2 } from "./lib.ts";

/** Requests/s and latency of `concurrency` clients requesting `url` back to back for `ms`. */
export interface LoadFigures {
  requests_per_s: number | null;
  p50_ms: number | null;
  p99_ms: number | null;
  requests: number;
  /** Answers that were not 200: a route that refuses the bench must not look fast. */
  non_200: number;
}

/** Runs `concurrency` clients against `url` for `ms` milliseconds. */
export async function load(
  url: string,
  opts: { concurrency: number; ms: number; headers?: HeadersInit },
): Promise<LoadFigures> {
  const lat: number[] = [];
  let non200 = 0;
  const t0 = performance.now();
  const end = t0 + opts.ms;
  await Promise.all(Array.from({ length: opts.concurrency }, async () => {
    while (performance.now() < end) {
      const s = performance.now();
      const res = await fetch(url, { headers: opts.headers });
      await res.arrayBuffer();
      if (res.status !== 200) non200++;
      lat.push(performance.now() - s);
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  return {
    requests_per_s: lat.length > 0 ? r2(lat.length / secs) : null,
    p50_ms: lat.length > 0 ? r2(percentile(lat, 50)) : null,
    p99_ms: lat.length > 0 ? r2(percentile(lat, 99)) : null,
    requests: lat.length,
    non_200: non200,
  };
}

/** Time to first byte (response headers) of `requests` page loads by `concurrency` clients. */
export async function ttfb(
  url: string,
  opts: { concurrency: number; requests: number },
): Promise<{ p50_ms: number | null; p99_ms: number | null; requests: number; non_200: number }> {
  const lat: number[] = [];
  let left = opts.requests;
  let non200 = 0;
  await Promise.all(Array.from({ length: opts.concurrency }, async () => {
    while (left-- > 0) {
      const s = performance.now();
      const res = await fetch(url);
      lat.push(performance.now() - s);
      if (res.status !== 200) non200++;
      await res.arrayBuffer();
    }
  }));
  return {
    p50_ms: lat.length > 0 ? r2(percentile(lat, 50)) : null,
    p99_ms: lat.length > 0 ? r2(percentile(lat, 99)) : null,
    requests: lat.length,
    non_200: non200,
  };
}

async function gzipSize(bytes: Uint8Array): Promise<number> {
  const stream = new Blob([bytes as BlobPart]).stream().pipeThrough(new CompressionStream("gzip"));
  return (await new Response(stream).arrayBuffer()).byteLength;
}

/**
 * The JavaScript a browser loads for `pageUrl`: the island runtime, each island on the page
 * and every module they import statically (shared chunks counted once), raw and gzip bytes.
 */
export async function pageJavaScript(
  pageUrl: string,
): Promise<{ files: number; bytes: number; gzip_bytes: number; islands: string[] }> {
  const html = await (await fetch(pageUrl)).text();
  const scripts = [...html.matchAll(/<script[^>]*\ssrc="([^"]+)"/g)].map((m) => new URL(m[1], pageUrl).href);
  const islands = [...new Set([...html.matchAll(/data-island="([a-z0-9_]+)"/g)].map((m) => m[1]))];
  const runtime = scripts.find((s) => s.includes("/_islands/"));
  const queue = [...scripts];
  // The runtime imports each island by name from `../../islands/` (lib/islands/reviver.ts).
  if (runtime) { for (const name of islands) queue.push(new URL(`../../islands/${name}.js`, runtime).href); }
  const seen = new Set<string>();
  let bytes = 0;
  let gzip = 0;
  while (queue.length > 0) {
    const url = queue.shift()!;
    if (seen.has(url)) continue;
    seen.add(url);
    const res = await fetch(url);
    if (!res.ok) throw new Error(`${url} answered ${res.status}`);
    const body = new Uint8Array(await res.arrayBuffer());
    bytes += body.byteLength;
    gzip += await gzipSize(body);
    const text = new TextDecoder().decode(body);
    for (const m of text.matchAll(/(?:import|from)\s*["']([^"']+\.js)["']/g)) {
      queue.push(new URL(m[1], url).href);
    }
  }
  return { files: seen.size, bytes, gzip_bytes: gzip, islands };
}
