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
 * connection go back to the pool (or get closed). This file holds the pools, connecting and the
 * idle sweep; one request/response on one connection is `exchange.ts`.
 *
 * @module
 */
import type { Upstream } from "../../balance/upstream.ts";
import { replyToResponse } from "../reply.ts";
import {
  clientLeft,
  type TransportTimeouts,
  UpstreamError,
  type UpstreamReply,
  type UpstreamRequest,
  type UpstreamTransport,
} from "../transport.ts";
import { H1Connection } from "./connection.ts";
import { DEFAULT_LIMITS, type HeadLimits } from "./parser.ts";
import { ServerPool } from "./pool.ts";
import { DeadlineQueue } from "./deadlines.ts";
import { Exchange } from "./exchange.ts";
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
