/**
 * Audio for Realtime calls, with no browser: WAV files decoded to mono float samples, linear
 * resampling to the session's rate, and the wire formats (PCM16 little-endian at 24 kHz,
 * G.711 μ-law and A-law at 8 kHz).
 */

/** A Realtime audio format and its sample rate. */
export type WireFormat = "pcm16" | "g711_ulaw" | "g711_alaw";

/** Samples per second of a wire format (PCM16 is 24 kHz only; G.711 is 8 kHz). */
export function rateOf(format: WireFormat): number {
  return format === "pcm16" ? 24000 : 8000;
}

/** Float samples (−1…1) to the wire format's bytes. */
export function encode(format: WireFormat, samples: Float32Array): Uint8Array {
  if (format === "pcm16") {
    const out = new Uint8Array(samples.length * 2);
    const v = new DataView(out.buffer);
    for (let i = 0; i < samples.length; i++) {
      const x = Math.max(-1, Math.min(1, samples[i]));
      v.setInt16(i * 2, Math.round(x < 0 ? x * 32768 : x * 32767), true);
    }
    return out;
  }
  const out = new Uint8Array(samples.length);
  const enc = format === "g711_ulaw" ? linearToUlaw : linearToAlaw;
  for (let i = 0; i < samples.length; i++) {
    out[i] = enc(Math.round(Math.max(-1, Math.min(1, samples[i])) * 32767));
  }
  return out;
}

/** The wire format's bytes to float samples. */
export function decode(format: WireFormat, bytes: Uint8Array): Float32Array {
  if (format === "pcm16") {
    const n = bytes.length >> 1;
    const out = new Float32Array(n);
    const v = new DataView(bytes.buffer, bytes.byteOffset, n * 2);
    for (let i = 0; i < n; i++) out[i] = v.getInt16(i * 2, true) / 32768;
    return out;
  }
  const out = new Float32Array(bytes.length);
  const table = format === "g711_ulaw" ? ULAW : ALAW;
  for (let i = 0; i < bytes.length; i++) out[i] = table[bytes[i]] / 32768;
  return out;
}

function linearToUlaw(pcm: number): number {
  const BIAS = 0x84;
  const sign = pcm < 0 ? 0x80 : 0;
  let x = Math.min(Math.abs(pcm), 32635) + BIAS;
  let exp = 7;
  for (let mask = 0x4000; (x & mask) === 0 && exp > 0; mask >>= 1) exp--;
  const mant = (x >> (exp + 3)) & 0x0f;
  x = ~(sign | (exp << 4) | mant);
  return x & 0xff;
}

function ulawToLinear(u: number): number {
  u = ~u & 0xff;
  const sign = u & 0x80;
  const exp = (u >> 4) & 0x07;
  const mant = u & 0x0f;
  const x = (((mant << 3) + 0x84) << exp) - 0x84;
  return sign ? -x : x;
}

function linearToAlaw(pcm: number): number {
  const sign = pcm >= 0 ? 0xd5 : 0x55;
  let x = Math.min(Math.abs(pcm), 32767);
  if (pcm < 0) x = Math.max(0, x - 1);
  let out: number;
  if (x < 256) out = x >> 4;
  else {
    let exp = 7;
    for (let mask = 0x4000; (x & mask) === 0 && exp > 1; mask >>= 1) exp--;
    out = (exp << 4) | ((x >> (exp + 3)) & 0x0f);
  }
  return (out ^ sign) & 0xff;
}

function alawToLinear(a: number): number {
  a ^= 0x55;
  const sign = a & 0x80;
  const exp = (a >> 4) & 0x07;
  let x = (a & 0x0f) << 4;
  x = exp === 0 ? x + 8 : (x + 0x108) << (exp - 1);
  return sign ? x : -x;
}

const ULAW = Int16Array.from({ length: 256 }, (_, i) => ulawToLinear(i));
const ALAW = Int16Array.from({ length: 256 }, (_, i) => alawToLinear(i));

/** A decoded WAV file: mono float samples at `rate`. */
export interface Pcm {
  samples: Float32Array;
  rate: number;
}

/** Decodes a WAV file (PCM 8/16/24/32-bit or 32-bit float, any channels, mixed to mono). */
export function decodeWav(bytes: Uint8Array): Pcm {
  const text = (o: number) => String.fromCharCode(...bytes.subarray(o, o + 4));
  if (bytes.length < 12 || text(0) !== "RIFF" || text(8) !== "WAVE") {
    throw new Error("not a WAV file (a Realtime call reads WAV audio; convert other formats first)");
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let fmt: { tag: number; channels: number; rate: number; bits: number } | null = null;
  let off = 12;
  while (off + 8 <= bytes.length) {
    const id = text(off);
    let size = v.getUint32(off + 4, true);
    if (id === "fmt ") {
      let tag = v.getUint16(off + 8, true);
      // WAVE_FORMAT_EXTENSIBLE: the real tag is the subformat's first two bytes.
      if (tag === 0xfffe && size >= 26) tag = v.getUint16(off + 32, true);
      fmt = {
        tag,
        channels: v.getUint16(off + 10, true),
        rate: v.getUint32(off + 12, true),
        bits: v.getUint16(off + 22, true),
      };
    } else if (id === "data") {
      if (!fmt) throw new Error("WAV file has no fmt chunk before its data");
      size = Math.min(size, bytes.length - off - 8);
      return { samples: pcmOf(v, off + 8, size, fmt), rate: fmt.rate };
    }
    off += 8 + size + (size & 1);
  }
  throw new Error("WAV file has no data chunk");
}

function pcmOf(
  v: DataView,
  start: number,
  size: number,
  fmt: { tag: number; channels: number; bits: number },
): Float32Array {
  const bytesPer = fmt.bits / 8;
  const frame = bytesPer * fmt.channels;
  if (!(fmt.channels > 0) || ![8, 16, 24, 32].includes(fmt.bits) || (fmt.tag !== 1 && fmt.tag !== 3)) {
    throw new Error(`unsupported WAV encoding (format ${fmt.tag}, ${fmt.bits} bits)`);
  }
  const n = Math.floor(size / frame);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let sum = 0;
    for (let c = 0; c < fmt.channels; c++) {
      const o = start + i * frame + c * bytesPer;
      if (fmt.tag === 3) sum += fmt.bits === 32 ? v.getFloat32(o, true) : 0;
      else if (fmt.bits === 8) sum += (v.getUint8(o) - 128) / 128;
      else if (fmt.bits === 16) sum += v.getInt16(o, true) / 32768;
      else if (fmt.bits === 24) {
        const x = v.getUint8(o) | (v.getUint8(o + 1) << 8) | (v.getInt8(o + 2) << 16);
        sum += x / 8388608;
      } else sum += v.getInt32(o, true) / 2147483648;
    }
    out[i] = sum / fmt.channels;
  }
  return out;
}

/** Linear-interpolation resampling (speech timing matters here, not fidelity). */
export function resample(samples: Float32Array, from: number, to: number): Float32Array {
  if (from === to) return samples;
  const n = Math.round((samples.length * to) / from);
  const out = new Float32Array(n);
  const step = from / to;
  for (let i = 0; i < n; i++) {
    const x = i * step;
    const j = Math.floor(x);
    const f = x - j;
    const a = samples[j] ?? 0;
    const b = samples[j + 1] ?? a;
    out[i] = a + (b - a) * f;
  }
  return out;
}
