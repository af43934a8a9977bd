/**
 * An incremental decoder of the chunked transfer coding (RFC 9112 §7.1): chunk extensions are
 * checked and ignored, trailer fields are checked and dropped. It walks the framing bytes one at
 * a time so that input split anywhere decodes the same; data bytes are left to the caller.
 *
 * @module
 */
import { FIELD_BYTE, TCHAR } from "./fields.ts";
import { type HeadLimits, ParseError } from "./parser.ts";

const S_SIZE_START = 0;
const S_SIZE = 1;
const S_SIZE_WS = 2;
const S_EXT = 3;
const S_SIZE_LF = 4;
/** Chunk data: the caller takes {@link ChunkedDecoder.remaining} bytes. */
const S_DATA = 5;
const S_DATA_CR = 6;
const S_DATA_LF = 7;
const S_TRAILER_START = 8;
const S_TRAILER_NAME = 9;
const S_TRAILER_VALUE = 10;
const S_TRAILER_LF = 11;
const S_END_LF = 12;
/** The last chunk and its trailer section have been read. */
const S_DONE = 13;

/** Longest chunk-size line (size plus extensions) accepted. */
const MAX_SIZE_LINE = 4096;
/** Chunk sizes above 2^52 (13 hex digits) would lose integer precision. */
const MAX_SIZE_DIGITS = 13;

/**
 * Where {@link ChunkedDecoder.frame} copies the framing it keeps when relaying a chunked body:
 * the chunk-size digits and the line ends, but no whitespace, chunk extension or trailer field.
 * `bytes` needs room for the framing bytes consumed plus one (a CR consumed by an earlier call
 * may come out as CRLF in this one).
 *
 * @example
 * ```ts
 * const sink: FramingSink = { bytes: new Uint8Array(64), at: 0 };
 * ```
 */
export interface FramingSink {
  bytes: Uint8Array;
  at: number;
}

function crlf(sink: FramingSink): void {
  sink.bytes[sink.at++] = 13;
  sink.bytes[sink.at++] = 10;
}

function hex(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const l = c | 0x20;
  if (l >= 0x61 && l <= 0x66) return l - 0x61 + 10;
  return -1;
}

/**
 * Decodes chunked framing. Call {@link ChunkedDecoder.frame} on buffered bytes; when it stops in
 * the data state, consume up to {@link ChunkedDecoder.remaining} data bytes and report them with
 * {@link ChunkedDecoder.took}.
 *
 * @example
 * ```ts
 * const d = new ChunkedDecoder(DEFAULT_LIMITS);
 * const b = new TextEncoder().encode("3\r\nabc\r\n0\r\n\r\n");
 * let i = d.frame(b, 0, b.length); // 3: at the data
 * d.took(3);
 * i = d.frame(b, i + 3, b.length); // b.length, d.done === true
 * ```
 */
export class ChunkedDecoder {
  #state = S_SIZE_START;
  #size = 0;
  #digits = 0;
  #line = 0;
  #trailerBytes = 0;
  #trailers = 0;
  readonly #limits: HeadLimits;

  constructor(limits: HeadLimits) {
    this.#limits = limits;
  }

  /** Data bytes of the current chunk still to be taken (0 outside the data state). */
  get remaining(): number {
    return this.#state === S_DATA ? this.#size : 0;
  }

  /** Whether the decoder is positioned at chunk data. */
  get inData(): boolean {
    return this.#state === S_DATA;
  }

  /** Whether the whole body, trailers included, has been decoded. */
  get done(): boolean {
    return this.#state === S_DONE;
  }

  /** Records that `n` (≤ {@link remaining}) data bytes were taken. */
  took(n: number): void {
    this.#size -= n;
    if (this.#size === 0) this.#state = S_DATA_CR;
  }

  /**
   * Consumes framing bytes from `buf[pos, end)` and returns the new position: it stops at chunk
   * data, at the end of the body, or when the input runs out. With a `sink`, the framing kept
   * (see {@link FramingSink}) is copied there.
   *
   * @throws {ParseError} on malformed framing.
   */
  frame(buf: Uint8Array, pos: number, end: number, sink?: FramingSink): number {
    let i = pos;
    while (i < end) {
      const c = buf[i];
      switch (this.#state) {
        case S_DATA:
        case S_DONE:
          return i;
        case S_SIZE_START: {
          const h = hex(c);
          if (h < 0) throw new ParseError("invalid chunk size");
          if (sink !== undefined) sink.bytes[sink.at++] = c;
          this.#size = h;
          this.#digits = 1;
          this.#line = 1;
          this.#state = S_SIZE;
          break;
        }
        case S_SIZE: {
          const h = hex(c);
          if (h >= 0) {
            if (++this.#digits > MAX_SIZE_DIGITS) throw new ParseError("chunk size too large");
            if (sink !== undefined) sink.bytes[sink.at++] = c;
            this.#size = this.#size * 16 + h;
          } else if (c === 59) this.#state = S_EXT;
          else if (c === 32 || c === 9) this.#state = S_SIZE_WS;
          else if (c === 13) this.#state = S_SIZE_LF;
          else throw new ParseError("invalid chunk size");
          break;
        }
        case S_SIZE_WS:
          if (c === 59) this.#state = S_EXT;
          else if (c === 13) this.#state = S_SIZE_LF;
          else if (c !== 32 && c !== 9) throw new ParseError("invalid chunk size line");
          break;
        case S_EXT:
          if (c === 13) this.#state = S_SIZE_LF;
          else if (FIELD_BYTE[c] === 0) throw new ParseError("invalid chunk extension");
          break;
        case S_SIZE_LF:
          if (c !== 10) throw new ParseError("invalid chunk size line");
          if (sink !== undefined) crlf(sink);
          this.#state = this.#size === 0 ? S_TRAILER_START : S_DATA;
          break;
        case S_DATA_CR:
          if (c !== 13) throw new ParseError("missing CRLF after chunk data");
          if (sink !== undefined) sink.bytes[sink.at++] = c;
          this.#state = S_DATA_LF;
          break;
        case S_DATA_LF:
          if (c !== 10) throw new ParseError("missing CRLF after chunk data");
          if (sink !== undefined) sink.bytes[sink.at++] = c;
          this.#state = S_SIZE_START;
          break;
        case S_TRAILER_START:
          if (c === 13) this.#state = S_END_LF;
          else if (TCHAR[c] === 1) {
            if (++this.#trailers > this.#limits.maxHeaders) {
              throw new ParseError("too many trailer fields");
            }
            this.#state = S_TRAILER_NAME;
          } else throw new ParseError("invalid trailer field");
          break;
        case S_TRAILER_NAME:
          if (c === 58) this.#state = S_TRAILER_VALUE;
          else if (TCHAR[c] !== 1) throw new ParseError("invalid trailer field name");
          break;
        case S_TRAILER_VALUE:
          if (c === 13) this.#state = S_TRAILER_LF;
          else if (FIELD_BYTE[c] === 0) throw new ParseError("invalid trailer field value");
          break;
        case S_TRAILER_LF:
          if (c !== 10) throw new ParseError("invalid trailer line");
          this.#state = S_TRAILER_START;
          break;
        case S_END_LF:
          if (c !== 10) throw new ParseError("invalid end of chunked body");
          if (sink !== undefined) crlf(sink);
          this.#state = S_DONE;
          return i + 1;
      }
      i++;
      if (this.#state <= S_SIZE_LF && ++this.#line > MAX_SIZE_LINE) {
        throw new ParseError("chunk size line too long");
      }
      if (this.#state >= S_TRAILER_START && ++this.#trailerBytes > this.#limits.maxHeadBytes) {
        throw new ParseError("trailer section too large");
      }
    }
    return i;
  }
}
