// Audio helpers for the tests that compare what an eval agent played with what it was given.

/** The first channel of a 16-bit WAV (the caller's lane of a Vox recording), its rate and channel count. */
export function firstLane(wav: Uint8Array): { rate: number; channels: number; samples: Float32Array } {
  const view = new DataView(wav.buffer, wav.byteOffset, wav.byteLength);
  const channels = view.getUint16(22, true);
  const rate = view.getUint32(24, true);
  let off = 12;
  while (new TextDecoder().decode(wav.subarray(off, off + 4)) !== "data") {
    off += 8 + view.getUint32(off + 4, true);
  }
  const n = Math.floor(Math.min(view.getUint32(off + 4, true), wav.length - off - 8) / (2 * channels));
  const samples = new Float32Array(n);
  for (let i = 0; i < n; i++) samples[i] = view.getInt16(off + 8 + i * 2 * channels, true) / 32768;
  return { rate, channels, samples };
}

/** The best normalized correlation of `ref` against `x` near their onsets (±20 ms). */
export function correlation(x: Float32Array, ref: Float32Array, rate: number): number {
  const onset = (s: Float32Array) => s.findIndex((v) => Math.abs(v) >= 0.01);
  const base = onset(x) - onset(ref);
  const span = Math.round(rate * 0.02);
  let best = -1;
  for (let lag = base - span; lag <= base + span; lag++) {
    let xy = 0, xx = 0, yy = 0;
    for (let i = 0; i < ref.length; i++) {
      const a = x[i + lag] ?? 0;
      xy += a * ref[i];
      xx += a * a;
      yy += ref[i] * ref[i];
    }
    best = Math.max(best, xy / Math.sqrt(xx * yy || 1));
  }
  return best;
}
