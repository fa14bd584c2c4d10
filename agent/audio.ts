/** Audio helpers on the Deno side: speech synthesis and WAV files. */
import { withAgentLife } from "./die_with_agent.ts";

/**
 * Synthesizes `text` with espeak-ng into WAV bytes (mono, espeak's native 22.05 kHz). The text
 * goes in on stdin (`--stdin`), never on the command line, so a config's text such as
 * `-f/etc/passwd` or `-w/tmp/x` is spoken, not read as an option.
 */
export async function synthesize(text: string, voice = "en-us"): Promise<Uint8Array> {
  const bin = Deno.env.get("ESPEAK_PATH") ?? "espeak-ng";
  if (!/^[A-Za-z0-9][A-Za-z0-9_+-]{0,99}$/.test(voice)) throw new Error(`not a voice name: ${voice}`);
  let out: Deno.CommandOutput;
  try {
    const espeak = withAgentLife(bin, ["-v", voice, "--stdout", "--stdin"]);
    const child = new Deno.Command(espeak.cmd, {
      args: espeak.args,
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(text));
    await writer.close();
    out = await child.output();
  } catch (err) {
    throw new Error(`cannot synthesize speech: ${bin} is not available (${(err as Error).message})`);
  }
  if (!out.success || out.stdout.length < 64) {
    throw new Error(`espeak-ng failed: ${new TextDecoder().decode(out.stderr).trim() || "no audio"}`);
  }
  return fixStreamedWavSizes(out.stdout);
}

// espeak-ng writes 0x7fffffff sizes when streaming to stdout; decoders want the real ones.
function fixStreamedWavSizes(wav: Uint8Array): Uint8Array {
  const copy = wav.slice();
  const view = new DataView(copy.buffer);
  view.setUint32(4, copy.length - 8, true);
  let off = 12;
  while (off + 8 <= copy.length) {
    const id = new TextDecoder().decode(copy.subarray(off, off + 4));
    if (id === "data") {
      view.setUint32(off + 4, copy.length - off - 8, true);
      break;
    }
    off += 8 + view.getUint32(off + 4, true);
  }
  return copy;
}

/** Writes interleaved 16-bit PCM as a WAV file's bytes. */
export function encodeWav(pcm: Uint8Array, sampleRate: number, channels: number): Uint8Array {
  const header = new ArrayBuffer(44);
  const v = new DataView(header);
  const w = (o: number, s: string) => [...s].forEach((ch, i) => v.setUint8(o + i, ch.charCodeAt(0)));
  w(0, "RIFF");
  v.setUint32(4, 36 + pcm.length, true);
  w(8, "WAVE");
  w(12, "fmt ");
  v.setUint32(16, 16, true);
  v.setUint16(20, 1, true);
  v.setUint16(22, channels, true);
  v.setUint32(24, sampleRate, true);
  v.setUint32(28, sampleRate * channels * 2, true);
  v.setUint16(32, channels * 2, true);
  v.setUint16(34, 16, true);
  w(36, "data");
  v.setUint32(40, pcm.length, true);
  const out = new Uint8Array(44 + pcm.length);
  out.set(new Uint8Array(header), 0);
  out.set(pcm, 44);
  return out;
}

/** Base64 of bytes, chunked so large files do not overflow the call stack. */
export function toBase64(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

/** Bytes of a base64 string. */
export function fromBase64(b64: string): Uint8Array {
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
