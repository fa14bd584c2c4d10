/** Structured JSON logging with secret redaction. One line per event on stdout/stderr. */

export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
// Any field whose name looks like one of these is replaced, however deep it sits.
const secretKey = /pass(word)?|secret|token|authorization|cookie|api[_-]?key|credential|init_?code/i;
const bearerLike = /\b(vox_(live|agent)_[A-Za-z0-9_]+|Bearer\s+\S+)/g;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

/** Where log lines go; tests swap it to capture output. */
export type LogSink = (level: LogLevel, line: string) => void;

const consoleSink: LogSink = (level, line) => {
  if (level === "error" || level === "warn") console.error(line);
  else console.log(line);
};

let sink: LogSink = consoleSink;
let threshold: LogLevel = "info";

/** Sets the minimum level and, optionally, the sink (tests pass a collector). */
export function configureLogging(level: LogLevel, newSink?: LogSink): void {
  threshold = level;
  if (newSink) sink = newSink;
}

/** Restores the console sink. */
export function resetLogSink(): void {
  sink = consoleSink;
}

/** Deep-copies a value with secret-looking keys and token-looking strings masked. */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 6) return "[deep]";
  if (typeof value === "string") return value.replace(bearerLike, "[redacted]");
  if (value instanceof Error) {
    return { name: value.name, message: redact(value.message, depth + 1), stack: value.stack };
  }
  if (Array.isArray(value)) return value.map((v) => redact(v, depth + 1));
  if (value && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      out[k] = secretKey.test(k) ? "[redacted]" : redact(v, depth + 1);
    }
    return out;
  }
  return value;
}

/** Creates a logger that adds `base` fields to every line. */
export function createLogger(base: LogFields = {}): Logger {
  const write = (level: LogLevel, msg: string, fields?: LogFields) => {
    if (order[level] < order[threshold]) return;
    const entry = redact({ time: new Date().toISOString(), level, msg, ...base, ...fields });
    sink(level, JSON.stringify(entry));
  };
  return {
    debug: (m, f) => write("debug", m, f),
    info: (m, f) => write("info", m, f),
    warn: (m, f) => write("warn", m, f),
    error: (m, f) => write("error", m, f),
    child: (fields) => createLogger({ ...base, ...fields }),
  };
}

export const log: Logger = createLogger();
