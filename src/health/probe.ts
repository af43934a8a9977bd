/**
 * The two active probes: a TCP connect and a minimal HTTP/1.1 `GET`. Each resolves to a result
 * and never throws, so the check loop needs no error handling of its own.
 *
 * The HTTP probe is hand-written over `Deno.connect` rather than `fetch`: it needs no connection
 * pool (every check is one short connection, `Connection: close`), sends exactly the headers it
 * chooses, and reads only the status line, whatever the body size.
 *
 * @module
 */
import { formatHostPort } from "../address.ts";

/** The outcome of one probe. */
export type ProbeResult = { readonly ok: true } | { readonly ok: false; readonly error: string };

const PASS: ProbeResult = { ok: true };
/** Bytes read at most while looking for the end of the status line. */
const MAX_STATUS_LINE = 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Passes when a TCP connection to `addr:port` opens within `timeoutMs`; the connection is closed
 * at once. `signal` aborts the probe (it then fails with `"aborted"`).
 *
 * @example
 * ```ts
 * const r = await tcpProbe("127.0.0.1", 8080, 2000);
 * if (!r.ok) console.log(r.error); // "connection refused"
 * ```
 */
export function tcpProbe(
  addr: string,
  port: number,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<ProbeResult> {
  return withDeadline(addr, port, timeoutMs, signal, () => Promise.resolve(PASS));
}

/**
 * Passes when `GET uri` on `addr:port` answers a 2xx or 3xx status line within `timeoutMs`
 * (connect, send and status line together). Only the status line is read; the connection is
 * closed right after it.
 *
 * Headers sent: `Host: <addr:port>` (the server's key, IPv6 in brackets — the server is checked
 * as itself, not under any virtual host of the config), `User-Agent: dynlb-health-check/0.1`,
 * `Connection: close`.
 *
 * @example
 * ```ts
 * const r = await httpProbe("127.0.0.1", 8080, "/ping", 2000);
 * if (!r.ok) console.log(r.error); // "status 500"
 * ```
 */
export function httpProbe(
  addr: string,
  port: number,
  uri: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<ProbeResult> {
  const request = encoder.encode(
    `GET ${uri} HTTP/1.1\r\nHost: ${formatHostPort(addr, port)}\r\n` +
      "User-Agent: dynlb-health-check/0.1\r\nAccept: */*\r\nConnection: close\r\n\r\n",
  );
  return withDeadline(addr, port, timeoutMs, signal, async (conn) => {
    await writeAll(conn, request);
    return statusOf(await readStatusLine(conn));
  });
}

/**
 * Connects, runs `exchange` on the connection, and closes it; a timer and the caller's signal
 * both end the attempt by closing the connection, which makes any pending read or write reject.
 */
async function withDeadline(
  addr: string,
  port: number,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  exchange: (conn: Deno.TcpConn) => Promise<ProbeResult>,
): Promise<ProbeResult> {
  if (signal?.aborted) return { ok: false, error: "aborted" };
  const controller = new AbortController();
  let conn: Deno.TcpConn | undefined;
  let reason: string | undefined;
  const stop = (why: string) => {
    if (reason !== undefined) return;
    reason = why;
    controller.abort();
    closeQuietly(conn);
  };
  const timer = setTimeout(() => stop(`timeout after ${timeoutMs} ms`), timeoutMs);
  const onAbort = () => stop("aborted");
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const hostname = addr.startsWith("[") ? addr.slice(1, -1) : addr;
    conn = await Deno.connect({ hostname, port, signal: controller.signal });
    if (reason !== undefined) return { ok: false, error: reason };
    return await exchange(conn);
  } catch (err) {
    return { ok: false, error: reason ?? describeError(err) };
  } finally {
    clearTimeout(timer);
    signal?.removeEventListener("abort", onAbort);
    closeQuietly(conn);
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < bytes.length) offset += await conn.write(bytes.subarray(offset));
}

/** Reads up to the first line feed, or what came before the peer closed; null when nothing. */
async function readStatusLine(conn: Deno.Conn): Promise<string | null> {
  const buf = new Uint8Array(MAX_STATUS_LINE);
  let filled = 0;
  while (filled < buf.length) {
    const n = await conn.read(buf.subarray(filled));
    if (n === null) return filled === 0 ? null : decoder.decode(buf.subarray(0, filled));
    const end = buf.subarray(filled, filled + n).indexOf(0x0a);
    filled += n;
    if (end !== -1) return decoder.decode(buf.subarray(0, filled - n + end));
  }
  // No line feed in the first KiB: judge what came (a long line is not a status line anyway).
  return decoder.decode(buf);
}

const STATUS_LINE = /^HTTP\/1\.[01] ([1-5]\d\d)(?:[ \r]|$)/;

function statusOf(line: string | null): ProbeResult {
  if (line === null) return { ok: false, error: "no HTTP status line" };
  const match = STATUS_LINE.exec(line);
  if (!match) return { ok: false, error: "not an HTTP response" };
  const code = Number(match[1]);
  return code >= 200 && code < 400 ? PASS : { ok: false, error: `status ${code}` };
}

function closeQuietly(conn: Deno.Conn | undefined): void {
  try {
    conn?.close();
  } catch {
    // Already closed.
  }
}

/** Short words for the log line instead of Deno's `(os error N)` messages. */
function describeError(err: unknown): string {
  if (err instanceof Deno.errors.ConnectionRefused) return "connection refused";
  if (err instanceof Deno.errors.ConnectionReset) return "connection reset";
  if (err instanceof Deno.errors.ConnectionAborted) return "connection aborted";
  if (err instanceof Deno.errors.NotConnected) return "not connected";
  if (err instanceof Deno.errors.BrokenPipe) return "connection closed";
  if (err instanceof Error) return err.message.replace(/ \(os error \d+\)$/, "");
  return String(err);
}
