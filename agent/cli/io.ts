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

/** Writes to stdout: results, the things a pipeline reads. */
export function out(text: string): void {
  Deno.stdout.writeSync(encoder.encode(scrub(text)));
}

/** Writes a line to stderr: progress, notes and errors. */
export function note(text: string): void {
  Deno.stderr.writeSync(encoder.encode(scrub(text) + "\n"));
}

/** Raw stderr writes (a terminal's progress bars). */
export function rawErr(text: string): void {
  Deno.stderr.writeSync(encoder.encode(scrub(text)));
}
