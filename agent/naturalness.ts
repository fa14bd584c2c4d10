/**
 * Naturalness, a documented heuristic on the agent's recorded voice (right channel).
 *
 * It measures three acoustic signs of human-like delivery: pitch movement (standard deviation
 * of F0 in semitones; flat, robotic speech stays under ~1 st, conversational speech moves
 * 2–4 st), pausing (share of short pauses inside the agent's speech; none or long gaps both
 * sound unnatural) and loudness movement (standard deviation of frame level in dB).
 * It does NOT measure what is said, pronunciation, voice quality, emotional fit, turn-taking or
 * anything a listener would judge about content; it is a smoke alarm for monotone or choppy
 * synthesis, not a MOS.
 */
export const NATURALNESS_METHOD = "vox-naturalness-heuristic/1";

const clamp01 = (x: number) => Math.max(0, Math.min(1, x));

/** Agent channel (right) of a stereo 16-bit WAV written by the runner. */
export async function readAgentChannel(path: string): Promise<{ pcm: Float32Array; sampleRate: number }> {
  const bytes = await Deno.readFile(path);
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const sampleRate = v.getUint32(24, true);
  const channels = v.getUint16(22, true);
  const n = Math.floor((bytes.length - 44) / (2 * channels));
  const pcm = new Float32Array(n);
  for (let i = 0; i < n; i++) pcm[i] = v.getInt16(44 + (i * channels + (channels - 1)) * 2, true) / 32768;
  return { pcm, sampleRate };
}

/** Score 0–100 from a mono signal, or null with less than one second of speech. */
export function naturalnessScore(input: Float32Array, inputRate: number): number | null {
  const factor = Math.max(1, Math.floor(inputRate / 11025));
  const rate = inputRate / factor;
  const x = new Float32Array(Math.floor(input.length / factor));
  for (let i = 0; i < x.length; i++) {
    let s = 0;
    for (let k = 0; k < factor; k++) s += input[i * factor + k];
    x[i] = s / factor;
  }
  const frame = Math.round(rate * 0.03);
  const hop = Math.round(rate * 0.01);
  const minLag = Math.floor(rate / 400);
  const maxLag = Math.ceil(rate / 70);
  const levels: number[] = [];
  const voiced: boolean[] = [];
  const pitches: number[] = [];
  for (let start = 0; start + frame + maxLag < x.length; start += hop) {
    let e = 0;
    for (let i = 0; i < frame; i++) e += x[start + i] ** 2;
    const db = 10 * Math.log10(e / frame + 1e-12);
    const isVoiced = db > -45;
    voiced.push(isVoiced);
    if (!isVoiced) continue;
    levels.push(db);
    const corr: number[] = [];
    let best = 0;
    for (let lag = minLag; lag <= maxLag; lag++) {
      let c = 0;
      let e2 = 0;
      for (let i = 0; i < frame; i++) {
        c += x[start + i] * x[start + i + lag];
        e2 += x[start + i + lag] ** 2;
      }
      const r = c / Math.sqrt(e * e2 + 1e-12);
      corr.push(r);
      if (r > best) best = r;
    }
    // The shortest lag close to the best avoids octave errors (multiples of the period).
    const idx = corr.findIndex((r, i) =>
      r >= 0.9 * best && (i === 0 || r >= corr[i - 1]) && r >= (corr[i + 1] ?? 0)
    );
    if (best > 0.6 && idx >= 0) pitches.push(12 * Math.log2(rate / (minLag + idx)));
  }
  const speechFrames = levels.length;
  if (speechFrames * 0.01 < 1) return null;
  const sd = (a: number[]) => {
    if (a.length < 2) return 0;
    const m = a.reduce((s, v) => s + v, 0) / a.length;
    return Math.sqrt(a.reduce((s, v) => s + (v - m) ** 2, 0) / (a.length - 1));
  };
  // Pauses of 100–700 ms between voiced frames, as a share of the speaking span.
  const first = voiced.indexOf(true);
  const last = voiced.lastIndexOf(true);
  let pauseFrames = 0;
  let run = 0;
  for (let i = first; i <= last; i++) {
    if (!voiced[i]) run++;
    else {
      if (run >= 10 && run <= 70) pauseFrames += run;
      run = 0;
    }
  }
  const pauseShare = pauseFrames / Math.max(1, last - first + 1);
  const pitchScore = clamp01(sd(pitches) / 3);
  const pauseScore = pauseShare < 0.03
    ? pauseShare / 0.03
    : pauseShare <= 0.3
    ? 1
    : clamp01(1 - (pauseShare - 0.3) / 0.3);
  const levelScore = clamp01(sd(levels) / 6);
  return Math.round((50 * pitchScore + 25 * pauseScore + 25 * levelScore) * 10) / 10;
}

/** Naturalness of the agent's side of a recording, or null. */
export async function naturalness(path: string): Promise<number | null> {
  const { pcm, sampleRate } = await readAgentChannel(path);
  return naturalnessScore(pcm, sampleRate);
}
