/**
 * Access log lines: JSON (one object a line) or nginx's `combined` format followed by the
 * request id and the upstream response time.
 *
 * @module
 */

/** `--access-log-format` values. */
export type AccessLogFormat = "json" | "combined";

/** What one log line says about one request. */
export interface AccessEntry {
  /** Milliseconds since the epoch when the request arrived. */
  readonly time: number;
  readonly requestId: string;
  readonly client: string;
  readonly method: string;
  readonly host: string | null;
  /** Path and query as sent. */
  readonly target: string;
  /** `HTTP/1.1`, `HTTP/2`... */
  readonly protocol: string;
  readonly status: number;
  /** Request body bytes (declared length; 0 without a body). */
  readonly bytesIn: number;
  /** Response body bytes, when known. */
  readonly bytesOut: number | null;
  readonly seconds: number;
  readonly backend: string | null;
  readonly server: string | null;
  readonly upstreamStatus: number | null;
  readonly upstreamSeconds: number | null;
  readonly retries: number;
  /** The `x-dynlb-error` code of an answer the proxy made itself. */
  readonly error: string | null;
  readonly referer: string | null;
  readonly userAgent: string | null;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/**
 * One line (with its newline) in `format`.
 *
 * @example
 * ```ts
 * formatEntry(entry, "json"); // '{"time":"2026-…","request_id":"…",…}\n'
 * ```
 */
export function formatEntry(e: AccessEntry, format: AccessLogFormat): string {
  if (format === "json") {
    // Written by hand: JSON.stringify of the whole object costs several times more per line.
    return `{"time":"${iso(e.time)}","request_id":${str(e.requestId)},"client":${str(e.client)},` +
      `"method":${str(e.method)},"host":${str(e.host)},"target":${str(e.target)},` +
      `"protocol":${str(e.protocol)},"status":${e.status},"bytes_in":${e.bytesIn},` +
      `"bytes_out":${e.bytesOut},"duration":${round(e.seconds)},"backend":${str(e.backend)},` +
      `"server":${str(e.server)},"upstream_status":${e.upstreamStatus},"upstream_time":${
        e.upstreamSeconds === null ? null : round(e.upstreamSeconds)
      },"retries":${e.retries},"error":${str(e.error)}}\n`;
  }
  // $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent
  // "$http_referer" "$http_user_agent" then request id and upstream time.
  return `${e.client} - - [${clf(e.time)}] "${quote(`${e.method} ${e.target} ${e.protocol}`)}" ` +
    `${e.status} ${e.bytesOut ?? 0} "${quote(e.referer ?? "-")}" "${quote(e.userAgent ?? "-")}" ` +
    `${e.requestId} ${e.upstreamSeconds === null ? "-" : round(e.upstreamSeconds)}\n`;
}

/** A JSON string (or null); plain printable ASCII, the usual case, without JSON.stringify. */
function str(value: string | null): string {
  if (value === null) return "null";
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return JSON.stringify(value);
  }
  return `"${value}"`;
}

/** ISO 8601 in UTC with milliseconds; the part up to the second is reused within a second. */
let isoSecond = -1;
let isoPrefix = "";
function iso(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== isoSecond) {
    isoSecond = second;
    isoPrefix = new Date(second * 1000).toISOString().slice(0, 20);
  }
  return `${isoPrefix}${String(Math.floor(ms) % 1000).padStart(3, "0")}Z`;
}

/** Seconds with millisecond precision, as nginx prints `$request_time`. */
function round(seconds: number): number {
  return Math.round(seconds * 1000) / 1000;
}

/** nginx escapes `"`, `\` and control characters in quoted fields as `\xHH`. */
function quote(text: string): string {
  let out = "";
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 0x20 && c !== 0x22 && c !== 0x5c && c !== 0x7f) continue;
    out += text.slice(from, i) + "\\x" + c.toString(16).padStart(2, "0");
    from = i + 1;
  }
  return from === 0 ? text : out + text.slice(from);
}

/** `10/Oct/2000:13:55:36 +0000` (UTC, as the logs of a fleet are easier to merge). */
function clf(ms: number): string {
  const d = new Date(ms);
  const two = (n: number) => String(n).padStart(2, "0");
  return `${two(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:` +
    `${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000`;
}
