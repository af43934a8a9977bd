/**
 * Body readers over a connection's {@link Wire}: a response body by `Content-Length`, chunked, or
 * until the upstream closes, and the chunk-coded reader ({@link CodedChunkedBody}) that hands a
 * body on still chunked, in either direction. Each hands out fresh chunks (the consumer keeps them), copying only what
 * was already buffered and reading larger stretches straight into the chunk it returns.
 *
 * @module
 */
import { ChunkedDecoder, type FramingSink } from "./chunked.ts";
import { EofError, type Wire } from "./connection.ts";
import type { HeadLimits, ResponseHead } from "./parser.ts";

/**
 * How a response body is delimited.
 *
 * @example
 * ```ts
 * const framing: Framing = "chunked";
 * ```
 */
export type Framing = "none" | "length" | "chunked" | "close";

/** Largest chunk a reader allocates for one read from the socket. */
const CHUNK = 64 * 1024;
/** Chunked data at least this long is read directly rather than through the wire's buffer. */
const DIRECT_MIN = 4096;

/**
 * Decides how the body of `head` (the answer to a `method` request) is delimited
 * (RFC 9112 §6.3).
 *
 * @example
 * ```ts
 * framingOf(head, "HEAD"); // "none"
 * ```
 */
export function framingOf(head: ResponseHead, method: string): Framing {
  const s = head.status;
  if (method === "HEAD" || s === 204 || s === 304 || s < 200) return "none";
  if (head.chunked) return "chunked";
  if (head.transferEncoded) return "close";
  if (head.contentLength === 0) return "none";
  return head.contentLength > 0 ? "length" : "close";
}

/**
 * Hands out a body chunk by chunk.
 *
 * @example
 * ```ts
 * for (let c = await body.next(); c !== null; c = await body.next()) use(c);
 * ```
 */
export interface BodyReader {
  /**
   * The next chunk, or `null` after the last.
   *
   * @throws {import("./parser.ts").ParseError} on bad framing, {@link EofError} when cut short.
   */
  next(): Promise<Uint8Array | null>;
  /** Whether the body ended where its framing says, so the connection can carry another exchange. */
  readonly complete: boolean;
}

/**
 * Makes the reader for a body with the given framing.
 *
 * @example
 * ```ts
 * const body = bodyReader(wire, framingOf(head, "GET"), head.contentLength, DEFAULT_LIMITS);
 * ```
 */
export function bodyReader(
  wire: Wire,
  framing: Framing,
  length: number,
  limits: HeadLimits,
): BodyReader {
  switch (framing) {
    case "none":
      return new LengthBody(wire, 0);
    case "length":
      return new LengthBody(wire, length);
    case "chunked":
      return new ChunkedBody(wire, limits);
    case "close":
      return new CloseBody(wire);
  }
}

class LengthBody implements BodyReader {
  readonly #wire: Wire;
  #remaining: number;

  constructor(wire: Wire, length: number) {
    this.#wire = wire;
    this.#remaining = length;
  }

  get complete(): boolean {
    return this.#remaining === 0;
  }

  async next(): Promise<Uint8Array | null> {
    const rem = this.#remaining;
    if (rem === 0) return null;
    const w = this.#wire;
    const avail = w.end - w.start;
    if (avail > 0) {
      const n = avail < rem ? avail : rem;
      const out = w.buf.slice(w.start, w.start + n);
      w.start += n;
      this.#remaining = rem - n;
      return out;
    }
    const out = new Uint8Array(rem < CHUNK ? rem : CHUNK);
    const n = await w.source.read(out);
    if (n === null) throw new EofError("upstream closed the connection inside the body", false);
    this.#remaining = rem - n;
    return n === out.length ? out : out.subarray(0, n);
  }
}

/** What the chunked readers share: the wire, one decoder, and completion meaning its end was read. */
abstract class ChunkedReader implements BodyReader {
  protected readonly wire: Wire;
  protected readonly decoder: ChunkedDecoder;

  constructor(wire: Wire, limits: HeadLimits) {
    this.wire = wire;
    this.decoder = new ChunkedDecoder(limits);
  }

  get complete(): boolean {
    return this.decoder.done;
  }

  abstract next(): Promise<Uint8Array | null>;
}

class ChunkedBody extends ChunkedReader {
  async next(): Promise<Uint8Array | null> {
    const w = this.wire;
    const d = this.decoder;
    for (;;) {
      if (d.done) return null;
      w.start = d.frame(w.buf, w.start, w.end);
      if (d.inData) {
        const rem = d.remaining;
        const avail = w.end - w.start;
        if (avail > 0) return this.#takeBuffered();
        if (rem >= DIRECT_MIN) {
          const out = new Uint8Array(rem < CHUNK ? rem : CHUNK);
          const n = await w.source.read(out);
          if (n === null) break;
          d.took(n);
          return n === out.length ? out : out.subarray(0, n);
        }
      } else if (d.done) return null;
      if (!await w.fill()) break;
    }
    throw new EofError("upstream closed the connection inside a chunked body", false);
  }

  /**
   * Takes all chunk data already buffered as one array, stepping over the framing in between
   * (and after, so that the end of the body is seen together with its last data).
   */
  #takeBuffered(): Uint8Array {
    const w = this.wire;
    const d = this.decoder;
    let first: Uint8Array | null = null;
    let pieces: Uint8Array[] | null = null;
    let total = 0;
    while (d.inData && w.start < w.end) {
      const rem = d.remaining;
      const avail = w.end - w.start;
      const n = avail < rem ? avail : rem;
      // Views are safe here: nothing reads into the buffer until this returns.
      const piece = w.buf.subarray(w.start, w.start + n);
      w.start += n;
      d.took(n);
      total += n;
      if (first === null) first = piece;
      else (pieces ??= [first]).push(piece);
      if (w.start < w.end) w.start = d.frame(w.buf, w.start, w.end);
    }
    if (pieces === null) return first!.slice();
    const out = new Uint8Array(total);
    let at = 0;
    for (const piece of pieces) {
      out.set(piece, at);
      at += piece.length;
    }
    return out;
  }
}

/**
 * Reads a chunked body without decoding it: each chunk handed out is the coding exactly as the
 * server sent it (sizes, extensions, data, trailers), checked by the same decoder, so it can be
 * passed to an HTTP/1.1 client without re-chunking. Ends with the last chunk's trailer section.
 *
 * @example
 * ```ts
 * const body = rawChunkedReader(wire, DEFAULT_LIMITS);
 * ```
 */
export function rawChunkedReader(wire: Wire, limits: HeadLimits): BodyReader {
  return new CodedChunkedBody(
    wire,
    limits,
    false,
    "upstream closed the connection inside a chunked body",
  );
}

/**
 * A chunked body handed out still chunk-coded, one read of the wire per {@link next}, validated
 * by the same decoder as a decoded body: a malformed chunk throws before any byte of the read
 * that holds it is handed out. The one core behind {@link rawChunkedReader} (the bytes as read)
 * and `relayChunkedReader` (clean framing: see {@link FramingSink}).
 *
 * @example
 * ```ts
 * const body = new CodedChunkedBody(wire, DEFAULT_LIMITS, true, "the client closed mid-body");
 * ```
 */
export class CodedChunkedBody extends ChunkedReader {
  readonly #clean: boolean;
  readonly #cutShort: string;

  /**
   * @param clean keep only the framing a strict encoder writes (sizes and line ends, no
   *   extension or trailer field) with the data, instead of the bytes exactly as read
   * @param cutShort the {@link EofError} message when the peer closes inside the body
   */
  constructor(wire: Wire, limits: HeadLimits, clean: boolean, cutShort: string) {
    super(wire, limits);
    this.#clean = clean;
    this.#cutShort = cutShort;
  }

  async next(): Promise<Uint8Array | null> {
    const w = this.wire;
    const d = this.decoder;
    if (d.done) return null;
    while (w.start === w.end) {
      if (!await w.fill()) throw new EofError(this.#cutShort, false);
    }
    const from = w.start;
    // Framing kept is never longer than framing read, but for one CR read earlier (see
    // FramingSink): one spare byte.
    const sink: FramingSink | undefined = this.#clean
      ? { bytes: new Uint8Array(w.end - w.start + 1), at: 0 }
      : undefined;
    while (w.start < w.end && !d.done) {
      if (d.inData) {
        const avail = w.end - w.start;
        const n = avail < d.remaining ? avail : d.remaining;
        if (sink !== undefined) {
          sink.bytes.set(w.buf.subarray(w.start, w.start + n), sink.at);
          sink.at += n;
        }
        w.start += n;
        d.took(n);
      } else w.start = d.frame(w.buf, w.start, w.end, sink);
    }
    return sink === undefined ? w.buf.slice(from, w.start) : sink.bytes.subarray(0, sink.at);
  }
}

class CloseBody implements BodyReader {
  readonly #wire: Wire;
  #ended = false;

  constructor(wire: Wire) {
    this.#wire = wire;
  }

  /** A body delimited by close never leaves a reusable connection. */
  get complete(): boolean {
    return false;
  }

  async next(): Promise<Uint8Array | null> {
    const w = this.#wire;
    if (w.end > w.start) {
      const out = w.buf.slice(w.start, w.end);
      w.start = w.end;
      return out;
    }
    if (this.#ended) return null;
    const out = new Uint8Array(CHUNK);
    const n = await w.source.read(out);
    if (n === null) {
      this.#ended = true;
      return null;
    }
    return out.subarray(0, n);
  }
}
