/**
 * How the proxy talks to upstream servers. Two implementations share this interface: `fetch`
 * (the design card's path) and, later, `h1` (an own pooled HTTP/1.1 client). The forwarder does
 * routing, retries and error pages; a transport only moves one request to one server.
 *
 * @module
 */
import type { Upstream } from "../balance/upstream.ts";
import type { Forwarded } from "./hop.ts";

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

  constructor(failure: UpstreamFailure, message: string, bodyConsumed: boolean, cause?: unknown) {
    super(message, { cause });
    this.failure = failure;
    this.bodyConsumed = bodyConsumed;
  }
}

/** One request to send upstream, prepared by the forwarder once and reused across retries. */
export interface UpstreamRequest {
  readonly method: string;
  /** Path and query exactly as the client sent them, e.g. `/a/b?x=1`. */
  readonly target: string;
  /**
   * The client's request headers as received. A transport sends them without hop-by-hop fields
   * (see `dropOnForward` and `upstreamHeaders` in `hop.ts`), so the request path copies headers
   * at most once, straight into what goes on the wire.
   */
  readonly headers: Headers;
  /** Forwarding headers to set, replacing the client's; absent: none. */
  readonly forwarded?: Forwarded;
  /**
   * The request body: bytes when the proxy buffered a small body (it can be sent again to
   * another server), the client's stream otherwise (a transport must not read it before it is
   * connected), or `null`.
   */
  readonly body: Uint8Array<ArrayBuffer> | ReadableStream<Uint8Array> | null;
  /** Aborts when the client goes away. */
  readonly signal: AbortSignal;
}

/** Timeouts in milliseconds. */
export interface TransportTimeouts {
  /** Opening the TCP connection. */
  readonly connectMs: number;
  /** From the request being sent to the response head having arrived. */
  readonly responseMs: number;
}

/** Moves one request to one upstream server and returns its response, body streaming. */
export interface UpstreamTransport {
  /** `fetch` or `h1`. */
  readonly name: string;
  /**
   * Sends `request` to `upstream`. The returned response has hop-by-hop headers already removed
   * and a body that streams; only small bodies of a known length (≤ 64 KiB) may arrive whole.
   * Rejects only with {@link UpstreamError}.
   */
  send(request: UpstreamRequest, upstream: Upstream): Promise<Response>;
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
