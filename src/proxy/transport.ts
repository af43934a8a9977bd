/**
 * How the proxy talks to upstream servers. Two implementations share this interface: `h1` (an
 * own pooled HTTP/1.1 client) and `fetch`. The request path (`request_path.ts`) does routing,
 * retries and error pages; a transport only moves one request to one server and hands back an
 * {@link UpstreamReply}: a status, header pairs and a body as bytes, chunks or a stream, so a
 * byte-level listener never builds `Request`/`Response` objects and `Deno.serve` gets a
 * `Response` through `replyToResponse` (`reply.ts`).
 *
 * @module
 */
import type { Upstream } from "../balance/upstream.ts";
import type { Forwarded, HeaderList } from "./hop.ts";

/** Why an upstream exchange failed. */
export type UpstreamFailure =
  /** No connection could be opened (refused, unreachable, connect timeout). Nothing was sent. */
  | "connect"
  /** The response head did not arrive within the response timeout. */
  | "timeout"
  /** The connection broke or the response was malformed after the request started going out. */
  | "broken";

/**
 * A failed exchange, classified so the forwarder can decide on a retry.
 *
 * @example
 * ```ts
 * throw new UpstreamError("connect", "connection refused", false);
 * ```
 */
export class UpstreamError extends Error {
  override name = "UpstreamError";
  /** What went wrong. */
  readonly failure: UpstreamFailure;
  /** Whether any byte of the request body may have been consumed (then it cannot be replayed). */
  readonly bodyConsumed: boolean;
  /**
   * The failure as metrics count it (`dynlb_upstream_errors_total{kind}`): `failure`, or
   * `malformed` for a `broken` exchange whose response broke HTTP's rules.
   */
  readonly kind: UpstreamFailure | "malformed";

  constructor(
    failure: UpstreamFailure,
    message: string,
    bodyConsumed: boolean,
    cause?: unknown,
    malformed = false,
  ) {
    super(message, { cause });
    this.failure = failure;
    this.bodyConsumed = bodyConsumed;
    this.kind = malformed ? "malformed" : failure;
  }
}

/**
 * Methods that may be sent again after the upstream may have seen them (RFC 9110 §9.2.2): the
 * one set the request path's retry rule and the h1 client's stale-connection replay share.
 *
 * @example
 * ```ts
 * IDEMPOTENT_METHODS.has("PUT"); // true
 * ```
 */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set([
  "GET",
  "HEAD",
  "OPTIONS",
  "TRACE",
  "PUT",
  "DELETE",
]);

/**
 * A body read chunk by chunk, pulled by whoever sends it on (backpressure: nothing is read
 * before it is asked for).
 *
 * @example
 * ```ts
 * for (let c = await body.next(); c !== null; c = await body.next()) await conn.write(c);
 * ```
 */
export interface BodySource {
  /** The next bytes, or `null` at the end. Chunks belong to the caller. */
  next(): Promise<Uint8Array | null>;
  /** Gives up on the rest (the producer releases or closes what it reads from). */
  cancel(reason?: unknown): void;
  /**
   * Asks a chunked body for its chunked coding (validated framing with the data, extensions and
   * trailers dropped) instead of the decoded data, so an HTTP/1.1 upstream gets it without
   * re-chunking. Resolves whether it switched; only before the first {@link next}. Absent: never.
   */
  relayChunked?(): boolean;
}

/**
 * A response body from an upstream.
 *
 * @example
 * ```ts
 * if (body.chunkedRaw) await client.write(await body.next() ?? new Uint8Array());
 * ```
 */
export interface ReplyBody extends BodySource {
  /**
   * Whether {@link BodySource.next} hands out the chunked coding as it came from the server
   * (framing included, validated): an HTTP/1.1 client gets it without re-chunking.
   */
  readonly chunkedRaw: boolean;
}

/**
 * A connection that switched protocols (`101`): bytes both ways from now on.
 *
 * @example
 * ```ts
 * await client.write(tunnel.buffered);
 * ```
 */
export interface Tunnel {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
  /** Bytes the server sent after its 101 head, already read. */
  readonly buffered: Uint8Array;
}

/** One request to send upstream, prepared by the request path once and reused across retries. */
export interface UpstreamRequest {
  readonly method: string;
  /** Path and query exactly as the client sent them, e.g. `/a/b?x=1`. */
  readonly target: string;
  /**
   * The client's request headers. A `Headers` (from `Deno.serve`) still holds hop-by-hop fields
   * and `Content-Length`; pairs (from the h1 listener) are already without them (see
   * `HeaderList` in `hop.ts`). A transport sends them without hop-by-hop fields, so the request
   * path copies headers at most once, straight into what goes on the wire.
   */
  readonly headers: HeaderList;
  /** Forwarding headers to set, replacing the client's; absent: none. */
  readonly forwarded?: Forwarded;
  /**
   * The request body: bytes when the proxy buffered a small body (it can be sent again to
   * another server), the client's stream or chunk source otherwise (a transport must not read
   * it before it is connected), or `null`.
   */
  readonly body: Uint8Array<ArrayBuffer> | BodySource | ReadableStream<Uint8Array> | null;
  /**
   * Length of a streamed body, -1 when unknown (it then goes out chunked). Absent: taken from
   * the `Content-Length` of a `Headers`.
   */
  readonly bodyLength?: number;
  /** The protocol of `Upgrade` to ask the server for (h1 transport only); absent: none. */
  readonly upgrade?: string;
  /** Whether the client can take a chunked body as the server sent it (HTTP/1.1 client). */
  readonly rawChunked?: boolean;
  /** Aborts when the client goes away. */
  readonly signal: AbortSignal;
  /** Tells when the client goes away without an event listener (h1 listener); absent: `signal`. */
  readonly gone?: ClientGone;
}

/**
 * Whether a client went away, and one watcher told when it does: what an exchange needs of an
 * `AbortSignal` for the price of a field write (an `addEventListener`/`removeEventListener`
 * pair per request costs ~1.2 µs).
 *
 * @example
 * ```ts
 * if (gone.gone) throw new Error("client went away");
 * gone.watch(() => conn.close());
 * // … the exchange …
 * gone.watch(null);
 * ```
 */
export interface ClientGone {
  /** Whether the client went away. */
  readonly gone: boolean;
  /**
   * Calls `onGone` once when the client goes away (not when it is gone already: check
   * {@link gone} first); one watcher at a time, `null` forgets it.
   */
  watch(onGone: (() => void) | null): void;
}

/** Whether the client of `request` went away. */
export function clientLeft(
  request: { readonly signal: AbortSignal; readonly gone?: ClientGone },
): boolean {
  const gone = request.gone;
  return gone === undefined ? request.signal.aborted : gone.gone;
}

/** What a server answered, hop-by-hop fields removed. */
export interface UpstreamReply {
  readonly status: number;
  readonly reason: string;
  /**
   * End-to-end fields as `[name, value]` pairs in arrival order (names as the server spelled
   * them); a `content-length` pair may be among them — {@link contentLength} is what counts.
   */
  readonly headers: [string, string][];
  /** The body's length (for `HEAD`/`304`: the length declared), or -1 when not known. */
  readonly contentLength: number;
  /**
   * Bytes (a small body read whole), a chunk source, a stream (`fetch`), or `null`. Whoever
   * receives it must read it to the end or cancel it: only then does the connection go back to
   * the pool (or get closed).
   */
  readonly body: Uint8Array<ArrayBuffer> | ReplyBody | ReadableStream<Uint8Array> | null;
  /** Set for a `101` to an upgrade request: the server's connection, now a tunnel. */
  readonly tunnel?: Tunnel;
  /**
   * Called by the listener once the answer has been delivered (or abandoned); the access log.
   * Whoever wraps it sets it anew (no copy of the reply per request).
   */
  delivered?: () => void;
}

/** Timeouts in milliseconds. */
export interface TransportTimeouts {
  /** Opening the TCP connection. */
  readonly connectMs: number;
  /** From the request being sent to the response head having arrived. */
  readonly responseMs: number;
}

/** Moves one request to one upstream server and returns its reply, body streaming. */
export interface UpstreamTransport {
  /** `fetch` or `h1`. */
  readonly name: string;
  /**
   * Sends `request` to `upstream`. Only small bodies of a known length (≤ 64 KiB) may arrive
   * whole. Rejects only with {@link UpstreamError}. `now` is `performance.now()` as the caller
   * read it just before (so the transport need not read the clock again).
   */
  exchange(request: UpstreamRequest, upstream: Upstream, now?: number): Promise<UpstreamReply>;
  /**
   * Forgets servers whose `addr:port` key is not in `keys` (they left the config): idle pooled
   * connections close now, busy ones once their exchange is over — never under a request.
   */
  retain?(keys: ReadonlySet<string>): void;
  /** Closes pooled connections. */
  close(): void;
  /** Pooled connections by state, for a transport that pools (O(servers): not per request). */
  pooled?(): { idle: number; active: number };
}

/**
 * Reads a `ReadableStream` as a {@link BodySource}.
 *
 * @example
 * ```ts
 * const source = streamSource(request.body!);
 * ```
 */
export function streamSource(stream: ReadableStream<Uint8Array>): BodySource {
  let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
  return {
    async next() {
      reader ??= stream.getReader();
      const r = await reader.read();
      return r.done ? null : r.value;
    },
    cancel(reason) {
      (reader ?? stream).cancel(reason).catch(() => {});
    },
  };
}

/**
 * Offers a {@link BodySource} as a pull-based `ReadableStream` (one `next()` per pull).
 *
 * @example
 * ```ts
 * new Response(sourceStream(body));
 * ```
 */
export function sourceStream(source: BodySource): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    pull: async (controller) => {
      const chunk = await source.next();
      if (chunk === null) controller.close();
      else controller.enqueue(chunk);
    },
    cancel: (reason) => source.cancel(reason),
  }, { highWaterMark: 0 });
}
