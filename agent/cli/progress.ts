/**
 * Live progress of jobs on stderr: one bar per job, redrawn in place, when stderr is a terminal;
 * otherwise one plain line per change (CI logs).
 */
import { note, rawErr } from "./io.ts";

/** Where one job is. */
export interface JobState {
  status: string;
  step?: number;
  totalSteps?: number;
  message?: string;
}

/** Draws the progress of a set of jobs. */
export class ProgressView {
  #rows = new Map<string, JobState>();
  #drawn = 0;
  #lastLine = new Map<string, string>();

  constructor(readonly tty = Deno.stderr.isTerminal()) {}

  /** Records and shows a job's new state. */
  update(key: string, state: JobState): void {
    const prev = this.#rows.get(key);
    // A finished job's last step message would only mislead.
    const next = ["completed", "failed", "cancelled"].includes(state.status)
      ? { ...state }
      : { ...prev, ...state };
    this.#rows.set(key, next);
    if (this.tty) return this.#redraw();
    const line = `${key}: ${next.status}` +
      (next.totalSteps ? ` ${next.step ?? 0}/${next.totalSteps}` : "") +
      (next.message ? ` ${next.message}` : "");
    if (this.#lastLine.get(key) === line) return;
    this.#lastLine.set(key, line);
    note(line);
  }

  #redraw(): void {
    let cols = 80;
    try {
      cols = Deno.consoleSize().columns || 80;
    } catch { /* not a console: keep 80 */ }
    let text = this.#drawn ? `\x1b[${this.#drawn}A` : "";
    for (const [key, s] of this.#rows) {
      const width = 20;
      const frac = s.status === "completed"
        ? 1
        : s.totalSteps
        ? Math.min(1, (s.step ?? 0) / s.totalSteps)
        : 0;
      const filled = Math.round(frac * width);
      const bar = "█".repeat(filled) + "░".repeat(width - filled);
      const count = s.totalSteps ? ` ${s.step ?? 0}/${s.totalSteps}` : "";
      const line = `${key} ${s.status}${count} [${bar}]${s.message ? ` ${s.message}` : ""}`;
      text += "\x1b[2K" + [...line].slice(0, cols - 1).join("") + "\n";
    }
    this.#drawn = this.#rows.size;
    rawErr(text);
  }
}
