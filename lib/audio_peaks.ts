// A clip's peak envelope for the console's waveform: sox decodes the clip to mono 8 kHz
// samples and each of `bins` equal slices keeps its largest absolute sample (0..1). Clips are
// content-addressed, so an envelope is cached by SHA-256 and never goes stale.
import { join } from "node:path";
import type { AudioFormat } from "./audio_probe.ts";

/** How many slices a waveform has: enough for a table cell, small enough to inline as SVG. */
export const PEAK_BINS = 120;
// 8 kHz is plenty for a 120-slice envelope and decodes a 60 s clip in a few tens of ms.
const RATE = 8000;
const CACHE_MAX = 500;
const cache = new Map<string, number[]>();

/** The peak envelope of a clip's bytes: `bins` values in 0..1, two decimals each. */
export async function peaksOf(
  sha256: string,
  format: AudioFormat | string,
  bytes: Uint8Array,
  bins = PEAK_BINS,
): Promise<number[]> {
  const key = `${sha256}:${bins}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const dir = await Deno.makeTempDir({ prefix: "vox-peaks-" });
  let samples: Float32Array;
  try {
    // sox picks the decoder by name; the format is the one the upload was decoded as.
    const path = join(dir, `clip.${format}`);
    await Deno.writeFile(path, bytes);
    const out = await new Deno.Command("sox", {
      args: [path, "-t", "raw", "-e", "floating-point", "-b", "32", "-c", "1", "-r", String(RATE), "-"],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(`sox cannot decode the clip: ${new TextDecoder().decode(out.stderr)}`);
    // A copy, so the samples start on a 4-byte boundary whatever buffer stdout came in.
    samples = new Float32Array(out.stdout.slice(0, out.stdout.length - (out.stdout.length % 4)).buffer);
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  const peaks = envelope(samples, bins);
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value!);
  cache.set(key, peaks);
  return peaks;
}

/** The largest absolute sample of each of `bins` equal slices (an empty slice is 0). */
export function envelope(samples: Float32Array, bins: number): number[] {
  const out: number[] = [];
  for (let b = 0; b < bins; b++) {
    const from = Math.floor((b * samples.length) / bins);
    const to = Math.floor(((b + 1) * samples.length) / bins);
    let max = 0;
    for (let i = from; i < to; i++) max = Math.max(max, Math.abs(samples[i]));
    out.push(Math.min(1, Math.round(max * 100) / 100));
  }
  return out;
}
