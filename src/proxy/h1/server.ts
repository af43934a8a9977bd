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
import { codeOfStatus, errorReply } from "../errors.ts";
import type { ClientFacts } from "../forwarding.ts";
import type { ProxyRequest, RequestPath } from "../request_path.ts";
import type { BodySource, ClientGone, ReplyBody, Tunnel, UpstreamReply } from "../transport.ts";
import { type BodyReader, bodyReader } from "./body.ts";
import { EofError, PARKED_BUFFER, Wire, writeFully } from "./connection.ts";
import { type Deadline, DeadlineQueue } from "./deadlines.ts";
import { relayChunkedReader } from "./chunked_relay.ts";
import { DEFAULT_LIMITS, type HeadLimits, ParseError } from "./parser.ts";
import { frameChunk, LAST_CHUNK, writeLatin1 } from "./request.ts";
import { scratch } from "./scratch.ts";
import {
  readRequestHead,
  REQUEST_LIMITS,
  RequestError,
  type RequestHead,
  type RequestLimits,
} from "./request_parser.ts";

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

const encoder = new TextEncoder();
const CONTINUE = encoder.encode("HTTP/1.1 100 Continue\r\n\r\n");
/** A reply head and body up to this size go out in one write. */
const COALESCE = 16 * 1024;

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
export class H1Server {
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
      const client = new ClientConnection(this, conn, facts);
      this.#connections.add(client);
      const onConnection = this.#options.onConnection;
      onConnection?.(facts.proto, 1);
      client.run().finally(() => {
        this.#connections.delete(client);
        Atomics.sub(this.#count, 0, 1);
        onConnection?.(facts.proto, -1);
        this.#checkDrained();
      });
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

/**
 * How long a drain waits for the first byte on a connection accepted just before the listener
 * closed (clients send their request right after connecting).
 */
const FRESH_GRACE_MS = 1000;

/** What a connection is doing, for drain and timeouts. */
const State = {
  /** Waiting for the first byte of a request (keep-alive idle). */
  Idle: 0,
  /** Reading a head. */
  Head: 1,
  /** Handling a request. */
  Busy: 2,
  /** Tunnelling bytes. */
  Tunnel: 3,
  Closed: 4,
} as const;

/** One client connection; tells the exchange in flight when the client goes away. */
class ClientConnection implements ClientGone {
  readonly #server: H1Server;
  readonly #conn: Deno.Conn;
  readonly #facts: ListenerFacts;
  readonly #wire: Wire;
  #client: ClientFacts;
  #state: number = State.Head;
  #deadline: Deadline | undefined;
  /** Aborts when the client is gone: whatever exchange runs then is abandoned. */
  readonly #gone = new AbortController();
  /** Whether the client went away (`#gone` aborted). */
  #left = false;
  /** The exchange told when the client goes away (see {@link ClientGone}). */
  #watcher: (() => void) | null = null;
  #tunnel: Tunnel | undefined;
  /** Whether any byte of the current answer was written. */
  #answered = false;
  /** No request head read yet on this connection. */
  #fresh = true;
  /** Bytes of the current head arrived (reset once it is read). */
  #received = false;

  constructor(server: H1Server, conn: Deno.Conn, facts: ListenerFacts) {
    this.#server = server;
    this.#conn = conn;
    this.#facts = facts;
    // Parked from the start: an idle connection holds a small read buffer only.
    this.#wire = new Wire(conn, PARKED_BUFFER);
    this.#wire.park();
    const addr = conn.remoteAddr as Deno.NetAddr;
    this.#client = { address: addr.hostname ?? "", proto: facts.proto };
  }

  /** Serves requests until the connection ends; never rejects. */
  async run(): Promise<void> {
    try {
      const prelude = this.#server.options.prelude;
      if (prelude !== undefined) {
        const client = await prelude(this.#conn, this.#wire, this.#client);
        if (client === null) return;
        this.#client = client;
      }
      let fresh = true;
      while (this.#state !== State.Closed) {
        const head = await this.#readHead(fresh);
        fresh = false;
        if (head === null) break;
        const keepAlive = await this.#exchange(head);
        if (!keepAlive || this.#server.draining) break;
      }
    } catch {
      // A broken socket ends the connection; nothing to answer.
    } finally {
      this.close();
    }
  }

  /**
   * Shutdown began: an idle keep-alive connection closes now, a busy one after its answer. A
   * connection accepted just before the listener closed has its first request on the way: it
   * gets {@link FRESH_GRACE_MS} to send a byte of it (then that request is answered, with
   * `Connection: close`), as nginx lets such a connection send its request.
   */
  drain(): void {
    const state = this.#state;
    if (state === State.Idle) return this.close();
    if (state !== State.Head || this.#wire.buffered > 0 || this.#received) return;
    if (!this.#fresh) return this.close();
    const timer = setTimeout(() => {
      if (!this.#received) this.close();
    }, Math.min(FRESH_GRACE_MS, this.#server.options.timeouts.headerMs));
    this.#gone.signal.addEventListener("abort", () => clearTimeout(timer), { once: true });
  }

  close(): void {
    if (this.#state === State.Closed) return;
    this.#state = State.Closed;
    this.#stopDeadline();
    this.#leave();
    this.#tunnel?.close();
    try {
      this.#conn.close();
    } catch { /* closed already */ }
  }

  get gone(): boolean {
    return this.#left;
  }

  watch(onGone: (() => void) | null): void {
    this.#watcher = onGone;
  }

  /** The client is gone: the signal aborts, the watching exchange hears of it. */
  #leave(): void {
    if (this.#left) return;
    this.#left = true;
    this.#gone.abort();
    const watcher = this.#watcher;
    this.#watcher = null;
    watcher?.();
  }

  #stopDeadline(): void {
    this.#deadline?.cancel();
    this.#deadline = undefined;
  }

  readonly #onHeaderTimeout = (): void => {
    this.#deadline = undefined;
    // Best effort: a client that sends nothing may not read either.
    const reply = errorReply("request-timeout", "the request head did not arrive in time");
    this.#writeError(reply).finally(() => this.close());
  };

  readonly #onIdleTimeout = (): void => {
    this.#deadline = undefined;
    this.close();
  };

  /** Bytes of a head arrived: from now on the header timeout runs. */
  readonly #onData = (): void => {
    this.#received = true;
    if (this.#state !== State.Idle) return;
    this.#stopDeadline();
    this.#state = State.Head;
    this.#deadline = this.#server.headerDeadlines.add(this.#onHeaderTimeout);
  };

  /**
   * Reads the next request head; `null` when the client closed between requests (or the
   * connection was closed by a timeout or drain). Answers refused heads itself.
   */
  async #readHead(fresh: boolean): Promise<RequestHead | null> {
    const wire = this.#wire;
    const server = this.#server;
    const limits = server.limits;
    if (fresh || wire.buffered > 0) {
      this.#state = State.Head;
      this.#deadline = server.headerDeadlines.add(this.#onHeaderTimeout);
    } else {
      this.#state = State.Idle;
      this.#deadline = server.idleDeadlines.add(this.#onIdleTimeout);
    }
    try {
      let head: RequestHead | null;
      try {
        head = await readRequestHead(wire, limits, this.#onData);
      } catch (err) {
        if (err instanceof RequestError) throw err;
        head = null; // the socket broke or was closed by a timeout
      }
      this.#stopDeadline();
      if (head === null || this.#state === State.Closed) {
        this.close();
        return null;
      }
      this.#state = State.Busy;
      this.#fresh = false;
      this.#received = false;
      return head;
    } catch (err) {
      this.#stopDeadline();
      this.#state = State.Busy;
      const refused = err as RequestError;
      await this.#writeError(errorReply(codeOfStatus(refused.status), refused.message));
      return null;
    }
  }

  /** Handles one request; resolves whether the connection may carry another. */
  async #exchange(head: RequestHead): Promise<boolean> {
    const server = this.#server;
    this.#answered = false;
    const hasBody = head.chunked || head.contentLength > 0;
    const body = hasBody ? new ClientBody(this, head) : null;
    if (body === null) this.#watchClient();
    const request: ProxyRequest = {
      method: head.method,
      target: head.target,
      authority: head.authority,
      headers: head.headers,
      body,
      bodyLength: head.chunked ? -1 : head.contentLength,
      client: this.#client,
      upgrade: head.upgrade ?? undefined,
      rawChunked: head.minor === 1,
      protocol: head.minor === 1 ? "HTTP/1.1" : "HTTP/1.0",
      signal: this.#gone.signal,
      gone: this,
    };
    let reply: UpstreamReply;
    try {
      reply = await server.options.path.handle(request);
    } catch (err) {
      reply = body?.failure ?? clientFailure(err);
      await this.#writeError(reply);
      return false;
    }
    try {
      if (body?.failure !== undefined) {
        // The client's body broke (timeout, bad chunk): whatever the server said, the client
        // gets the reason, and the connection ends.
        cancelBody(reply);
        await this.#writeError(body.failure);
        return false;
      }
      if (reply.tunnel !== undefined) {
        if (this.#server.draining || this.#state === State.Closed) {
          reply.tunnel.close();
          return false;
        }
        await this.#runTunnel(reply, reply.tunnel);
        return false;
      }
      const keepAlive = head.keepAlive && !server.draining && (body === null || body.complete);
      return await this.#writeReply(head, reply, keepAlive);
    } finally {
      reply.delivered?.();
    }
  }

  /**
   * After the request is read: a background read notices the client going away (end of
   * stream) while the answer is awaited; bytes that arrive (a pipelined request) stay buffered
   * for the next head.
   */
  #watchClient(): void {
    const wire = this.#wire;
    if (wire.buffered > this.#server.limits.maxHeadBytes) return;
    wire.park(); // the connection is idle until the next request (when nothing is buffered)
    wire.prefetch().then((more) => {
      if (!more) this.#leave();
    }, () => this.#leave());
  }

  /** @internal The request body was read to its end. */
  bodyDone(): void {
    this.#watchClient();
  }

  /** @internal */
  get wire(): Wire {
    return this.#wire;
  }

  /** @internal */
  get server(): H1Server {
    return this.#server;
  }

  /**
   * @internal A body read took too long: the client gets a 408 (unless an answer already
   * started) and the connection closes under the pending read.
   */
  abortBody(): void {
    const reply = errorReply("request-timeout", "the request body stopped arriving");
    (this.#answered ? Promise.resolve() : this.#writeError(reply)).finally(() => this.close());
  }

  /** @internal */
  write(bytes: Uint8Array, interim = false): Promise<void> {
    if (!interim) this.#answered = true;
    return writeFully(this.#conn, bytes);
  }

  /**
   * Writes a reply's head — status line, its fields except `Content-Length`, then `tail` (the
   * framing and connection lines, and the blank line) — followed by `body`, in one write. The
   * head is encoded piece by piece (`writeLatin1`) into a reused buffer: no string is built for it.
   */
  async #writeAnswer(reply: UpstreamReply, tail: string, body: Uint8Array | null): Promise<void> {
    const headers = reply.headers;
    const code = String(reply.status);
    const reason = reply.reason;
    let size = 12 + code.length + reason.length + tail.length + (body === null ? 0 : body.length);
    for (let i = 0; i < headers.length; i++) {
      size += headers[i][0].length + headers[i][1].length + 4;
    }
    const out = scratch.take(size);
    try {
      let at = writeLatin1(out, 0, "HTTP/1.1 ");
      at = writeLatin1(out, at, code);
      out[at++] = 32;
      at = writeLatin1(out, at, reason);
      out[at++] = 13;
      out[at++] = 10;
      for (let i = 0; i < headers.length; i++) {
        const name = headers[i][0];
        if (name.length === 14 && name.toLowerCase() === "content-length") continue;
        at = writeLatin1(out, at, name);
        out[at++] = 58;
        out[at++] = 32;
        at = writeLatin1(out, at, headers[i][1]);
        out[at++] = 13;
        out[at++] = 10;
      }
      at = writeLatin1(out, at, tail);
      if (body !== null) {
        out.set(body, at);
        at += body.length;
      }
      await this.write(out.subarray(0, at));
    } finally {
      scratch.give(out);
    }
  }

  /** Writes one of the proxy's own answers with `Connection: close`; never rejects. */
  async #writeError(reply: UpstreamReply): Promise<void> {
    try {
      const body = reply.body as Uint8Array;
      await this.#writeAnswer(
        reply,
        "content-length: " + body.length + "\r\nconnection: close\r\n\r\n",
        body,
      );
    } catch { /* the client is gone */ }
  }

  /** Writes a reply; resolves whether the connection may carry another request. */
  async #writeReply(head: RequestHead, reply: UpstreamReply, keepAlive: boolean): Promise<boolean> {
    const status = reply.status;
    const body = reply.body;
    const noBody = head.method === "HEAD" || status === 204 || status === 304 || status < 200;
    const length = status === 204 || status < 200 ? -1 : reply.contentLength;
    // The framing and connection lines; the status line and fields are encoded by #writeAnswer.
    let text = "";
    let framing: "none" | "length" | "chunked" | "close" = "none";
    if (length >= 0) text += "content-length: " + length + "\r\n";
    if (!noBody) {
      if (body instanceof Uint8Array) {
        if (length < 0) text += "content-length: " + body.length + "\r\n";
        framing = "length";
      } else if (length >= 0) framing = length === 0 ? "none" : "length";
      else if (body === null) text += "content-length: 0\r\n";
      else if (head.minor === 1) {
        text += "transfer-encoding: chunked\r\n";
        framing = "chunked";
      } else {
        framing = "close";
        keepAlive = false;
      }
    }
    if (!keepAlive) text += "connection: close\r\n\r\n";
    else text += head.minor === 0 ? "connection: keep-alive\r\n\r\n" : "\r\n";

    if (body === null || noBody || framing === "none") {
      if (body !== null && !(body instanceof Uint8Array)) cancelBody(reply);
      await this.#writeAnswer(reply, text, null);
      return keepAlive;
    }
    if (body instanceof Uint8Array) {
      if (body.length <= COALESCE) await this.#writeAnswer(reply, text, body);
      else {
        await this.#writeAnswer(reply, text, null);
        await this.write(body);
      }
      return keepAlive;
    }
    const source: BodySource = body instanceof ReadableStream ? readerSource(body) : body;
    const raw = framing === "chunked" && (body as Partial<ReplyBody>).chunkedRaw === true;
    let sent = 0;
    try {
      await this.#writeAnswer(reply, text, null);
      for (;;) {
        const chunk = await source.next();
        if (chunk === null) break;
        if (chunk.length === 0) continue;
        sent += chunk.length;
        if (framing === "chunked" && !raw) await this.write(frameChunk(chunk));
        else await this.write(chunk);
      }
    } catch {
      // The client or the server went away mid-body: cut the connection so that the client
      // never takes a truncated body for a complete one; the server's connection is dropped.
      source.cancel();
      return false;
    }
    if (framing === "chunked" && !raw) await this.write(LAST_CHUNK);
    if (framing === "length" && sent !== length) return false;
    return keepAlive;
  }

  /** The server agreed to switch protocols: bytes flow both ways until either side ends. */
  async #runTunnel(reply: UpstreamReply, tunnel: Tunnel): Promise<void> {
    this.#tunnel = tunnel;
    this.#state = State.Tunnel;
    const onTunnel = this.#server.options.onTunnel;
    onTunnel?.(1);
    const wire = this.#wire;
    let last = performance.now();
    const idleMs = this.#server.options.timeouts.tunnelIdleMs;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const check = () => {
      const quiet = performance.now() - last;
      if (quiet >= idleMs) this.close();
      else timer = setTimeout(check, idleMs - quiet);
    };
    timer = setTimeout(check, idleMs);
    try {
      await this.#writeAnswer(reply, "\r\n", null);
      const toServer = (async () => {
        if (wire.buffered > 0) {
          await writeFully(tunnel, wire.buf.slice(wire.start, wire.end));
          wire.start = wire.end;
        }
        // A read the request's watch started may still be pending: its bytes go first.
        for (;;) {
          const more = await wire.fill();
          if (!more) break;
          last = performance.now();
          await writeFully(tunnel, wire.buf.slice(wire.start, wire.end));
          wire.start = wire.end;
        }
      })();
      const toClient = (async () => {
        if (tunnel.buffered.length > 0) await this.write(tunnel.buffered);
        const buf = new Uint8Array(64 * 1024);
        for (;;) {
          const n = await tunnel.read(buf);
          if (n === null) break;
          last = performance.now();
          await this.write(buf.subarray(0, n));
        }
      })();
      // Either side ending ends the tunnel.
      await Promise.race([toServer, toClient]);
    } catch {
      /* either side broke */
    } finally {
      onTunnel?.(-1);
      clearTimeout(timer);
      tunnel.close();
      this.close();
    }
  }
}

/** The answer to a request whose body could not be read. */
function clientFailure(err: unknown): UpstreamReply {
  if (err instanceof RequestError) return errorReply(codeOfStatus(err.status), err.message);
  if (err instanceof ParseError) return errorReply("bad-request", err.message);
  return errorReply("bad-request", "the request body could not be read");
}

function cancelBody(reply: UpstreamReply): void {
  const body = reply.body;
  if (body === null || body instanceof Uint8Array) return;
  if (body instanceof ReadableStream) body.cancel().catch(() => {});
  else body.cancel();
  reply.tunnel?.close();
}

function readerSource(stream: ReadableStream<Uint8Array>): BodySource {
  const reader = stream.getReader();
  return {
    async next() {
      const r = await reader.read();
      return r.done ? null : r.value;
    },
    cancel(reason) {
      reader.cancel(reason).catch(() => {});
    },
  };
}

/**
 * A request body read off the client's connection: `Content-Length` or chunked (decoded, or
 * relayed as validated chunked framing when the transport asks: {@link relayChunked}), each read
 * bounded by the body timeout. The first read sends `100 Continue` to a client that waits for it.
 */
class ClientBody implements BodySource {
  readonly #connection: ClientConnection;
  #reader: BodyReader;
  readonly #chunked: boolean;
  #started = false;
  #expectContinue: boolean;
  #ended = false;
  #timedOut = false;
  /** Why the body could not be read (the client's fault), if it could not. */
  failure: UpstreamReply | undefined;

  constructor(connection: ClientConnection, head: RequestHead) {
    this.#connection = connection;
    this.#expectContinue = head.expectContinue;
    this.#chunked = head.chunked;
    this.#reader = bodyReader(
      connection.wire,
      head.chunked ? "chunked" : "length",
      head.contentLength,
      this.#limits(),
    );
  }

  /** Whether the body was read to its end. */
  get complete(): boolean {
    return this.#ended;
  }

  relayChunked(): boolean {
    if (!this.#chunked || this.#started) return false;
    this.#reader = relayChunkedReader(this.#connection.wire, this.#limits());
    return true;
  }

  #limits(): HeadLimits {
    return {
      maxHeadBytes: this.#connection.server.limits.maxHeadBytes,
      maxHeaders: DEFAULT_LIMITS.maxHeaders,
    };
  }

  async next(): Promise<Uint8Array | null> {
    if (this.#ended) return null;
    if (this.failure !== undefined) throw new BodyReadError();
    this.#started = true;
    if (this.#expectContinue) {
      this.#expectContinue = false;
      await this.#connection.write(CONTINUE, true);
    }
    const deadline = this.#connection.server.bodyDeadlines.add(() => {
      this.#timedOut = true;
      this.#connection.abortBody();
    });
    try {
      const chunk = await this.#reader.next();
      if (chunk === null || this.#reader.complete) {
        this.#ended = true;
        this.#connection.bodyDone();
      }
      return chunk;
    } catch (err) {
      this.failure = this.#timedOut
        ? errorReply("request-timeout", "the request body stopped arriving")
        : err instanceof ParseError
        ? errorReply("bad-request", `invalid request body: ${err.message}`)
        : err instanceof EofError
        ? errorReply("bad-request", "the client closed the connection inside the body")
        : errorReply("bad-request", "the request body could not be read");
      throw new BodyReadError();
    } finally {
      deadline.cancel();
    }
  }

  cancel(): void {
    // Nothing to release: unread bytes stay on the connection, which is then closed.
  }
}

/** Reading the client's body failed; the listener answers with the reason it recorded. */
class BodyReadError extends Error {
  override name = "BodyReadError";
}
