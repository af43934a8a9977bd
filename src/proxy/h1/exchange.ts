/**
 * One request and its response on one upstream connection of the {@link H1Transport}: the head
 * and body go out (a buffered body whole, a streamed one pumped chunk by chunk), the response
 * head is read under the response deadline, and the reply's body is read whole (a small
 * `Content-Length` body, lent from the connection's buffer) or handed out as chunks. When it
 * ends, the connection goes back to its pool or is closed; a pooled connection the server had
 * closed is retried on a fresh one when that is safe.
 *
 * @module
 */
import type { Upstream } from "../../balance/upstream.ts";
import {
  type BodySource,
  clientLeft,
  IDEMPOTENT_METHODS,
  type ReplyBody,
  streamSource,
  UpstreamError,
  type UpstreamReply,
  type UpstreamRequest,
} from "../transport.ts";
import { type BodyReader, bodyReader, framingOf, rawChunkedReader } from "./body.ts";
import { EofError, type H1Connection, readResponseHead } from "./connection.ts";
import { ParseError, type ResponseHead } from "./parser.ts";
import type { ServerPool } from "./pool.ts";
import type { Deadline } from "./deadlines.ts";
import { encodeRequest, frameChunk, LAST_CHUNK, requestHead } from "./request.ts";
import { scratch } from "./scratch.ts";
import { errorText } from "../../error_text.ts";
import type { H1Transport } from "./transport.ts";

/** The first body bytes go out with the head when at most this long. */
const MAX_COALESCED = 64 * 1024;

/** Response bodies with a `Content-Length` up to this are read whole before answering. */
const SMALL_BODY = 64 * 1024;

function reply(
  head: ResponseHead,
  body: UpstreamReply["body"],
  delivered?: () => void,
): UpstreamReply {
  return {
    status: head.status,
    reason: head.reason,
    headers: head.headers,
    contentLength: head.contentLength,
    body,
    delivered,
  };
}

/**
 * One request/response on one connection (made by {@link H1Transport.exchange}).
 *
 * @example
 * ```ts
 * const reply = await new Exchange(transport, pool, conn, request, true).run(upstream);
 * ```
 */
export class Exchange {
  readonly #transport: H1Transport;
  readonly #pool: ServerPool;
  readonly #conn: H1Connection;
  readonly #request: UpstreamRequest;
  readonly #reused: boolean;
  #bodyConsumed = false;
  #bodySource: BodySource | null = null;
  #pumping = false;
  #pumpFailed = false;
  #progressed = false;
  #timedOut = false;
  #aborted = false;
  #finished = false;
  #deadline: Deadline | undefined;
  /** Whether the connection may be reused once a lent small body has been delivered. */
  #keepAlive = false;
  readonly #onAbort = () => {
    this.#aborted = true;
    this.#conn.close();
  };
  readonly #delivered = () => this.#finish(this.#keepAlive);

  constructor(
    transport: H1Transport,
    pool: ServerPool,
    conn: H1Connection,
    request: UpstreamRequest,
    reused: boolean,
  ) {
    this.#transport = transport;
    this.#pool = pool;
    this.#conn = conn;
    this.#request = request;
    this.#reused = reused;
  }

  async run(upstream: Upstream): Promise<UpstreamReply> {
    const request = this.#request;
    const gone = request.gone;
    if (gone === undefined) request.signal.addEventListener("abort", this.#onAbort);
    else gone.watch(this.#onAbort);
    // It may have gone while the connection was being opened.
    if (clientLeft(request)) this.#onAbort();
    let head: ResponseHead;
    let written = false;
    try {
      const { head: text, length } = requestHead(
        request.method,
        request.target,
        request.headers,
        request.body !== null,
        upstream.key,
        request.forwarded,
        request.bodyLength,
        request.upgrade,
      );
      // Whether this client chunk-frames the body: one without a length, unless its source
      // relays the client's chunked framing itself (h1 listener, HTTP/1.1 client).
      let chunked = request.body !== null && length < 0;
      let first: Uint8Array | null = null;
      let sent = 0;
      let last = request.body === null;
      const body = request.body;
      if (body instanceof Uint8Array) {
        // A buffered body: sent whole, and kept for a retry elsewhere (not consumed).
        if (length >= 0 && body.length !== length) {
          throw new BodyError("body does not match its Content-Length");
        }
        if (body.length <= MAX_COALESCED) {
          await this.#sendEncoded(encodeRequest(text, body, chunked, true, scratch));
        } else {
          await this.#sendEncoded(encodeRequest(text, null, chunked, false, scratch));
          await this.#conn.write(chunked ? frameChunk(body) : body);
          if (chunked) await this.#conn.write(LAST_CHUNK);
        }
        written = true;
      } else if (body !== null) {
        this.#bodyConsumed = true;
        const source = this.#bodySource = body instanceof ReadableStream
          ? streamSource(body)
          : body;
        if (chunked && source.relayChunked?.() === true) chunked = false;
        const chunk = await source.next();
        if (chunk === null) last = true;
        else {
          sent = chunk.length;
          if (length >= 0 && sent > length) {
            throw new BodyError("body longer than its Content-Length");
          }
          last = length >= 0 && sent === length;
          if (sent <= MAX_COALESCED) first = chunk;
          else {
            await this.#sendEncoded(encodeRequest(text, null, chunked, false, scratch));
            written = true;
            await this.#conn.write(chunked ? frameChunk(chunk) : chunk);
          }
        }
      }
      if (!written) {
        // Inline, not #sendEncoded: no async frame for the common case (a failed write leaves
        // its buffer to the garbage collector).
        const bytes = encodeRequest(text, first, chunked, last, scratch);
        await this.#conn.write(bytes);
        scratch.give(bytes);
      }
      written = true;
      this.#armTimer();
      if (this.#bodySource !== null && !last) {
        this.#pumping = true;
        this.#pump(this.#bodySource, chunked, length, sent);
      }
      head = await readResponseHead(
        this.#conn.wire,
        this.#transport.limits,
        request.upgrade !== undefined,
      );
    } catch (err) {
      this.#stopTimer();
      this.#finish(false);
      if (this.#reused && !this.#bodyConsumed && !this.#aborted && !this.#timedOut) {
        // A pooled connection the upstream had closed: nothing was answered, so try afresh.
        // Once written, only a method that may run twice is sent again (as Go's transport does).
        if (
          !written ||
          (err instanceof EofError && err.empty && IDEMPOTENT_METHODS.has(request.method))
        ) {
          return await this.#transport.afresh(this.#pool, request, upstream);
        }
      }
      throw this.#failure(err);
    }
    if (head.status === 101) return this.#tunnel(head);
    const framing = framingOf(head, request.method);
    if (framing === "length" && head.contentLength <= SMALL_BODY) {
      // Small bodies are read whole (still under the response deadline): a fixed-size body is
      // much cheaper to send on than a stream, and nginx buffers this much too.
      try {
        const wire = this.#conn.wire;
        const length = head.contentLength;
        // Usually the whole body came with the head: no await (and no promise) then.
        const body = wire.end - wire.start >= length
          ? this.#takeBody(length)
          : await this.#readSmallBody(length);
        this.#stopTimer();
        // The body is lent from the connection's buffer: the connection goes back to the pool
        // only once the listener has written it (no copy, no allocation per response).
        this.#keepAlive = head.keepAlive;
        return reply(head, body, this.#delivered);
      } catch (err) {
        this.#stopTimer();
        this.#finish(false);
        throw this.#failure(err);
      }
    }
    this.#stopTimer();
    return this.#reply(head, framing);
  }

  /** Writes bytes encoded into a scratch buffer, then gives the buffer back. */
  async #sendEncoded(bytes: Uint8Array<ArrayBuffer>): Promise<void> {
    try {
      await this.#conn.write(bytes);
    } finally {
      scratch.give(bytes);
    }
  }

  /** The server switched protocols: its connection leaves the pool and becomes a tunnel. */
  #tunnel(head: ResponseHead): UpstreamReply {
    this.#stopTimer();
    this.#finished = true;
    this.#unwatch();
    this.#pool.detach(this.#conn);
    const wire = this.#conn.wire;
    const buffered = wire.buf.slice(wire.start, wire.end);
    wire.start = wire.end;
    const headers: [string, string][] = [
      ...head.headers,
      ["connection", "upgrade"],
      ["upgrade", head.upgrade ?? this.#request.upgrade ?? ""],
    ];
    return {
      ...reply(head, null),
      headers,
      contentLength: -1,
      tunnel: this.#conn.tunnel(buffered),
    };
  }

  /** Reads a body of `length` bytes into the connection's buffer and returns a view of it. */
  async #readSmallBody(length: number): Promise<Uint8Array<ArrayBuffer>> {
    if (!(await this.#conn.wire.fillTo(length))) {
      throw new EofError("upstream closed the connection inside the body", false);
    }
    return this.#takeBody(length);
  }

  /** The next `length` buffered bytes (all there), as a view into the connection's buffer. */
  #takeBody(length: number): Uint8Array<ArrayBuffer> {
    const wire = this.#conn.wire;
    const body = wire.buf.subarray(wire.start, wire.start + length);
    wire.start += length;
    return body;
  }

  #reply(head: ResponseHead, framing: ReturnType<typeof framingOf>): UpstreamReply {
    const wire = this.#conn.wire;
    try {
      if (framing === "none") {
        this.#finish(head.keepAlive);
        return reply(head, null);
      }
      const length = head.contentLength;
      if (framing === "length" && wire.end - wire.start >= length) {
        // The whole body already arrived with the head.
        const bytes = wire.buf.slice(wire.start, wire.start + length);
        wire.start += length;
        this.#finish(head.keepAlive);
        return reply(head, bytes);
      }
      const limits = this.#transport.limits;
      const raw = framing === "chunked" && this.#request.rawChunked === true;
      const reader = raw
        ? rawChunkedReader(wire, limits)
        : bodyReader(wire, framing, length, limits);
      return reply(head, new UpstreamBody(this, reader, head.keepAlive, raw));
    } catch (err) {
      this.#finish(false);
      throw this.#failure(err);
    }
  }

  /** Streams the rest of the request body while the response is awaited. */
  async #pump(
    source: BodySource,
    chunked: boolean,
    length: number,
    sent: number,
  ): Promise<void> {
    const conn = this.#conn;
    try {
      for (;;) {
        let chunk: Uint8Array | null;
        try {
          chunk = await source.next();
        } catch (err) {
          // The client's upload broke: the upstream would wait for the rest forever.
          conn.close();
          throw err;
        }
        if (chunk === null) break;
        this.#progressed = true;
        if (chunk.length === 0) continue;
        sent += chunk.length;
        if (length >= 0 && sent > length) {
          throw new BodyError("body longer than its Content-Length");
        }
        await conn.write(chunked ? frameChunk(chunk) : chunk);
        if (length >= 0 && sent === length) break;
      }
      if (length >= 0 && sent !== length) {
        throw new BodyError("body shorter than its Content-Length");
      }
      if (chunked) await conn.write(LAST_CHUNK);
      // The upstream has the whole request now: the connection's framing no longer depends on
      // the client's body.
      this.#pumping = false;
    } catch (err) {
      this.#pumpFailed = true;
      if (err instanceof BodyError) conn.close();
      source.cancel(err);
    } finally {
      this.#pumping = false;
    }
  }

  #armTimer(): void {
    this.#deadline = this.#transport.deadlines.add(this.#onDeadline);
  }

  readonly #onDeadline = (): void => {
    if (this.#pumping && this.#progressed) {
      // Still uploading: the wait for the response starts when the request is sent.
      this.#progressed = false;
      this.#armTimer();
      return;
    }
    this.#deadline = undefined;
    this.#timedOut = true;
    this.#conn.close();
  };

  /** Stops listening for the client going away. */
  #unwatch(): void {
    const request = this.#request;
    const gone = request.gone;
    if (gone === undefined) request.signal.removeEventListener("abort", this.#onAbort);
    else gone.watch(null);
  }

  #stopTimer(): void {
    this.#deadline?.cancel();
    this.#deadline = undefined;
  }

  /**
   * @internal Ends the exchange once: the connection goes back to the pool only after a clean
   * one.
   */
  finish(reusable: boolean): void {
    this.#finish(reusable);
  }

  #finish(reusable: boolean): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#unwatch();
    const conn = this.#conn;
    if (
      reusable && !this.#pumping && !this.#pumpFailed && !this.#aborted &&
      conn.wire.end === conn.wire.start
    ) {
      this.#pool.release(conn, performance.now());
      this.#transport.armSweeper();
    } else {
      this.#pool.discard(conn);
      // Releases the client's upload (a no-op when it was read to the end).
      if (this.#pumping) this.#bodySource?.cancel();
    }
  }

  /** @internal */
  failure(err: unknown): UpstreamError {
    return this.#failure(err);
  }

  #failure(err: unknown): UpstreamError {
    if (err instanceof UpstreamError) return err;
    const consumed = this.#bodyConsumed;
    if (this.#timedOut) {
      return new UpstreamError("timeout", "upstream response timed out", consumed, err);
    }
    if (this.#aborted) return new UpstreamError("broken", "client went away", consumed, err);
    if (err instanceof ParseError) {
      return new UpstreamError(
        "broken",
        `malformed upstream response: ${err.message}`,
        consumed,
        err,
        true,
      );
    }
    return new UpstreamError("broken", errorText(err), consumed, err);
  }
}

/**
 * A response body read off the connection chunk by chunk; the connection is released when the
 * body ends cleanly, closed when it breaks or is cancelled (the client went away).
 */
class UpstreamBody implements ReplyBody {
  readonly chunkedRaw: boolean;
  readonly #exchange: Exchange;
  readonly #reader: BodyReader;
  readonly #keepAlive: boolean;
  #done = false;

  constructor(exchange: Exchange, reader: BodyReader, keepAlive: boolean, raw: boolean) {
    this.#exchange = exchange;
    this.#reader = reader;
    this.#keepAlive = keepAlive;
    this.chunkedRaw = raw;
  }

  async next(): Promise<Uint8Array | null> {
    if (this.#done) return null;
    let chunk: Uint8Array | null;
    try {
      chunk = await this.#reader.next();
    } catch (err) {
      this.#done = true;
      this.#exchange.finish(false);
      throw this.#exchange.failure(err);
    }
    if (chunk === null || this.#reader.complete) {
      this.#done = true;
      this.#exchange.finish(this.#keepAlive && this.#reader.complete);
    }
    return chunk;
  }

  cancel(): void {
    if (this.#done) return;
    this.#done = true;
    this.#exchange.finish(false);
  }
}

/** The request body does not match its declared length. */
class BodyError extends Error {
  override name = "BodyError";
}
