/**
 * Strict HTTP/1.x request-head parsing (RFC 9112) for dynlb's own listener: the client half of
 * the codec whose server half is `parser.ts`, sharing with it the field-line core of `fields.ts`
 * (byte tables, field classifier, the one hop-by-hop list). A request that breaks a rule is refused with the status the RFC names
 * (400, 405, 414, 431, 501, 505) and never reaches a server; the listener closes the connection
 * after every such answer.
 *
 * @module
 */
import type { Wire } from "./connection.ts";
import {
  ascii,
  COMMA,
  type ConnectionOptions,
  connectionOptions,
  contentLength,
  CR,
  F_CONNECTION,
  F_CONTENT_LENGTH,
  F_EXPECT,
  F_HOP,
  F_HOST,
  F_TRANSFER_ENCODING,
  F_UPGRADE,
  fieldKind,
  FieldLines,
  forEachListToken,
  HTAB,
  is,
  latin1,
  LENGTH_CONFLICT,
  LF,
  LINES_HIGH,
  LINES_TOO_MANY,
  linesMessage,
  scanFieldLines,
  skipOws,
  SP,
  TCHAR,
  V_CHUNKED,
} from "./fields.ts";
import { findHeadEnd, ParseError } from "./parser.ts";

/**
 * A request dynlb refuses; `status` is what the client gets (the connection is closed after).
 *
 * @example
 * ```ts
 * if (err instanceof RequestError) console.log(err.status, err.message);
 * ```
 */
export class RequestError extends Error {
  override name = "RequestError";
  /** 400, 405, 408, 413, 414, 431, 501 or 505. */
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/**
 * Bounds on a request head.
 *
 * @example
 * ```ts
 * const limits: RequestLimits = { maxHeadBytes: 65536, maxHeaders: 256, maxTargetBytes: 8192 };
 * ```
 */
export interface RequestLimits {
  /** Bytes of the whole head (request line, fields, final CRLF): 431 beyond. */
  readonly maxHeadBytes: number;
  /** Header fields: 431 beyond. */
  readonly maxHeaders: number;
  /** Bytes of the request target: 414 beyond. */
  readonly maxTargetBytes: number;
}

/**
 * The limits of the issue: 64 KiB head, 256 fields, 8 KiB target (nginx's defaults are 8 KiB
 * lines in a 32 KiB head).
 *
 * @example
 * ```ts
 * REQUEST_LIMITS.maxTargetBytes; // 8192
 * ```
 */
export const REQUEST_LIMITS: RequestLimits = {
  maxHeadBytes: 64 * 1024,
  maxHeaders: 256,
  maxTargetBytes: 8 * 1024,
};

/**
 * A parsed request head, ready for the request path.
 *
 * @example
 * ```ts
 * const head: RequestHead = parseRequestHead(bytes, 0, bytes.length, REQUEST_LIMITS);
 * ```
 */
export interface RequestHead {
  readonly method: string;
  /** Origin form (`/path?query`) or `*`; an absolute-form target is reduced to this. */
  readonly target: string;
  /** The `x` of `HTTP/1.x`. */
  readonly minor: number;
  /**
   * Where the request goes: the authority of an absolute-form target, else the `Host` value;
   * `null` for an HTTP/1.0 request without `Host`.
   */
  readonly authority: string | null;
  /**
   * End-to-end fields as `[lower-case name, value]` in arrival order: without hop-by-hop fields,
   * those named by `Connection`, `Content-Length`, `Transfer-Encoding` and `Expect`. `host`
   * carries {@link authority}.
   */
  readonly headers: [string, string][];
  /** The `Content-Length`, or -1. */
  readonly contentLength: number;
  /** Whether the body is chunked. */
  readonly chunked: boolean;
  /** Whether the client wants the connection kept after this exchange. */
  readonly keepAlive: boolean;
  /** Whether the client waits for `100 Continue` before sending its body. */
  readonly expectContinue: boolean;
  /** The protocol asked for with `Connection: upgrade` + `Upgrade` (never `h2c`), or `null`. */
  readonly upgrade: string | null;
}

const SLASH = 47;

/** 1 for bytes of a request target: visible ASCII (RFC 3986 characters and a bit more). */
const TARGET_BYTE = new Uint8Array(256);
for (let c = 0x21; c <= 0x7e; c++) TARGET_BYTE[c] = 1;

/** 1 for bytes of a host[:port] (reg-name, IP literals, pct-encoding). */
const HOST_BYTE = new Uint8Array(256);
for (let c = 0x30; c <= 0x39; c++) HOST_BYTE[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) HOST_BYTE[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) HOST_BYTE[c] = 1;
for (const ch of "-._~!$&'()*+,;=:[]%") HOST_BYTE[ch.charCodeAt(0)] = 1;

const V_100_CONTINUE = ascii("100-continue");
const V_H2C = ascii("h2c");
/** Transfer codings dynlb knows (RFC 9110 §18.7); others are answered 501. */
const KNOWN_CODINGS = ["chunked", "gzip", "x-gzip", "deflate", "compress", "x-compress"].map((
  c,
) => ascii(c));

function fail(message: string): never {
  throw new RequestError(400, message);
}

/** Mutable state the list-valued fields update. */
interface State extends ConnectionOptions {
  contentLength: number;
  /** Codings seen; `chunked` must be the last and only once. */
  te: number;
  chunkedLast: boolean;
  hosts: number;
  host: string | null;
  expectContinue: boolean;
  /** The `Upgrade` value without `h2c`. */
  upgradeValue: string | null;
}

function transferEncoding(buf: Uint8Array, s: number, e: number, st: State): void {
  forEachListToken(buf, s, e, st, transferCoding);
}

function transferCoding(st: State, buf: Uint8Array, t: number, len: number): void {
  if (!KNOWN_CODINGS.some((c) => is(buf, t, len, c))) {
    throw new RequestError(501, "unknown transfer coding");
  }
  if (st.chunkedLast) fail("chunked is not the final transfer coding");
  st.te++;
  st.chunkedLast = is(buf, t, len, V_CHUNKED);
}

/** Keeps the protocols of `Upgrade` except `h2c` (never forwarded: dynlb speaks no HTTP/2). */
function upgradeValue(buf: Uint8Array, s: number, e: number, text: string, off: number): string {
  let out = "";
  let i = s;
  while (i < e) {
    i = skipOws(buf, i, e);
    const t = i;
    while (i < e && buf[i] !== COMMA) i++;
    let te = i;
    while (te > t && (buf[te - 1] === SP || buf[te - 1] === HTAB)) te--;
    i++;
    if (te === t || is(buf, t, te - t, V_H2C)) continue;
    out += (out === "" ? "" : ", ") + text.substring(t - off, te - off);
  }
  return out;
}

function validHost(buf: Uint8Array, s: number, e: number): boolean {
  for (let i = s; i < e; i++) if (HOST_BYTE[buf[i]] !== 1) return false;
  return true;
}

/**
 * Whether `text` is an authority dynlb routes by (the `Host` characters of RFC 9110 §7.2, no
 * user info): what the `serve` listener checks in an absolute-form target, as this parser does.
 *
 * @example
 * ```ts
 * validAuthority("a.test:8080"); // true
 * validAuthority("user@a.test"); // false
 * ```
 */
export function validAuthority(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff || HOST_BYTE[c] !== 1) return false;
  }
  return true;
}

/**
 * Parses the complete request head `buf[start, end)` (its end found by `findHeadEnd`).
 *
 * @throws {RequestError} with the status to answer.
 * @example
 * ```ts
 * const b = new TextEncoder().encode("GET /a HTTP/1.1\r\nHost: a.test\r\n\r\n");
 * parseRequestHead(b, 0, b.length, REQUEST_LIMITS).authority; // "a.test"
 * ```
 */
export function parseRequestHead(
  buf: Uint8Array,
  start: number,
  end: number,
  limits: RequestLimits,
): RequestHead {
  if (end - start > limits.maxHeadBytes) throw new RequestError(431, "request head too large");
  // Request line: method SP request-target SP HTTP-version CRLF.
  let i = start;
  while (TCHAR[buf[i]] === 1) i++;
  if (i === start || buf[i] !== SP) fail("invalid method");
  const methodEnd = i++;
  const ts = i;
  while (TARGET_BYTE[buf[i]] === 1) i++;
  const te = i;
  if (te - ts > limits.maxTargetBytes) throw new RequestError(414, "request target too long");
  if (te === ts || buf[i] !== SP) fail("invalid request target");
  i++;
  // HTTP-version = "HTTP/" DIGIT "." DIGIT
  if (
    buf[i] !== 0x48 || buf[i + 1] !== 0x54 || buf[i + 2] !== 0x54 || buf[i + 3] !== 0x50 ||
    buf[i + 4] !== SLASH || buf[i + 6] !== 0x2e || buf[i + 8] !== CR || buf[i + 9] !== LF
  ) fail("invalid HTTP version");
  const major = buf[i + 5] - 0x30, minor = buf[i + 7] - 0x30;
  if (major < 0 || major > 9 || minor < 0 || minor > 9) fail("invalid HTTP version");
  if (major !== 1 || minor > 1) throw new RequestError(505, "HTTP version not supported");
  i += 10;

  // Validate every field line before decoding, so the string is only built for a good head.
  const lineStart = i;
  const lines = scanFieldLines(buf, i, end, limits.maxHeaders);
  if (lines < 0) {
    throw new RequestError(lines === LINES_TOO_MANY ? 431 : 400, linesMessage(lines, "request"));
  }
  const high = lines === LINES_HIGH;

  const text = latin1(buf, start, end, high);
  const method = text.substring(0, methodEnd - start);
  const st: State = {
    contentLength: -1,
    te: 0,
    chunkedLast: false,
    close: false,
    keepAlive: false,
    upgrade: false,
    named: null,
    hosts: 0,
    host: null,
    expectContinue: false,
    upgradeValue: null,
  };
  const headers: [string, string][] = [];
  let hostAt = -1;
  const line = new FieldLines(buf, lineStart, end);
  while (line.next()) {
    const n = line.name, nameEnd = line.nameEnd, vs = line.value, ve = line.valueEnd;
    switch (fieldKind(buf, n, nameEnd - n)) {
      case F_CONTENT_LENGTH: {
        const length = contentLength(buf, vs, ve, st.contentLength);
        if (length === LENGTH_CONFLICT) fail("conflicting Content-Length");
        if (length < 0) fail("invalid Content-Length");
        st.contentLength = length;
        break;
      }
      case F_TRANSFER_ENCODING:
        transferEncoding(buf, vs, ve, st);
        break;
      case F_CONNECTION:
        connectionOptions(buf, vs, ve, text, start, st);
        break;
      case F_UPGRADE:
        st.upgradeValue = upgradeValue(buf, vs, ve, text, start);
        break;
      case F_EXPECT:
        if (is(buf, vs, ve - vs, V_100_CONTINUE)) st.expectContinue = true;
        break;
      case F_HOP:
        break;
      case F_HOST:
        if (++st.hosts > 1) fail("more than one Host header");
        if (!validHost(buf, vs, ve)) fail("invalid Host header");
        st.host = text.substring(vs - start, ve - start);
        hostAt = headers.length;
        headers.push(["host", st.host]);
        break;
      default:
        headers.push([
          text.substring(n - start, nameEnd - start).toLowerCase(),
          text.substring(vs - start, ve - start),
        ]);
    }
  }
  if (minor === 1 && st.hosts === 0) fail("HTTP/1.1 request without Host header");
  if (st.te > 0) {
    // RFC 9112 §6.1/§6.3: both framings at once is a smuggling attempt; HTTP/1.0 has no
    // transfer codings; a request body must end in chunked to have a length.
    if (st.contentLength !== -1) fail("both Transfer-Encoding and Content-Length");
    if (minor === 0) fail("Transfer-Encoding in an HTTP/1.0 request");
    if (!st.chunkedLast) fail("chunked is not the final transfer coding");
  }
  if (method === "CONNECT") throw new RequestError(405, "CONNECT is not supported");

  // Request target forms (RFC 9112 §3.2).
  let target = text.substring(ts - start, te - start);
  let authority = st.host;
  if (buf[ts] === SLASH) {
    // origin-form
  } else if (te - ts === 1 && buf[ts] === 0x2a) {
    if (method !== "OPTIONS") fail("'*' target without OPTIONS");
  } else {
    const colon = target.indexOf("://");
    const scheme = colon > 0 ? target.substring(0, colon).toLowerCase() : "";
    if (scheme !== "http" && scheme !== "https") fail("invalid request target");
    const as = colon + 3;
    let ae = as;
    while (ae < target.length && target[ae] !== "/" && target[ae] !== "?") ae++;
    if (ae === as || !validHost(buf, ts + as, ts + ae) || target.includes("@", as)) {
      fail("invalid authority in request target");
    }
    authority = target.substring(as, ae);
    const rest = target.substring(ae);
    // The authority replaces Host (§3.2.2); the server gets the origin form.
    target = rest === "" ? (method === "OPTIONS" ? "*" : "/") : rest[0] === "?" ? "/" + rest : rest;
    if (hostAt >= 0) headers[hostAt] = ["host", authority];
    else headers.push(["host", authority]);
  }

  const named = st.named;
  return {
    method,
    target,
    minor,
    authority,
    headers: named === null ? headers : headers.filter(([name]) => !named.includes(name)),
    contentLength: st.contentLength,
    chunked: st.te > 0,
    keepAlive: minor === 1 ? !st.close : st.keepAlive && !st.close,
    expectContinue: minor === 1 && st.expectContinue,
    upgrade: st.upgrade && st.upgradeValue !== null && st.upgradeValue !== ""
      ? st.upgradeValue
      : null,
  };
}

/** Empty lines tolerated before a request line (RFC 9112 §2.2). */
const MAX_LEADING_CRLF = 8;

/**
 * Reads the next request head from `wire`, however its bytes are split, and leaves the wire at
 * the body. Resolves `null` when the stream ends first (a client closing between requests, or
 * in the middle of a head: nothing to answer then). `onData` runs after every read that brought
 * bytes (the listener switches from the idle to the header timeout there).
 *
 * @throws {RequestError} for a head to refuse; errors of the byte source pass through.
 * @example
 * ```ts
 * const head = await readRequestHead(new Wire(conn), REQUEST_LIMITS);
 * ```
 */
export async function readRequestHead(
  wire: Wire,
  limits: RequestLimits,
  onData?: () => void,
): Promise<RequestHead | null> {
  let scanned = 0;
  let blank = 0;
  for (;;) {
    // Empty lines before a request line are skipped, a few at most.
    while (
      wire.end - wire.start >= 2 && wire.buf[wire.start] === CR && wire.buf[wire.start + 1] === LF
    ) {
      if (++blank > MAX_LEADING_CRLF) fail("too many empty lines before the request");
      wire.start += 2;
      scanned = 0;
    }
    if (wire.end > wire.start) {
      const from = wire.start + (scanned > 3 ? scanned - 3 : 0);
      let end: number;
      try {
        end = findHeadEnd(wire.buf, from, wire.start, wire.end);
      } catch (err) {
        if (err instanceof ParseError) fail(err.message);
        throw err;
      }
      if (end >= 0) {
        const head = parseRequestHead(wire.buf, wire.start, end, limits);
        wire.start = end;
        return head;
      }
      scanned = wire.end - wire.start;
      if (scanned > limits.maxHeadBytes) throw new RequestError(431, "request head too large");
      const lf = wire.buf.indexOf(LF, wire.start);
      if (scanned > limits.maxTargetBytes + 1024 && (lf < 0 || lf >= wire.end)) {
        throw new RequestError(414, "request target too long");
      }
    }
    if (!await wire.fill()) return null;
    onData?.();
  }
}
