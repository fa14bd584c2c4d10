/**
 * Everything `vox` prints goes through here, so the API key can be scrubbed from every line
 * whatever produced it (a server message, an echoed URL, an exception).
 */
const secrets: string[] = [];
const encoder = new TextEncoder();

/** Registers a value that must never be printed. */
export function hideSecret(value: string): void {
  if (value.length >= 8 && !secrets.includes(value)) secrets.push(value);
}

/** `text` with every registered secret replaced. */
export function scrub(text: string): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join("[redacted]");
  return out;
}

// writeSync may take part of a buffer (a full pipe): write until all of it is out.
function writeAll(to: typeof Deno.stdout, text: string): void {
  let bytes = encoder.encode(scrub(text));
  while (bytes.length > 0) bytes = bytes.subarray(to.writeSync(bytes));
}

/** Writes to stdout: results, the things a pipeline reads. */
export function out(text: string): void {
  writeAll(Deno.stdout, text);
}

/** Writes a line to stderr: progress, notes and errors. */
export function note(text: string): void {
  writeAll(Deno.stderr, text + "\n");
}

/** Raw stderr writes (a terminal's progress bars). */
export function rawErr(text: string): void {
  writeAll(Deno.stderr, text);
}
