/**
 * The access log writer of one isolate. The request path only appends a line to a batch; the
 * batch goes out in one asynchronous write every 100 ms (or sooner once 64 KiB are waiting),
 * with at most one write in flight. When the disk is slow the batch grows to its limit and
 * further lines are dropped; when a write fails (disk full) its lines are dropped. Dropped lines
 * are counted (`dynlb_access_log_dropped_total`) and the proxy keeps serving. Writes go to a
 * file opened for appending, so several isolates share one file, each batch landing whole.
 *
 * @module
 */
import { log } from "../log.ts";
import { errorText } from "../error_text.ts";

/** Where lines go: a file, or stdout for `-`. */
export interface LogSink {
  write(bytes: Uint8Array): Promise<number>;
  close(): void;
}

/** Options of {@link AccessLog}. */
export interface AccessLogOptions {
  /** Called with the number of lines dropped, each time some are. */
  readonly onDropped?: (lines: number) => void;
  /** Called with the number of lines written, after each write. */
  readonly onWritten?: (lines: number) => void;
  /** Bytes waiting beyond which lines are dropped (default 4 MiB). */
  readonly maxPendingBytes?: number;
  /** Longest wait before a batch is written (default 100 ms). */
  readonly flushMs?: number;
  /** Opens the sink (default: the file at the path, or stdout for `-`). */
  readonly open?: (path: string) => Promise<LogSink>;
}

const BATCH_BYTES = 64 * 1024;
const encoder = new TextEncoder();

/**
 * Opens `path` for appending (`-`: stdout).
 *
 * @example
 * ```ts
 * const sink = await openSink("/var/log/dynlb/access.log");
 * ```
 */
export async function openSink(path: string): Promise<LogSink> {
  if (path === "-") return { write: (b) => Deno.stdout.write(b), close: () => {} };
  const file = await Deno.open(path, { append: true, create: true });
  return { write: (b) => file.write(b), close: () => file.close() };
}

/**
 * Batched, lossy-under-pressure access log.
 *
 * @example
 * ```ts
 * const accessLog = await AccessLog.open("/tmp/access.log", { onDropped: (n) => dropped += n });
 * accessLog.write('{"status":200}\n');
 * await accessLog.close();
 * ```
 */
export class AccessLog {
  readonly path: string;
  #sink: LogSink;
  #open: (path: string) => Promise<LogSink>;
  #pending: string[] = [];
  #pendingBytes = 0;
  #maxPending: number;
  #flushMs: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #writing: Promise<void> | undefined;
  #onDropped: (lines: number) => void;
  #onWritten: (lines: number) => void;
  #failing = false;
  #closed = false;

  private constructor(path: string, sink: LogSink, options: AccessLogOptions) {
    this.path = path;
    this.#sink = sink;
    this.#open = options.open ?? openSink;
    this.#maxPending = options.maxPendingBytes ?? 4 * 1024 * 1024;
    this.#flushMs = options.flushMs ?? 100;
    this.#onDropped = options.onDropped ?? (() => {});
    this.#onWritten = options.onWritten ?? (() => {});
  }

  /** Opens the log at `path`; rejects when it cannot be opened (a start-up error). */
  static async open(path: string, options: AccessLogOptions = {}): Promise<AccessLog> {
    const sink = await (options.open ?? openSink)(path);
    return new AccessLog(path, sink, options);
  }

  /** Queues one line (ending in a newline); drops it when too much is waiting. */
  write(line: string): void {
    if (this.#closed) return;
    // UTF-16 length: a lower bound of the bytes, close enough for a limit.
    if (this.#pendingBytes + line.length > this.#maxPending) {
      this.#onDropped(1);
      return;
    }
    this.#pending.push(line);
    this.#pendingBytes += line.length;
    if (this.#writing !== undefined) return;
    if (this.#pendingBytes >= BATCH_BYTES) this.#flushSoon(0);
    else if (this.#timer === undefined) this.#flushSoon(this.#flushMs);
  }

  /** Closes the file and opens the same path again (after `logrotate` moved it). */
  async reopen(): Promise<void> {
    await this.#writing;
    let sink: LogSink;
    try {
      sink = await this.#open(this.path);
    } catch (err) {
      log("error", "cannot reopen access log, still writing to the old file", {
        path: this.path,
        error: errorText(err),
      });
      return;
    }
    this.#sink.close();
    this.#sink = sink;
  }

  /** Writes what is waiting and closes the file. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#writing;
    if (this.#pending.length > 0) await this.#flush();
    this.#sink.close();
  }

  #flushSoon(ms: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#writing = this.#flush().finally(() => {
        this.#writing = undefined;
        if (this.#pending.length > 0 && !this.#closed) {
          this.#flushSoon(this.#pendingBytes >= BATCH_BYTES ? 0 : this.#flushMs);
        }
      });
    }, ms);
  }

  async #flush(): Promise<void> {
    const lines = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    const bytes = encoder.encode(lines.join(""));
    try {
      let written = 0;
      while (written < bytes.length) written += await this.#sink.write(bytes.subarray(written));
      this.#onWritten(lines.length);
      if (this.#failing) log("info", "access log writable again", { path: this.path });
      this.#failing = false;
    } catch (err) {
      this.#onDropped(lines.length);
      if (!this.#failing) {
        log("warn", "access log write failed, dropping lines", {
          path: this.path,
          error: errorText(err),
        });
      }
      this.#failing = true;
    }
  }
}
