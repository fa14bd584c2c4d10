// What an uploaded audio file really is, found by its bytes and by decoding it with sox (never
// by its name): the container from its magic bytes, then soxi's header figures and a full
// decode (`sox … -n stat`) that must read every sample the header promises without error.
// Pure of the database; lib/audio.ts stores what passes.

/** The formats a clip may have: what sox decodes here and Chromium plays. */
export const AUDIO_FORMATS = ["wav", "mp3", "ogg", "flac"] as const;
export type AudioFormat = typeof AUDIO_FORMATS[number];

/** What probing found. */
export interface AudioInfo {
  format: AudioFormat;
  durationMs: number;
  sampleRate: number;
  channels: number;
}

/** Why a file is refused: `unsupported` (not one of the formats), `corrupt`, `too_long`. */
export class AudioProblem extends Error {
  constructor(readonly kind: "unsupported" | "corrupt" | "too_long", message: string) {
    super(message);
    this.name = "AudioProblem";
  }
}

/** The container by its first bytes, or null when it is none of AUDIO_FORMATS. */
export function sniffFormat(head: Uint8Array): AudioFormat | null {
  const ascii = (from: number, to: number) => String.fromCharCode(...head.subarray(from, to));
  if (ascii(0, 4) === "RIFF" && ascii(8, 12) === "WAVE") return "wav";
  if (ascii(0, 4) === "fLaC") return "flac";
  if (ascii(0, 4) === "OggS") return "ogg";
  if (ascii(0, 3) === "ID3") return "mp3";
  if (head.length >= 4 && mp3FrameLength(head, 0) !== null) return "mp3";
  return null;
}

// MPEG audio Layer III frame header → the frame's length in bytes, or null when `b[at]` does
// not start one. Bitrates in kbit/s by [MPEG-1, MPEG-2/2.5]; sample rates by version.
const BITRATES = [
  [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
  [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
];
const RATES: Record<number, number[]> = {
  3: [44100, 48000, 32000],
  2: [22050, 24000, 16000],
  0: [11025, 12000, 8000],
};

function mp3FrameLength(b: Uint8Array, at: number): number | null {
  if (at + 4 > b.length || b[at] !== 0xff || (b[at + 1] & 0xe0) !== 0xe0) return null;
  const version = (b[at + 1] >> 3) & 3; // 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5
  const layer = (b[at + 1] >> 1) & 3; // 1 = Layer III
  const bitrateIndex = b[at + 2] >> 4;
  const rateIndex = (b[at + 2] >> 2) & 3;
  if (version === 1 || layer !== 1 || bitrateIndex === 0 || bitrateIndex === 15 || rateIndex === 3) {
    return null;
  }
  const bitrate = BITRATES[version === 3 ? 0 : 1][bitrateIndex] * 1000;
  const rate = RATES[version][rateIndex];
  const padding = (b[at + 2] >> 1) & 1;
  return Math.floor(((version === 3 ? 144 : 72) * bitrate) / rate) + padding;
}

/**
 * Walks an MP3's frames: a stream whose last frame is cut short was truncated (sox decodes
 * what there is without a word). Trailing ID3v1/APE tags are allowed; garbage between frames
 * is not.
 */
export function mp3Truncated(b: Uint8Array): boolean {
  let at = 0;
  if (b.length >= 10 && String.fromCharCode(...b.subarray(0, 3)) === "ID3") {
    at = 10 + ((b[6] & 0x7f) << 21 | (b[7] & 0x7f) << 14 | (b[8] & 0x7f) << 7 | (b[9] & 0x7f));
    if (b[5] & 0x10) at += 10; // footer
  }
  let frames = 0;
  while (at < b.length) {
    const len = mp3FrameLength(b, at);
    if (len === null) {
      const rest = String.fromCharCode(...b.subarray(at, at + 8));
      if (rest.startsWith("TAG") || rest.startsWith("APETAGEX") || rest.startsWith("LYRICS")) break;
      // A cut inside a frame header, or bytes that are no frame.
      return true;
    }
    if (at + len > b.length) return true;
    at += len;
    frames++;
  }
  return frames === 0;
}

async function run(cmd: string, args: string[]): Promise<{ ok: boolean; out: string; err: string }> {
  let res: Deno.CommandOutput;
  try {
    res = await new Deno.Command(cmd, { args, stdin: "null", stdout: "piped", stderr: "piped" }).output();
  } catch (err) {
    throw new Error(`cannot run ${cmd} (${(err as Error).message}); install sox and libsox-fmt-all`);
  }
  const dec = new TextDecoder();
  return { ok: res.success, out: dec.decode(res.stdout), err: dec.decode(res.stderr) };
}

const num = (text: string, re: RegExp) => {
  const m = re.exec(text);
  return m ? Number(m[1]) : NaN;
};

/**
 * Probes the file at `path` (whose bytes are `bytes`): its format by magic bytes, header
 * figures by soxi, and a full decode by sox that must succeed, warn of nothing and deliver the
 * samples the header announces. `maxMs` bounds the decoded duration. Throws AudioProblem.
 */
export async function probeAudio(path: string, bytes: Uint8Array, maxMs: number): Promise<AudioInfo> {
  const format = sniffFormat(bytes.subarray(0, 64));
  if (!format) {
    throw new AudioProblem(
      "unsupported",
      "not an audio file Vox accepts: the content is none of wav, mp3, ogg or flac",
    );
  }
  const bad = (why: string) => new AudioProblem("corrupt", `a corrupt or truncated ${format} file: ${why}`);
  if (format === "mp3" && mp3Truncated(bytes)) throw bad("its last MPEG frame is cut short");
  // soxi reads the type from the name: lib/audio.ts names the file by the format found here.
  const info = await run("soxi", [path]);
  if (!info.ok) throw bad(firstLine(info.err, path) || "soxi cannot read its header");
  const channels = num(info.out, /^Channels\s*:\s*(\d+)/m);
  const sampleRate = num(info.out, /^Sample Rate\s*:\s*(\d+)/m);
  const headerSamples = num(info.out, /=\s*(\d+) samples/);
  if (!(channels > 0) || !(sampleRate > 0)) throw bad("no channels or sample rate in its header");
  const decoded = await run("sox", ["-V2", "-t", format, path, "-n", "stat"]);
  const problem = /^sox (FAIL|WARN) .*$/m.exec(decoded.err);
  if (!decoded.ok || problem) {
    throw bad(firstLine(problem?.[0] ?? decoded.err, path) || "it does not decode");
  }
  const seconds = num(decoded.err, /^Length \(seconds\):\s*([\d.]+)/m);
  if (!(seconds > 0)) throw bad("it decodes to no samples");
  // wav, flac and ogg state their length exactly: a decode that ends early was cut.
  if (format !== "mp3" && headerSamples > 0 && seconds * sampleRate < headerSamples - sampleRate * 0.01) {
    throw bad(
      `it decodes to ${seconds.toFixed(3)} s of the ${
        (headerSamples / sampleRate).toFixed(3)
      } s its header states`,
    );
  }
  const durationMs = Math.round(seconds * 1000);
  if (durationMs > maxMs) {
    throw new AudioProblem(
      "too_long",
      `the clip is ${(durationMs / 1000).toFixed(1)} s long, over the ${
        maxMs / 1000
      } s limit (VOX_AUDIO_MAX_SECONDS)`,
    );
  }
  return { format, durationMs, sampleRate, channels };
}

/** sox's first line of complaint, without the temporary file's path (nothing of the host). */
function firstLine(text: string, path: string): string {
  return (text.trim().split("\n")[0] ?? "").replaceAll(path, "the file").replace(/^\S*sox[i]? /, "");
}
