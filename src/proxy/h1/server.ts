/**
 * dynlb's own HTTP/1.1 server: the `h1` listener. It accepts connections from any
 * `Deno.Listener` (plain `Deno.listen`, or `Deno.listenTls` with `proto: "https"`), parses
 * requests strictly (`request_parser.ts`), hands them to the shared request path and writes the
 * replies back as bytes: no `Request`/`Response` per request, bodies copied chunk by chunk with
 * backpressure, a chunked upstream body passed to HTTP/1.1 clients as it came.
 *
 * Per connection: keep-alive and pipelining (answered in order), `Connection: close` both ways,
 * `Expect: 100-continue` (the 100 goes out when the body is first read), a header timeout (408),
 * an idle timeout between requests, a body timeout, and `Upgrade` tunnels after a `101`. A
 * connection whose request was refused or whose body was not read to the end is closed after
 * the answer.
 *
 * @module
 */
import type { ClientFacts } from "../forwarding.ts";
import type { RequestPath } from "../request_path.ts";
import { ClientConnection, type ConnectionHost } from "./client_connection.ts";
import type { Wire } from "./connection.ts";
import { DeadlineQueue } from "./deadlines.ts";
import { REQUEST_LIMITS, type RequestLimits } from "./request_parser.ts";
import { directIo } from "../../net/direct_io.ts";

/**
 * Facts about one listener that every request on it shares.
 *
 * @example
 * ```ts
 * server.serve(Deno.listen({ port: 8080 }), { proto: "http" });
 * ```
 */
export interface ListenerFacts {
  /** `https` for a TLS listener (what `X-Forwarded-Proto` says). */
  readonly proto: "http" | "https";
}

/** Timeouts of client connections, in milliseconds. */
export interface ClientTimeouts {
  /** From accept (or the first byte of a later request) to a complete head: 408 and close. */
  readonly headerMs: number;
  /** A keep-alive connection waiting for its next request is closed after this. */
  readonly idleMs: number;
  /** No request-body bytes for this long aborts the exchange. */
  readonly bodyMs: number;
  /** A tunnel without a byte either way for this long is closed. */
  readonly tunnelIdleMs: number;
}

/**
 * What the h1 server needs.
 *
 * @example
 * ```ts
 * const options: H1ServerOptions = { path, timeouts, maxConnections: 16384 };
 * ```
 */
export interface H1ServerOptions {
  readonly path: RequestPath;
  readonly timeouts: ClientTimeouts;
  /** Open client connections allowed; beyond, new ones are closed at once. */
  readonly maxConnections: number;
  /**
   * A counter shared by every isolate of the process (`SharedArrayBuffer`), so the limit holds
   * per process; absent: counted here only.
   */
  readonly connectionCount?: Int32Array;
  readonly limits?: RequestLimits;
  /**
   * Runs once per connection before its first request (PROXY protocol goes here): resolves the
   * client as it should be seen, or `null` to close the connection.
   */
  readonly prelude?: (
    conn: Deno.Conn,
    wire: Wire,
    peer: ClientFacts,
  ) => Promise<ClientFacts | null>;
  /** Told when a tunnel opens (+1) and closes (-1), for the open-tunnels gauge. */
  readonly onTunnel?: (delta: number) => void;
  /** Told when a client connection opens (+1) and closes (-1), for the open-connections gauge. */
  readonly onConnection?: (proto: ListenerFacts["proto"], delta: number) => void;
}

/**
 * The h1 listener.
 *
 * @example
 * ```ts
 * const server = new H1Server({ path, timeouts, maxConnections: 16384 });
 * server.serve(Deno.listen({ hostname: "127.0.0.1", port: 8080 }), { proto: "http" });
 * await server.shutdown();
 * server.close();
 * ```
 */
export class H1Server implements ConnectionHost {
  readonly #options: H1ServerOptions;
  readonly #limits: RequestLimits;
  readonly #listeners = new Set<Deno.Listener>();
  /** Accept loops still running: a listener is really closed once its loop ended. */
  readonly #acceptLoops = new Set<Promise<void>>();
  readonly #connections = new Set<ClientConnection>();
  readonly #count: Int32Array;
  /** @internal */ readonly headerDeadlines: DeadlineQueue;
  /** @internal */ readonly idleDeadlines: DeadlineQueue;
  /** @internal */ readonly bodyDeadlines: DeadlineQueue;
  #draining = false;
  #drained: PromiseWithResolvers<void> | undefined;

  constructor(options: H1ServerOptions) {
    this.#options = options;
    this.#limits = options.limits ?? REQUEST_LIMITS;
    this.#count = options.connectionCount ?? new Int32Array(1);
    this.headerDeadlines = new DeadlineQueue(options.timeouts.headerMs);
    this.idleDeadlines = new DeadlineQueue(options.timeouts.idleMs);
    this.bodyDeadlines = new DeadlineQueue(options.timeouts.bodyMs);
  }

  /** @internal */
  get options(): H1ServerOptions {
    return this.#options;
  }

  /** @internal */
  get limits(): RequestLimits {
    return this.#limits;
  }

  /** Whether shutdown began: answers say `Connection: close`. */
  get draining(): boolean {
    return this.#draining;
  }

  /** Open client connections of this server. */
  get connections(): number {
    return this.#connections.size;
  }

  /** Accepts connections from `listener` until shutdown; several listeners may be served. */
  serve(listener: Deno.Listener, facts: ListenerFacts): void {
    this.#listeners.add(listener);
    const loop = this.#accept(listener, facts);
    this.#acceptLoops.add(loop);
    loop.finally(() => this.#acceptLoops.delete(loop));
  }

  /** Stops accepting from one listener (a retired TLS generation); its connections go on. */
  stopServing(listener: Deno.Listener): void {
    this.#listeners.delete(listener);
    try {
      listener.close();
    } catch { /* closed already */ }
  }

  async #accept(listener: Deno.Listener, facts: ListenerFacts): Promise<void> {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (err) {
        if (this.#draining || !this.#listeners.has(listener)) break;
        if (err instanceof Deno.errors.BadResource || err instanceof Deno.errors.Interrupted) break;
        // Out of file descriptors or a transient error: wait a little, never crash.
        await new Promise((resolve) => setTimeout(resolve, 50));
        continue;
      }
      // One handed out while the listener closes is served too (its answer says
      // Connection: close): closing it unanswered would fail a client that did nothing wrong.
      if (Atomics.add(this.#count, 0, 1) >= this.#options.maxConnections) {
        Atomics.sub(this.#count, 0, 1);
        try {
          conn.close();
        } catch { /* gone already */ }
        continue;
      }
      try {
        // Answers go out in one write each: no reason to wait for a previous segment's ACK.
        (conn as Deno.TcpConn).setNoDelay?.(true);
      } catch { /* closed already, or not TCP */ }
      const client = new ClientConnection(this, directIo(conn), facts);
      this.#connections.add(client);
      this.#options.onConnection?.(facts.proto, 1);
      client.start();
    }
    this.#listeners.delete(listener);
  }

  /**
   * First step of a drain: closes every listener and resolves once none can hand out a
   * connection any more (with several workers, all stop accepting before any closes a
   * connection, so a client that reconnects lands on a process that will answer it). Open
   * connections stay and keep alive: a client told to reconnect before every listener is really
   * closed could land in a closing listener's queue and be reset.
   */
  async stopAccepting(): Promise<void> {
    for (const listener of this.#listeners) {
      try {
        listener.close();
      } catch { /* closed already */ }
    }
    this.#listeners.clear();
    await Promise.all(this.#acceptLoops);
  }

  /**
   * Graceful drain: stops accepting at once, then closes idle keep-alive connections, lets each
   * busy one finish its request (answered with `Connection: close`), gives a connection accepted
   * just before the stop its first request, and lets tunnels run until they end. Resolves when
   * no connection is left.
   */
  shutdown(): Promise<void> {
    if (this.#drained === undefined) {
      this.#drained = Promise.withResolvers<void>();
      this.stopAccepting().then(() => {
        this.#draining = true;
        for (const client of this.#connections) client.drain();
        this.#checkDrained();
      });
    }
    return this.#drained.promise;
  }

  /** @internal A connection closed and no exchange of it runs any more. */
  released(client: ClientConnection): void {
    if (!this.#connections.delete(client)) return;
    Atomics.sub(this.#count, 0, 1);
    this.#options.onConnection?.(client.proto, -1);
    this.#checkDrained();
  }

  /** Resolves the drain once no listener can hand out a connection and none is left. */
  #checkDrained(): void {
    if (this.#acceptLoops.size === 0 && this.#connections.size === 0) this.#drained?.resolve();
  }

  /** Closes every connection (tunnels included) and the timers. */
  close(): void {
    void this.shutdown();
    for (const client of this.#connections) client.close();
    this.headerDeadlines.close();
    this.idleDeadlines.close();
    this.bodyDeadlines.close();
  }
}
