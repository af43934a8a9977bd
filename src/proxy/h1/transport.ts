/**
 * The `h1` upstream transport: an own pooled HTTP/1.1 client over `Deno.connect` for plain-HTTP
 * upstreams. Compared with `fetch` it sends headers exactly as given (no added defaults, no body
 * decoding), keeps `Content-Length` on uploads, has separate connect and response timeouts, and
 * costs far less CPU per request.
 *
 * {@link H1Transport.exchange} is the byte-level API the h1 listener uses: the reply's head as
 * pairs and its body as chunks read straight off the socket (optionally still chunk-coded, so an
 * HTTP/1.1 client gets the server's framing without re-chunking). {@link H1Transport.send}
 * wraps the same in a `Response` (for `Deno.serve` and tests).
 *
 * Response bodies: a `Content-Length` body of at most 64 KiB is read whole (bytes, no stream);
 * anything else is handed out chunk by chunk, one socket read per `next()`. The upstream
 * `Content-Length` stays on the reply: `Deno.serve` (2.9.6) then sends that length instead of
 * chunking, also for a stream body.
 *
 * Whoever receives a reply must read its body to the end or cancel it: only then does the
 * connection go back to the pool (or get closed).
 *
 * @module
 */
import type { Upstream } from "../../balance/upstream.ts";
import { replyToResponse } from "../reply.ts";
import {
  type BodySource,
  clientLeft,
  IDEMPOTENT_METHODS,
  type ReplyBody,
  streamSource,
  type TransportTimeouts,
  UpstreamError,
  type UpstreamReply,
  type UpstreamRequest,
  type UpstreamTransport,
} from "../transport.ts";
import { type BodyReader, bodyReader, framingOf, rawChunkedReader } from "./body.ts";
import { EofError, H1Connection, readResponseHead } from "./connection.ts";
import { DEFAULT_LIMITS, type HeadLimits, ParseError, type ResponseHead } from "./parser.ts";
import { ServerPool } from "./pool.ts";
import { type Deadline, DeadlineQueue } from "./deadlines.ts";
import { encodeRequest, frameChunk, LAST_CHUNK, requestHead } from "./request.ts";
import { scratch } from "./scratch.ts";
import { errorText } from "../../error_text.ts";
import { directIo } from "../../net/direct_io.ts";

/**
 * Tuning of {@link H1Transport}.
 *
 * @example
 * ```ts
 * const options: H1Options = { maxConnsPerServer: 64, idleTimeoutMs: 30_000 };
 * ```
 */
export interface H1Options {
  /** Connections kept per server (busy or idle); more are opened when needed but not kept. */
  readonly maxConnsPerServer?: number;
  /** An idle pooled connection is closed after this long. */
  readonly idleTimeoutMs?: number;
  /** Largest response head accepted (default 64 KiB). */
  readonly maxHeadBytes?: number;
  /** Most header fields in a response head (default 256). */
  readonly maxHeaders?: number;
}

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
 * Pooled HTTP/1.1 client transport.
 *
 * @example
 * ```ts
 * const transport = new H1Transport({ connectMs: 5000, responseMs: 60000 });
 * const reply = await transport.exchange(request, upstreamOf("127.0.0.1", 8080, 1));
 * transport.close();
 * ```
 */
export class H1Transport implements UpstreamTransport {
  readonly name = "h1";
  readonly #pools = new Map<string, ServerPool>();
  readonly #timeouts: TransportTimeouts;
  readonly #limits: HeadLimits;
  readonly #maxConns: number;
  readonly #idleTimeoutMs: number;
  #sweeper: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  /** @internal Response-head deadlines of exchanges in flight. */
  readonly deadlines: DeadlineQueue;

  constructor(timeouts: TransportTimeouts, options: H1Options = {}) {
    this.#timeouts = timeouts;
    this.deadlines = new DeadlineQueue(timeouts.responseMs);
    this.#limits = {
      maxHeadBytes: options.maxHeadBytes ?? DEFAULT_LIMITS.maxHeadBytes,
      maxHeaders: options.maxHeaders ?? DEFAULT_LIMITS.maxHeaders,
    };
    this.#maxConns = options.maxConnsPerServer ?? 128;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  }

  /** The pool of one server, for tests and status. */
  pool(key: string): ServerPool | undefined {
    return this.#pools.get(key);
  }

  /** Pooled connections of every server: idle, and busy (for the pool gauges). */
  pooled(): { idle: number; active: number } {
    let idle = 0;
    let size = 0;
    for (const pool of this.#pools.values()) {
      idle += pool.idleCount;
      size += pool.size;
    }
    return { idle, active: size - idle };
  }

  /** {@link exchange} as a `Response`. */
  async send(request: UpstreamRequest, upstream: Upstream): Promise<Response> {
    const reply = await this.exchange(request, upstream);
    const delivered = reply.delivered;
    if (delivered === undefined) return replyToResponse(reply);
    // A lent body lives in the connection's buffer: copy it before the connection is reused.
    const body = reply.body instanceof Uint8Array ? reply.body.slice() : reply.body;
    delivered();
    return replyToResponse({ ...reply, body, delivered: undefined });
  }

  /**
   * Not an async function: on a pooled connection (the usual case) the exchange's own promise
   * is returned, with no async frame around it (each costs ~0.5 KB of garbage per request).
   */
  exchange(
    request: UpstreamRequest,
    upstream: Upstream,
    now = performance.now(),
  ): Promise<UpstreamReply> {
    if (clientLeft(request)) {
      return Promise.reject(new UpstreamError("broken", "client went away", false));
    }
    let pool = this.#pools.get(upstream.key);
    if (pool === undefined) {
      pool = new ServerPool(this.#maxConns, this.#idleTimeoutMs);
      this.#pools.set(upstream.key, pool);
    }
    const idle = pool.take(now);
    if (idle !== null) return new Exchange(this, pool, idle, request, true).run(upstream);
    return this.afresh(pool, request, upstream);
  }

  /**
   * @internal The exchange on a new connection (none idle, or the pooled one turned out dead
   * before answering and sending again is safe).
   */
  async afresh(
    pool: ServerPool,
    request: UpstreamRequest,
    upstream: Upstream,
  ): Promise<UpstreamReply> {
    const conn = await this.#connect(pool, upstream, request.signal);
    return await new Exchange(this, pool, conn, request, false).run(upstream);
  }

  retain(keys: ReadonlySet<string>): void {
    for (const [key, pool] of this.#pools) {
      if (keys.has(key)) continue;
      // Busy connections are no longer members: their exchange finishes, then they close.
      pool.close();
      this.#pools.delete(key);
    }
  }

  close(): void {
    this.#closed = true;
    for (const pool of this.#pools.values()) pool.close();
    this.#pools.clear();
    this.deadlines.close();
    if (this.#sweeper !== undefined) clearTimeout(this.#sweeper);
    this.#sweeper = undefined;
  }

  /** @internal */
  get timeouts(): TransportTimeouts {
    return this.#timeouts;
  }

  /** @internal */
  get limits(): HeadLimits {
    return this.#limits;
  }

  /** @internal Called when a connection went idle: makes sure expired ones get closed. */
  armSweeper(): void {
    if (this.#sweeper !== undefined || this.#closed) return;
    this.#sweeper = setTimeout(() => {
      this.#sweeper = undefined;
      const now = performance.now();
      let idle = 0;
      for (const pool of this.#pools.values()) idle += pool.sweep(now);
      if (idle > 0) this.armSweeper();
    }, Math.max(this.#idleTimeoutMs / 2, 10));
    // An idle pool alone must not keep the process alive.
    Deno.unrefTimer(this.#sweeper);
  }

  async #connect(pool: ServerPool, upstream: Upstream, signal: AbortSignal): Promise<H1Connection> {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), this.#timeouts.connectMs);
    const onAbort = () => abort.abort();
    signal.addEventListener("abort", onAbort);
    let tcp: Deno.TcpConn;
    try {
      tcp = await Deno.connect({
        hostname: upstream.addr,
        port: upstream.port,
        signal: abort.signal,
      });
    } catch (err) {
      const why = signal.aborted
        ? "client went away"
        : abort.signal.aborted
        ? `connect to ${upstream.key} timed out`
        : `connect to ${upstream.key} failed: ${errorText(err)}`;
      throw new UpstreamError("connect", why, false, err);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
    }
    try {
      tcp.setNoDelay(true);
    } catch {
      // Closed already: the exchange reports it.
    }
    const conn = new H1Connection(directIo(tcp));
    pool.admit(conn);
    return conn;
  }
}

/** One request/response on one connection. */
class Exchange {
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
