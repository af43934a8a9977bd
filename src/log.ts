/**
 * The program's log: one line per event on stderr, `time level message key=value…`. Nothing on
 * the request path logs by default; control-plane events (config applied, store state, health
 * changes) log once per change.
 *
 * @module
 */

/** Severity, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };
let threshold = ORDER.info;
const encoder = new TextEncoder();

/**
 * Sets the lowest level that is written.
 *
 * @example
 * ```ts
 * setLogLevel("warn");
 * ```
 */
export function setLogLevel(level: LogLevel): void {
  threshold = ORDER[level];
}

/** Structured fields appended to a line as `key=value` (strings with spaces are quoted). */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

/**
 * Writes one log line when `level` is at or above the threshold.
 *
 * @example
 * ```ts
 * log("info", "config applied", { version: 2, source: "admin" });
 * ```
 */
export function log(level: LogLevel, message: string, fields?: LogFields): void {
  if (ORDER[level] < threshold) return;
  let line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${message}`;
  if (fields) {
    for (const [key, value] of Object.entries(fields)) {
      if (value === undefined) continue;
      const text = String(value);
      line += ` ${key}=${/[\s"=]/.test(text) || text === "" ? JSON.stringify(text) : text}`;
    }
  }
  try {
    Deno.stderr.writeSync(encoder.encode(line + "\n"));
  } catch {
    // A closed stderr must not take the proxy down.
  }
}
