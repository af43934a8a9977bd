/**
 * One client connection of the h1 listener: waits for request heads, runs each exchange through
 * the request path, writes the answers back in order, and becomes a tunnel after a `101`.
 *
 * An idle keep-alive connection holds as little as it can (10,000 of them are a target): no
 * suspended async function, promise or closure of its own — the connection itself is told when
 * its pending read ends ({@link ReadListener}) and when its deadline expires ({@link Expiring}) —
 * no `AbortController` (one is made per exchange), a small parked read buffer, and one idle
 * deadline.
 *
 * @module
 */
import { codeOfStatus, errorReply } from "../errors.ts";
import type { ClientFacts } from "../forwarding.ts";
import type { ProxyRequest } from "../request_path.ts";
import type { ClientGone, Tunnel, UpstreamReply } from "../transport.ts";
import { ClientBody, clientFailure } from "./client_body.ts";
import { PARKED_BUFFER, type ReadListener, Wire, writeFully } from "./connection.ts";
import type { Deadline, DeadlineQueue, Expiring } from "./deadlines.ts";
import { cancelBody, writeAnswer, writeError, writeReply } from "./reply_writer.ts";
import {
  type HeadScan,
  RequestError,
  type RequestHead,
  type RequestLimits,
  takeRequestHead,
} from "./request_parser.ts";
import type { H1ServerOptions, ListenerFacts } from "./server.ts";
import { relayTunnel } from "./tunnel.ts";

/**
 * What a connection needs of its server (the `H1Server`).
 *
 * @example
 * ```ts
 * new ClientConnection(server, conn, { proto: "http" }).start();
 * ```
 */
export interface ConnectionHost {
  readonly options: H1ServerOptions;
  readonly limits: RequestLimits;
  /** Whether shutdown began: answers say `Connection: close`. */
  readonly draining: boolean;
  readonly headerDeadlines: DeadlineQueue;
  readonly idleDeadlines: DeadlineQueue;
  readonly bodyDeadlines: DeadlineQueue;
  /** The connection closed and no exchange of it runs any more: it is forgotten. */
  released(connection: ClientConnection): void;
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

/**
 * One client connection; tells the exchange in flight when the client goes away
 * ({@link ClientGone}: no abort listener per exchange).
 *
 * @example
 * ```ts
 * const connection = new ClientConnection(server, conn, { proto: "http" });
 * connection.start(); // serves requests until the connection ends, then tells the server
 * ```
 */
export class ClientConnection implements ClientGone, ReadListener, Expiring {
  readonly #server: ConnectionHost;
  readonly #conn: Deno.Conn;
  readonly #facts: ListenerFacts;
  readonly #wire: Wire;
  #client: ClientFacts;
  #state: number = State.Head;
  #deadline: Deadline | undefined;
  /** Aborts when the client goes away during the exchange it was made for (none while idle). */
  #gone: AbortController | undefined;
  /** Whether the client went away. */
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
  /** An exchange (or the answer to a refused head) is running. */
  #exchanging = false;
  #released = false;
  /** A drain's grace for a fresh connection's first byte. */
  #grace: ReturnType<typeof setTimeout> | undefined;
  /** Progress of the head being read. */
  readonly #scan: HeadScan = { scanned: 0, blank: 0 };
  /**
   * The longest request on this connection (bytes of its head, plus its body when that has a
   * length, as they arrive together): sizes the parked read buffer.
   */
  #longest = 0;

  constructor(server: ConnectionHost, conn: Deno.Conn, facts: ListenerFacts) {
    this.#server = server;
    this.#conn = conn;
    this.#facts = facts;
    // Parked from the start: the first head gets the largest parked buffer, later ones one sized
    // for the heads seen.
    this.#wire = new Wire(conn, 0);
    this.#wire.park();
    const addr = conn.remoteAddr as Deno.NetAddr;
    this.#client = { address: addr.hostname ?? "", proto: facts.proto };
  }

  /** The listener's protocol. */
  get proto(): ListenerFacts["proto"] {
    return this.#facts.proto;
  }

  /**
   * Serves requests until the connection ends; then the server is told
   * ({@link ConnectionHost.released}). Never throws.
   */
  start(): void {
    const prelude = this.#server.options.prelude;
    if (prelude === undefined) return this.#nextHead();
    this.#exchanging = true;
    prelude(this.#conn, this.#wire, this.#client).then((client) => {
      this.#exchanging = false;
      if (client === null || this.#state === State.Closed) return this.close();
      this.#client = client;
      this.#nextHead();
    }, () => {
      this.#exchanging = false;
      this.close();
    });
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
    this.#grace = setTimeout(() => {
      if (!this.#received) this.close();
    }, Math.min(FRESH_GRACE_MS, this.#server.options.timeouts.headerMs));
  }

  /** Closes the connection (idempotent); the server forgets it once no exchange runs. */
  close(): void {
    if (this.#state !== State.Closed) {
      this.#state = State.Closed;
      this.#stopDeadline();
      clearTimeout(this.#grace);
      this.#leave();
      this.#tunnel?.close();
      try {
        this.#conn.close();
      } catch { /* closed already */ }
      this.#wire.release(); // its parked buffer goes back to the shared slab
    }
    if (!this.#exchanging && !this.#released) {
      this.#released = true;
      this.#server.released(this);
    }
  }

  get gone(): boolean {
    return this.#left;
  }

  watch(onGone: (() => void) | null): void {
    this.#watcher = onGone;
  }

  /** The client is gone: the exchange's signal aborts, its watcher hears of it. */
  #leave(): void {
    if (this.#left) return;
    this.#left = true;
    this.#gone?.abort();
    const watcher = this.#watcher;
    this.#watcher = null;
    watcher?.();
  }

  #stopDeadline(): void {
    this.#deadline?.cancel();
    this.#deadline = undefined;
  }

  /** @internal The header or idle deadline expired (whichever the state says is set). */
  expired(): void {
    if (this.#state === State.Idle) this.#idleTimedOut();
    else if (this.#state === State.Head) this.#headerTimedOut();
  }

  #headerTimedOut(): void {
    this.#deadline = undefined;
    // Best effort: a client that sends nothing may not read either.
    const reply = errorReply("request-timeout", "the request head did not arrive in time");
    writeError(this, reply).finally(() => this.close());
  }

  #idleTimedOut(): void {
    this.#deadline = undefined;
    this.close();
  }

  /** Waits for the next request head: the first one, or the next on a kept-alive connection. */
  #nextHead(): void {
    const server = this.#server;
    // The last exchange is over: its signal is not needed any more.
    this.#gone = undefined;
    this.#scan.scanned = 0;
    this.#scan.blank = 0;
    if (this.#fresh || this.#wire.buffered > 0) {
      this.#state = State.Head;
      this.#deadline = server.headerDeadlines.add(this);
    } else {
      this.#state = State.Idle;
      this.#deadline = server.idleDeadlines.add(this);
    }
    this.#takeHead();
  }

  /**
   * Takes a request head off the buffer and runs its exchange, or waits for more bytes: a
   * callback on the read, no suspended async function (most of the time that is the idle wait
   * of a keep-alive connection).
   */
  #takeHead(): void {
    const wire = this.#wire;
    const from = wire.start;
    let head: RequestHead | null;
    try {
      head = takeRequestHead(wire, this.#server.limits, this.#scan);
    } catch (err) {
      return this.#refuse(err);
    }
    if (head === null) return wire.wait(this);
    const bytes = wire.start - from + (head.chunked ? PARKED_BUFFER : head.contentLength);
    if (bytes > this.#longest) this.#longest = bytes;
    this.#stopDeadline();
    this.#state = State.Busy;
    this.#fresh = false;
    this.#received = false;
    this.#exchanging = true;
    this.#exchange(head).then(
      (keepAlive) => this.#exchanged(keepAlive),
      () => this.#exchanged(false),
    );
  }

  /**
   * @internal A read ended: the watch during an exchange (`#watchClient`), or the wait for a
   * head.
   */
  readEnded(more: boolean): void {
    if (this.#state !== State.Busy) return this.#filled(more);
    // Bytes that arrive during an exchange (a pipelined request) stay buffered for the next head.
    if (!more) this.#leave();
  }

  /** @internal A read failed: the client is gone. */
  readFailed(): void {
    if (this.#state === State.Busy) this.#leave();
    else this.close();
  }

  /** A read for a head ended: bytes (the header timeout runs from the first), or the end. */
  #filled(more: boolean): void {
    if (this.#state === State.Closed) return;
    // The client closed between requests, or in the middle of a head: nothing to answer.
    if (!more) return this.close();
    this.#received = true;
    if (this.#state === State.Idle) {
      this.#stopDeadline();
      this.#state = State.Head;
      this.#deadline = this.#server.headerDeadlines.add(this);
    }
    this.#takeHead();
  }

  /** A head to refuse: answered, then the connection closes. */
  #refuse(err: unknown): void {
    this.#stopDeadline();
    if (!(err instanceof RequestError)) return this.close();
    this.#state = State.Busy;
    this.#exchanging = true;
    writeError(this, errorReply(codeOfStatus(err.status), err.message)).finally(() => {
      this.#exchanging = false;
      this.close();
    });
  }

  /** An exchange ended: the next request, or the end of the connection. */
  #exchanged(keepAlive: boolean): void {
    this.#exchanging = false;
    if (keepAlive && !this.#server.draining && this.#state !== State.Closed) this.#nextHead();
    else this.close();
  }

  /** Handles one request; resolves whether the connection may carry another. */
  async #exchange(head: RequestHead): Promise<boolean> {
    const server = this.#server;
    this.#answered = false;
    const hasBody = head.chunked || head.contentLength > 0;
    const body = hasBody ? new ClientBody(this, head) : null;
    if (body === null) this.#watchClient();
    const gone = this.#gone = new AbortController();
    if (this.#left) gone.abort(); // the end of the stream came after a pipelined request
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
      signal: gone.signal,
      gone: this,
    };
    let reply: UpstreamReply;
    try {
      reply = await server.options.path.handle(request);
    } catch (err) {
      reply = body?.failure ?? clientFailure(err);
      await writeError(this, reply);
      return false;
    }
    try {
      if (body?.failure !== undefined) {
        // The client's body broke (timeout, bad chunk): whatever the server said, the client
        // gets the reason, and the connection ends.
        cancelBody(reply);
        await writeError(this, body.failure);
        return false;
      }
      if (reply.tunnel !== undefined) {
        if (server.draining || this.#state === State.Closed) {
          reply.tunnel.close();
          return false;
        }
        await this.#runTunnel(reply, reply.tunnel);
        return false;
      }
      const keepAlive = head.keepAlive && !server.draining && (body === null || body.complete);
      return await writeReply(this, head, reply, keepAlive);
    } finally {
      reply.delivered?.();
    }
  }

  /**
   * After the request is read: a background read notices the client going away (end of
   * stream) while the answer is awaited; bytes that arrive (a pipelined request) stay buffered
   * for the next head, whose wait takes this read over.
   */
  #watchClient(): void {
    const wire = this.#wire;
    if (wire.buffered > this.#server.limits.maxHeadBytes) return;
    // The connection is idle until the next request (when nothing is buffered).
    wire.park(this.#longest);
    wire.wait(this); // readEnded: taken over by the wait for the next head if still pending
  }

  /** The server agreed to switch protocols: bytes flow both ways until either side ends. */
  async #runTunnel(reply: UpstreamReply, tunnel: Tunnel): Promise<void> {
    this.#tunnel = tunnel;
    this.#state = State.Tunnel;
    const onTunnel = this.#server.options.onTunnel;
    onTunnel?.(1);
    try {
      await writeAnswer(this, reply, "\r\n", null);
      await relayTunnel(this, tunnel, this.#server.options.timeouts.tunnelIdleMs);
    } catch {
      /* the client went away before the head was written */
    } finally {
      onTunnel?.(-1);
      tunnel.close();
      this.close();
    }
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
  get bodyDeadlines(): DeadlineQueue {
    return this.#server.bodyDeadlines;
  }

  /** @internal */
  get maxHeadBytes(): number {
    return this.#server.limits.maxHeadBytes;
  }

  /**
   * @internal A body read took too long: the client gets a 408 (unless an answer already
   * started) and the connection closes under the pending read.
   */
  abortBody(): void {
    const reply = errorReply("request-timeout", "the request body stopped arriving");
    (this.#answered ? Promise.resolve() : writeError(this, reply)).finally(() => this.close());
  }

  /** @internal Writes part of the answer. */
  write(bytes: Uint8Array): Promise<void> {
    this.#answered = true;
    return writeFully(this.#conn, bytes);
  }

  /** @internal Writes an interim answer (`100 Continue`): the real answer has not started. */
  writeInterim(bytes: Uint8Array): Promise<void> {
    return writeFully(this.#conn, bytes);
  }
}
