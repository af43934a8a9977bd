/**
 * The field-line core both HTTP/1 head parsers share (RFC 9110 §5, RFC 9112 §5): byte
 * constants, the token and field-value tables, the classifier of the fields the codec acts on,
 * the one-pass validation of a head's field lines, a cursor over validated lines, and the
 * list-valued fields whose grammar is the same in both directions (`Content-Length`,
 * `Connection`).
 *
 * Nothing here throws: problems come back as negative codes, so each parser keeps its own error
 * type (`ParseError` for a response, `RequestError` with a status for a request).
 *
 * @module
 */
import { HOP_BY_HOP } from "../hop.ts";

/** Carriage return. */
export const CR = 13;
/** Line feed. */
export const LF = 10;
/** Space. */
export const SP = 32;
/** Horizontal tab. */
export const HTAB = 9;
/** `:` */
export const COLON = 58;
/** `,` */
export const COMMA = 44;

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

/** Bytes of a value for {@link scanFieldLines}: 0 CR (or a control byte: 3 after a check), 1 ASCII, 2 obs-text. */
const VALUE_CLASS = new Uint8Array(256);
for (let c = 0; c < 256; c++) VALUE_CLASS[c] = FIELD_BYTE[c] === 0 ? 3 : c > 0x7f ? 2 : 1;
VALUE_CLASS[CR] = 0;

/**
 * ASCII text as bytes, for the names and values the parsers compare against.
 *
 * @example
 * ```ts
 * ascii("close").length; // 5
 * ```
 */
export function ascii(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** `chunked`, the transfer coding that frames a body. */
export const V_CHUNKED: Uint8Array = ascii("chunked");

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
 * Case-insensitive match of `buf[s, s+len)` against a lower-case name of letters and '-'.
 *
 * @example
 * ```ts
 * is(ascii("Close"), 0, 5, ascii("close")); // true
 * ```
 */
export function is(buf: Uint8Array, s: number, len: number, name: Uint8Array): boolean {
  if (len !== name.length) return false;
  // `| 0x20` lower-cases letters; only CR shares '-' under it, and CR is never in a token.
  for (let i = 0; i < len; i++) if ((buf[s + i] | 0x20) !== name[i]) return false;
  return true;
}

/**
 * Skips optional whitespace forward.
 *
 * @example
 * ```ts
 * skipOws(ascii("  x"), 0, 3); // 2
 * ```
 */
export function skipOws(buf: Uint8Array, i: number, end: number): number {
  while (i < end && (buf[i] === SP || buf[i] === HTAB)) i++;
  return i;
}

/**
 * Skips a token (a run of `tchar`) forward.
 *
 * @example
 * ```ts
 * tokenEnd(ascii("gzip, chunked"), 0, 13); // 4
 * ```
 */
export function tokenEnd(buf: Uint8Array, i: number, end: number): number {
  while (i < end && TCHAR[buf[i]] === 1) i++;
  return i;
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

/**
 * Names the parsers recognise, by length. Built from the one hop-by-hop list in `hop.ts`, so the
 * wire parsers and the `Headers`-based paths drop exactly the same fields.
 */
const KNOWN: [Uint8Array, number][][] = [];
function know(name: string, kind: number): void {
  const b = ascii(name);
  (KNOWN[b.length] ??= []).push([b, kind]);
}
know("content-length", F_CONTENT_LENGTH);
know("transfer-encoding", F_TRANSFER_ENCODING);
know("connection", F_CONNECTION);
know("upgrade", F_UPGRADE);
know("host", F_HOST);
know("expect", F_EXPECT);
for (const name of HOP_BY_HOP) {
  if (!KNOWN[name.length]?.some(([b]) => is(b, 0, b.length, ascii(name)))) know(name, F_HOP);
}

/**
 * The kind of the field named by `buf[s, s+len)` (case-insensitive).
 *
 * @example
 * ```ts
 * fieldKind(ascii("Keep-Alive"), 0, 10); // F_HOP
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

/** {@link scanFieldLines}: every line is good and ASCII. */
export const LINES_ASCII = 0;
/** {@link scanFieldLines}: every line is good; some byte is above 0x7f (decode as Latin-1). */
export const LINES_HIGH = 1;
/** {@link scanFieldLines}: a line starts with whitespace (obs-fold, RFC 9112 §5.2). */
export const LINES_FOLDED = -1;
/** {@link scanFieldLines}: a name that is empty, not a token, or not followed by `:`. */
export const LINES_BAD_NAME = -2;
/** {@link scanFieldLines}: a control byte in a value. */
export const LINES_BAD_VALUE = -3;
/** {@link scanFieldLines}: a CR inside a line, not followed by LF. */
export const LINES_BARE_CR = -4;
/** {@link scanFieldLines}: more lines than allowed. */
export const LINES_TOO_MANY = -5;
/** {@link scanFieldLines}: a CR after the last line that does not end the head. */
export const LINES_BARE_CR_AT_END = -6;

/**
 * Validates the field lines of a complete head, `buf[i, end)` after its start line (`end` as
 * found by `findHeadEnd`, so the head ends in CRLF CRLF): names are tokens followed by `:`,
 * values hold field bytes only, lines end in CRLF, at most `maxHeaders` of them. Nothing is
 * decoded, so a bad head costs no strings.
 *
 * @returns {@link LINES_ASCII} or {@link LINES_HIGH} when all is well, else a negative
 *   `LINES_*` code for the caller to turn into its own error.
 * @example
 * ```ts
 * const b = ascii("X: 1\r\n\r\n");
 * scanFieldLines(b, 0, b.length, 64); // LINES_ASCII
 * ```
 */
export function scanFieldLines(
  buf: Uint8Array,
  i: number,
  end: number,
  maxHeaders: number,
): number {
  let high = false;
  let count = 0;
  while (buf[i] !== CR) {
    if (buf[i] === SP || buf[i] === HTAB) return LINES_FOLDED;
    const n = i;
    while (TCHAR[buf[i]] === 1) i++;
    if (i === n || buf[i] !== COLON) return LINES_BAD_NAME;
    i++;
    // One table load a byte: 1 is the common case (ASCII, not CR); CR ends the value.
    for (let k = VALUE_CLASS[buf[i]]; k !== 0; k = VALUE_CLASS[buf[++i]]) {
      if (k !== 1) {
        if (k === 3) return LINES_BAD_VALUE;
        high = true;
      }
    }
    if (buf[i + 1] !== LF) return LINES_BARE_CR;
    i += 2;
    if (++count > maxHeaders) return LINES_TOO_MANY;
  }
  if (i !== end - 2) return LINES_BARE_CR_AT_END;
  return high ? LINES_HIGH : LINES_ASCII;
}

/**
 * The message for a negative {@link scanFieldLines} code; `head` names the message
 * ("request", "response").
 *
 * @example
 * ```ts
 * linesMessage(LINES_TOO_MANY, "request"); // "too many header fields"
 * ```
 */
export function linesMessage(code: number, head: string): string {
  switch (code) {
    case LINES_FOLDED:
      return "obsolete line folding";
    case LINES_BAD_NAME:
      return "invalid header field name";
    case LINES_BAD_VALUE:
      return "invalid header field value";
    case LINES_BARE_CR:
      return "bare CR in header field";
    case LINES_TOO_MANY:
      return "too many header fields";
    default:
      return `bare CR in ${head} head`;
  }
}

/**
 * Walks the field lines that {@link scanFieldLines} accepted, one `next()` a line, giving the
 * name and the value without surrounding whitespace as offsets into the buffer.
 *
 * @example
 * ```ts
 * const b = ascii("X: 1 \r\n\r\n");
 * const line = new FieldLines(b, 0, b.length);
 * while (line.next()) console.log(line.nameEnd - line.name, line.valueEnd - line.value); // 1 1
 * ```
 */
export class FieldLines {
  /** Where the current name starts. */
  name = 0;
  /** Where the current name ends (the `:`). */
  nameEnd = 0;
  /** Where the current value starts. */
  value = 0;
  /** Where the current value ends. */
  valueEnd = 0;
  #buf: Uint8Array;
  #at: number;
  #end: number;

  constructor(buf: Uint8Array, at: number, end: number) {
    this.#buf = buf;
    this.#at = at;
    this.#end = end;
  }

  /** Moves to the next line; false at the blank line that ends the head. */
  next(): boolean {
    const buf = this.#buf;
    let i = this.#at;
    if (buf[i] === CR) return false;
    this.name = i;
    while (buf[i] !== COLON) i++;
    this.nameEnd = i;
    const vs = skipOws(buf, i + 1, this.#end);
    i = buf.indexOf(CR, vs);
    let ve = i;
    while (ve > vs && (buf[ve - 1] === SP || buf[ve - 1] === HTAB)) ve--;
    this.value = vs;
    this.valueEnd = ve;
    this.#at = i + 2;
    return true;
  }
}

/** {@link contentLength}: not a list of decimals. */
export const LENGTH_INVALID = -2;
/** {@link contentLength}: a value that differs from one seen before. */
export const LENGTH_CONFLICT = -3;

/**
 * Parses a `Content-Length` value `buf[s, e)` given the value seen so far (-1 for none). A list
 * of equal decimals is one value (RFC 9110 §8.6); different ones are a smuggling try.
 *
 * @returns the length, or {@link LENGTH_INVALID} / {@link LENGTH_CONFLICT}.
 * @example
 * ```ts
 * contentLength(ascii("5, 5"), 0, 4, -1); // 5
 * ```
 */
export function contentLength(buf: Uint8Array, s: number, e: number, seen: number): number {
  let i = s;
  for (;;) {
    i = skipOws(buf, i, e);
    let n = 0;
    const d = i;
    while (i < e && buf[i] >= 0x30 && buf[i] <= 0x39) n = n * 10 + buf[i++] - 0x30;
    if (i === d || i - d > 15) return LENGTH_INVALID;
    if (seen !== -1 && seen !== n) return LENGTH_CONFLICT;
    seen = n;
    i = skipOws(buf, i, e);
    if (i === e) return n;
    if (buf[i] !== COMMA) return LENGTH_INVALID;
    i++;
  }
}

/**
 * What the `Connection` fields of a head said; {@link connectionOptions} fills it.
 *
 * @example
 * ```ts
 * const opts: ConnectionOptions = { close: false, keepAlive: false, upgrade: false, named: null };
 * ```
 */
export interface ConnectionOptions {
  close: boolean;
  keepAlive: boolean;
  /** The `upgrade` option (a request asking for a protocol switch). */
  upgrade: boolean;
  /** Other options: names of fields to drop, in lower case. */
  named: string[] | null;
}

const V_CLOSE = ascii("close");
const V_KEEP_ALIVE = ascii("keep-alive");
const V_UPGRADE = ascii("upgrade");

/**
 * Calls `visit(ctx, buf, start, length)` for the leading token of each element of the
 * comma-separated list `buf[s, e)` (RFC 9110 §5.6.1) that has one: whitespace before it is
 * skipped, whatever follows it up to the next comma (parameters, stray bytes) passed over, and
 * empty elements ignored. `visit` is a plain function with its state in `ctx`, so a walk
 * allocates nothing.
 *
 * @example
 * ```ts
 * const seen: string[] = [];
 * forEachListToken(ascii(" gzip;q=1, ,chunked"), 0, 19, seen, (out, b, t, n) => {
 *   out.push(latin1(b, t, t + n, false));
 * }); // seen: ["gzip", "chunked"]
 * ```
 */
export function forEachListToken<C>(
  buf: Uint8Array,
  s: number,
  e: number,
  ctx: C,
  visit: (ctx: C, buf: Uint8Array, start: number, length: number) => void,
): void {
  let i = s;
  while (i < e) {
    i = skipOws(buf, i, e);
    const t = i;
    i = tokenEnd(buf, i, e);
    if (i > t) visit(ctx, buf, t, i - t);
    while (i < e && buf[i] !== COMMA) i++;
    i++;
  }
}

/**
 * Reads the options of a `Connection` value `buf[s, e)` into `opts`; `text` is the decoded
 * head, starting at buffer offset `offset` (named options are cut from it).
 *
 * @example
 * ```ts
 * connectionOptions(ascii("close, X-A"), 0, 10, "close, X-A", 0, opts); // opts.named: ["x-a"]
 * ```
 */
export function connectionOptions(
  buf: Uint8Array,
  s: number,
  e: number,
  text: string,
  offset: number,
  opts: ConnectionOptions,
): void {
  const walk = connectionWalk;
  walk.opts = opts;
  walk.text = text;
  walk.offset = offset;
  forEachListToken(buf, s, e, walk, connectionOption);
  walk.opts = NO_OPTIONS;
  walk.text = "";
}

const NO_OPTIONS: ConnectionOptions = {
  close: false,
  keepAlive: false,
  upgrade: false,
  named: null,
};
/** The state of one {@link connectionOptions} walk, reused (a walk is synchronous) so that none allocates. */
const connectionWalk = { opts: NO_OPTIONS, text: "", offset: 0 };

function connectionOption(
  walk: typeof connectionWalk,
  buf: Uint8Array,
  t: number,
  len: number,
): void {
  const opts = walk.opts;
  if (is(buf, t, len, V_CLOSE)) opts.close = true;
  else if (is(buf, t, len, V_KEEP_ALIVE)) opts.keepAlive = true;
  else if (is(buf, t, len, V_UPGRADE)) opts.upgrade = true;
  else {
    const at = t - walk.offset;
    (opts.named ??= []).push(walk.text.substring(at, at + len).toLowerCase());
  }
}
