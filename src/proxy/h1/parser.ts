/**
 * Strict HTTP/1.x response-head parsing by byte scanning. The head is located incrementally with
 * {@link findHeadEnd} and then parsed in one pass by {@link parseHead}, which builds the
 * hop-by-hop-free `Headers` directly, so a response head costs one string decode plus substrings.
 *
 * @module
 */
import { HOP_BY_HOP } from "../hop.ts";

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

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;
const COLON = 58;
const COMMA = 44;

/**
 * 1 for `tchar` (RFC 9110 §5.6.2).
 *
 * @example
 * ```ts
 * TCHAR[0x41]; // 1 ("A")
 * ```
 */
export const TCHAR: Uint8Array = new Uint8Array(256);
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) TCHAR[c] = 1;
for (const ch of "!#$%&'*+-.^_`|~") TCHAR[ch.charCodeAt(0)] = 1;

/**
 * 1 for bytes allowed in a field value or reason phrase: VCHAR, SP, HTAB, obs-text.
 *
 * @example
 * ```ts
 * FIELD_BYTE[0x0d]; // 0 (CR)
 * ```
 */
export const FIELD_BYTE: Uint8Array = new Uint8Array(256);
for (let c = 0x20; c <= 0xff; c++) FIELD_BYTE[c] = 1;
FIELD_BYTE[0x7f] = 0;
FIELD_BYTE[HTAB] = 1;

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

const decoder = new TextDecoder();

/**
 * Decodes bytes as Latin-1 (the ByteString `Headers` wants); ASCII takes the native path.
 *
 * @example
 * ```ts
 * latin1(new Uint8Array([0x68, 0x69]), 0, 2, false); // "hi"
 * ```
 */
export function latin1(buf: Uint8Array, start: number, end: number, high: boolean): string {
  if (!high) return decoder.decode(buf.subarray(start, end));
  let s = "";
  for (let i = start; i < end; i += 4096) {
    s += String.fromCharCode.apply(null, Array.from(buf.subarray(i, Math.min(end, i + 4096))));
  }
  return s;
}

/**
 * Kinds of header fields the parsers act on; everything else is {@link F_OTHER}.
 *
 * @example
 * ```ts
 * fieldKind(bytes, 0, 4) === F_HOST;
 * ```
 */
export const F_OTHER = 0;
/** `Content-Length`. */
export const F_CONTENT_LENGTH = 1;
/** `Transfer-Encoding`. */
export const F_TRANSFER_ENCODING = 2;
/** `Connection`. */
export const F_CONNECTION = 3;
/** Any other hop-by-hop field of {@link HOP_BY_HOP}. */
export const F_HOP = 4;
/** `Upgrade` (hop-by-hop; requests keep its value for a tunnel). */
export const F_UPGRADE = 5;
/** `Host` (requests only; an ordinary field in responses). */
export const F_HOST = 6;
/** `Expect` (requests only: the proxy answers `100-continue` itself). */
export const F_EXPECT = 7;

const V_CHUNKED = bytes("chunked");
const V_CLOSE = bytes("close");
const V_KEEP_ALIVE = bytes("keep-alive");

function bytes(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/**
 * Case-insensitive match of `buf[s, s+len)` against a lower-case name of letters and '-'.
 *
 * @example
 * ```ts
 * is(new TextEncoder().encode("Close"), 0, 5, new TextEncoder().encode("close")); // true
 * ```
 */
export function is(buf: Uint8Array, s: number, len: number, name: Uint8Array): boolean {
  if (len !== name.length) return false;
  // `| 0x20` lower-cases letters; only CR shares '-' under it, and CR is never in a token.
  for (let i = 0; i < len; i++) if ((buf[s + i] | 0x20) !== name[i]) return false;
  return true;
}

/**
 * Names the parsers recognise, by length. Built from the one hop-by-hop list in `hop.ts`, so the
 * wire parsers and the `Headers`-based paths drop exactly the same fields.
 */
const KNOWN: [Uint8Array, number][][] = [];
function know(name: string, kind: number): void {
  const b = bytes(name);
  (KNOWN[b.length] ??= []).push([b, kind]);
}
know("content-length", F_CONTENT_LENGTH);
know("transfer-encoding", F_TRANSFER_ENCODING);
know("connection", F_CONNECTION);
know("upgrade", F_UPGRADE);
know("host", F_HOST);
know("expect", F_EXPECT);
for (const name of HOP_BY_HOP) {
  if (!KNOWN[name.length]?.some(([b]) => is(b, 0, b.length, bytes(name)))) know(name, F_HOP);
}

/**
 * The kind of the field named by `buf[s, s+len)` (case-insensitive).
 *
 * @example
 * ```ts
 * fieldKind(new TextEncoder().encode("Keep-Alive"), 0, 10); // F_HOP
 * ```
 */
export function fieldKind(buf: Uint8Array, s: number, len: number): number {
  const candidates = KNOWN[len];
  if (candidates === undefined) return F_OTHER;
  for (let k = 0; k < candidates.length; k++) {
    const [name, kind] = candidates[k];
    if (is(buf, s, len, name)) return kind;
  }
  return F_OTHER;
}

/**
 * Skips optional whitespace forward.
 *
 * @example
 * ```ts
 * skipOws(new TextEncoder().encode("  x"), 0, 3); // 2
 * ```
 */
export function skipOws(buf: Uint8Array, i: number, end: number): number {
  while (i < end && (buf[i] === SP || buf[i] === HTAB)) i++;
  return i;
}

/** Mutable state of one head parse that the list-valued fields update. */
interface FieldState {
  contentLength: number;
  /** 0: no Transfer-Encoding; 1: present, chunked last; 2: present, something else last. */
  te: number;
  close: boolean;
  keepAlive: boolean;
  /** Field names listed in `Connection` (lower case), removed at the end. */
  named: string[] | null;
}

/** Parses a `Content-Length` value (a list of equal decimals is allowed, RFC 9110 §8.6). */
function contentLength(buf: Uint8Array, s: number, e: number, st: FieldState): void {
  let i = s;
  for (;;) {
    i = skipOws(buf, i, e);
    let n = 0;
    const d = i;
    while (i < e && buf[i] >= 0x30 && buf[i] <= 0x39) n = n * 10 + buf[i++] - 0x30;
    if (i === d || i - d > 15) throw new ParseError("invalid Content-Length");
    if (st.contentLength !== -1 && st.contentLength !== n) {
      throw new ParseError("conflicting Content-Length");
    }
    st.contentLength = n;
    i = skipOws(buf, i, e);
    if (i === e) return;
    if (buf[i] !== COMMA) throw new ParseError("invalid Content-Length");
    i++;
  }
}

/** Walks the codings of a `Transfer-Encoding` value: chunked may only be the last one. */
function transferEncoding(buf: Uint8Array, s: number, e: number, st: FieldState): void {
  let i = s;
  while (i < e) {
    i = skipOws(buf, i, e);
    const t = i;
    while (i < e && TCHAR[buf[i]] === 1) i++;
    const len = i - t;
    while (i < e && buf[i] !== COMMA) i++; // coding parameters
    if (len === 0) {
      if (i < e) i++;
      continue;
    }
    if (st.te === 1) throw new ParseError("chunked is not the final transfer coding");
    st.te = is(buf, t, len, V_CHUNKED) ? 1 : 2;
    if (i < e) i++;
  }
}

/** Reads the `Connection` options: close, keep-alive, and field names to drop. */
function connection(
  buf: Uint8Array,
  s: number,
  e: number,
  text: string,
  offset: number,
  st: FieldState,
): void {
  let i = s;
  while (i < e) {
    i = skipOws(buf, i, e);
    const t = i;
    while (i < e && TCHAR[buf[i]] === 1) i++;
    const len = i - t;
    if (len > 0) {
      if (is(buf, t, len, V_CLOSE)) st.close = true;
      else if (is(buf, t, len, V_KEEP_ALIVE)) st.keepAlive = true;
      else (st.named ??= []).push(text.substring(t - offset, i - offset).toLowerCase());
    }
    while (i < e && buf[i] !== COMMA) i++;
    i++;
  }
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
  let count = 0;
  while (buf[i] !== CR) {
    const n = i;
    while (TCHAR[buf[i]] === 1) i++;
    if (i === n || buf[i] !== COLON) throw new ParseError("invalid header field name");
    i++;
    while (buf[i] !== CR) {
      const c = buf[i++];
      if (FIELD_BYTE[c] === 0) throw new ParseError("invalid header field value");
      if (c > 0x7f) high = true;
    }
    if (buf[i + 1] !== LF) throw new ParseError("bare CR in header field");
    i += 2;
    if (++count > limits.maxHeaders) throw new ParseError("too many header fields");
  }
  if (i !== end - 2) throw new ParseError("bare CR in response head");

  const text = latin1(buf, start, end, high);
  const st: FieldState = {
    contentLength: -1,
    te: 0,
    close: false,
    keepAlive: false,
    named: null,
  };
  const headers: [string, string][] = [];
  let upgrade: string | null = null;
  i = lineStart;
  while (buf[i] !== CR) {
    const n = i;
    while (buf[i] !== COLON) i++;
    const nameEnd = i;
    const vs = skipOws(buf, i + 1, end);
    i = buf.indexOf(CR, vs);
    let ve = i;
    while (ve > vs && (buf[ve - 1] === SP || buf[ve - 1] === HTAB)) ve--;
    i += 2;
    const kind = fieldKind(buf, n, nameEnd - n);
    if (kind === F_CONTENT_LENGTH) contentLength(buf, vs, ve, st);
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
        connection(buf, vs, ve, text, start, st);
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
