/**
 * Strict HTTP/1.x response-head parsing by byte scanning. The head is located incrementally with
 * {@link findHeadEnd} and then parsed in one pass by {@link parseHead}, which builds the
 * hop-by-hop-free `Headers` directly, so a response head costs one string decode plus substrings.
 *
 * @module
 */
import {
  type ConnectionOptions,
  connectionOptions,
  contentLength,
  CR,
  F_CONNECTION,
  F_CONTENT_LENGTH,
  F_EXPECT,
  F_HOST,
  F_OTHER,
  F_TRANSFER_ENCODING,
  F_UPGRADE,
  FIELD_BYTE,
  fieldKind,
  FieldLines,
  forEachListToken,
  is,
  latin1,
  LENGTH_CONFLICT,
  LF,
  LINES_HIGH,
  linesMessage,
  scanFieldLines,
  SP,
  V_CHUNKED,
} from "./fields.ts";

/**
 * A response that breaks the protocol (or the configured limits).
 *
 * @example
 * ```ts
 * if (err instanceof ParseError) console.log("malformed:", err.message);
 * ```
 */
export class ParseError extends Error {
  override name = "ParseError";
}

/**
 * Bounds on what an upstream may send in a head.
 *
 * @example
 * ```ts
 * const limits: HeadLimits = { maxHeadBytes: 8192, maxHeaders: 64 };
 * ```
 */
export interface HeadLimits {
  /** Bytes of one response head (status line, fields, final CRLF). */
  readonly maxHeadBytes: number;
  /** Header fields in one head (also bounds chunked trailers). */
  readonly maxHeaders: number;
}

/**
 * The limits used when none are given: 64 KiB and 256 fields.
 *
 * @example
 * ```ts
 * DEFAULT_LIMITS.maxHeadBytes; // 65536
 * ```
 */
export const DEFAULT_LIMITS: HeadLimits = { maxHeadBytes: 64 * 1024, maxHeaders: 256 };

/**
 * A parsed response head.
 *
 * @example
 * ```ts
 * const head: ResponseHead = parseHead(bytes, 0, bytes.length, DEFAULT_LIMITS);
 * ```
 */
export interface ResponseHead {
  readonly status: number;
  readonly reason: string;
  /** The `x` of `HTTP/1.x`. */
  readonly minor: number;
  /**
   * All fields except hop-by-hop ones and those named by `Connection`, as `[name, value]` pairs
   * in arrival order (a `Response` built from pairs validates them once; from a `Headers`,
   * twice).
   */
  readonly headers: [string, string][];
  /** The `Content-Length` value, or -1 when absent. */
  readonly contentLength: number;
  /** Whether `Transfer-Encoding` ends in `chunked`. */
  readonly chunked: boolean;
  /** Whether `Transfer-Encoding` is present (without chunked last, the body runs until close). */
  readonly transferEncoded: boolean;
  /** Whether the connection may carry another exchange after this one (version + Connection). */
  readonly keepAlive: boolean;
  /** The `Upgrade` value (a hop-by-hop field, kept for a 101), or `null`. */
  readonly upgrade: string | null;
}

/**
 * Finds the end of a response head (the index after its blank line) in `buf[start, end)`,
 * scanning from `from` (at least `start`; callers resume near where the last scan stopped).
 * Returns -1 when the head is not complete yet.
 *
 * @throws {ParseError} on a line feed not preceded by a carriage return.
 * @example
 * ```ts
 * const b = new TextEncoder().encode("HTTP/1.1 204 No Content\r\n\r\n");
 * findHeadEnd(b, 0, 0, b.length); // b.length
 * ```
 */
export function findHeadEnd(buf: Uint8Array, from: number, start: number, end: number): number {
  let i = from;
  while (i < end) {
    i = buf.indexOf(LF, i);
    if (i < 0 || i >= end) return -1;
    if (i === start || buf[i - 1] !== CR) throw new ParseError("bare LF in head");
    if (i - 3 >= start && buf[i - 2] === LF && buf[i - 3] === CR) return i + 1;
    i++;
  }
  return -1;
}

/** Mutable state of one head parse that the list-valued fields update. */
interface FieldState extends ConnectionOptions {
  contentLength: number;
  /** 0: no Transfer-Encoding; 1: present, chunked last; 2: present, something else last. */
  te: number;
}

/** Walks the codings of a `Transfer-Encoding` value: chunked may only be the last one. */
function transferEncoding(buf: Uint8Array, s: number, e: number, st: FieldState): void {
  forEachListToken(buf, s, e, st, transferCoding);
}

function transferCoding(st: FieldState, buf: Uint8Array, t: number, len: number): void {
  if (st.te === 1) throw new ParseError("chunked is not the final transfer coding");
  st.te = is(buf, t, len, V_CHUNKED) ? 1 : 2;
}

/**
 * Parses the complete head `buf[start, end)` (as found by {@link findHeadEnd}). Interim (1xx)
 * heads are returned like any other; the caller skips them.
 *
 * @throws {ParseError} when the head is malformed or exceeds `limits`.
 * @example
 * ```ts
 * const b = new TextEncoder().encode("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
 * parseHead(b, 0, b.length, DEFAULT_LIMITS).contentLength; // 2
 * ```
 */
export function parseHead(
  buf: Uint8Array,
  start: number,
  end: number,
  limits: HeadLimits,
): ResponseHead {
  if (end - start > limits.maxHeadBytes) throw new ParseError("response head too large");
  // Status line: HTTP/1.x SP 3DIGIT [SP reason] CRLF.
  if (
    end - start < 14 || buf[start] !== 0x48 || buf[start + 1] !== 0x54 ||
    buf[start + 2] !== 0x54 || buf[start + 3] !== 0x50 || buf[start + 4] !== 0x2f ||
    buf[start + 5] !== 0x31 || buf[start + 6] !== 0x2e
  ) throw new ParseError("invalid status line");
  const minor = buf[start + 7] - 0x30;
  if ((minor !== 0 && minor !== 1) || buf[start + 8] !== SP) {
    throw new ParseError("invalid status line");
  }
  const d0 = buf[start + 9] - 0x30, d1 = buf[start + 10] - 0x30, d2 = buf[start + 11] - 0x30;
  if (d0 < 1 || d0 > 5 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) {
    throw new ParseError("invalid status code");
  }
  const status = d0 * 100 + d1 * 10 + d2;
  let i = start + 12;
  let high = false;
  let reasonStart = i;
  if (buf[i] === SP) reasonStart = ++i;
  else if (buf[i] !== CR) throw new ParseError("invalid status line");
  while (buf[i] !== CR) {
    const c = buf[i++];
    if (FIELD_BYTE[c] === 0) throw new ParseError("invalid reason phrase");
    if (c > 0x7f) high = true;
  }
  const reasonEnd = i;
  if (buf[i + 1] !== LF) throw new ParseError("bare CR in status line");
  i += 2;

  // Validate every field line before decoding, so the string is only built for a good head.
  const lineStart = i;
  const lines = scanFieldLines(buf, i, end, limits.maxHeaders);
  if (lines < 0) throw new ParseError(linesMessage(lines, "response"));
  if (lines === LINES_HIGH) high = true;

  const text = latin1(buf, start, end, high);
  const st: FieldState = {
    contentLength: -1,
    te: 0,
    close: false,
    keepAlive: false,
    upgrade: false,
    named: null,
  };
  const headers: [string, string][] = [];
  let upgrade: string | null = null;
  const line = new FieldLines(buf, lineStart, end);
  while (line.next()) {
    const n = line.name, nameEnd = line.nameEnd, vs = line.value, ve = line.valueEnd;
    const kind = fieldKind(buf, n, nameEnd - n);
    if (kind === F_CONTENT_LENGTH) {
      const length = contentLength(buf, vs, ve, st.contentLength);
      if (length === LENGTH_CONFLICT) throw new ParseError("conflicting Content-Length");
      if (length < 0) throw new ParseError("invalid Content-Length");
      st.contentLength = length;
    }
    switch (kind) {
      case F_OTHER:
      case F_HOST:
      case F_EXPECT:
      case F_CONTENT_LENGTH:
        headers.push([
          text.substring(n - start, nameEnd - start),
          text.substring(vs - start, ve - start),
        ]);
        break;
      case F_TRANSFER_ENCODING:
        transferEncoding(buf, vs, ve, st);
        break;
      case F_CONNECTION:
        connectionOptions(buf, vs, ve, text, start, st);
        break;
      case F_UPGRADE:
        upgrade = text.substring(vs - start, ve - start);
        break;
    }
  }
  if (st.te !== 0) {
    // RFC 9112 §6.3: both framings at once invites smuggling; HTTP/1.0 has no transfer codings.
    if (st.contentLength !== -1) throw new ParseError("both Transfer-Encoding and Content-Length");
    if (minor === 0) throw new ParseError("Transfer-Encoding in an HTTP/1.0 response");
  }
  const named = st.named;
  return {
    status,
    reason: text.substring(reasonStart - start, reasonEnd - start),
    minor,
    headers: named === null
      ? headers
      : headers.filter(([name]) => !named.includes(name.toLowerCase())),
    contentLength: st.contentLength,
    chunked: st.te === 1,
    transferEncoded: st.te !== 0,
    keepAlive: minor === 1 ? !st.close : st.keepAlive && !st.close,
    upgrade,
  };
}
