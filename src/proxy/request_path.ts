/**
 * The request path, shared by every listener: authority → pool → server → transport, with
 * bounded retries on other servers of the same backend (nginx's `proxy_next_upstream error
 * timeout`), and the proxy's own error answers. It reads only the immutable snapshot through
 * the router; it never parses config, awaits a store or logs per request.
 *
 * Listeners (`Deno.serve` in `server.ts`, dynlb's own HTTP/1.1 server in `h1/server.ts`) turn
 * what a client sent into a {@link ProxyRequest} and write the {@link UpstreamReply} back. The
 * seams other features plug into, each in one place:
 * - routing: `Router.resolve(authority, target)` gives the pool and path rule (host and prefix
 *   matching live in the router);
 * - selection: `pool.pick(context, tried)` with `pool.begin`/`pool.end` around each attempt and
 *   sticky cookies (the backend's selector, one algorithm per file in `balance/`);
 * - forwarding headers: `forwardingOf` in `forwarding.ts` (`--trusted-proxies`);
 * - observation: `onUpstreamFailure` per failed attempt (passive health), and the reply or
 *   error each call of {@link RequestPath.handle} returns.
 *
 * @module
 */
import type { Upstream } from "../balance/upstream.ts";
import { forwardTarget } from "../config/route.ts";
import { CidrSet } from "./cidr.ts";
import { ExchangeContext } from "./context.ts";
import { type ClientFacts, forwardingOf } from "./forwarding.ts";
import type { HeaderList } from "./hop.ts";
import { errorReply } from "./errors.ts";
import type { Router } from "./router.ts";
import {
  type BodySource,
  IDEMPOTENT_METHODS,
  streamSource,
  UpstreamError,
  type UpstreamReply,
  type UpstreamRequest,
  type UpstreamTransport,
} from "./transport.ts";

/** Called when a server failed while proxying, for passive health detection. */
export type UpstreamFailureListener = (
  backend: string,
  server: string,
  error: UpstreamError,
) => void;

/** What the request path needs. */
export interface RequestPathOptions {
  readonly router: Router;
  readonly transport: UpstreamTransport;
  /** Further servers tried after a failed attempt (0: no retry). */
  readonly retries: number;
  /** Told about every failed attempt. */
  readonly onUpstreamFailure?: UpstreamFailureListener;
  /** Peers whose forwarding headers are believed (`--trusted-proxies`); absent: nobody. */
  readonly trustedProxies?: CidrSet;
  /**
   * The transport of upgrade requests when `transport` cannot tunnel (`fetch`): the h1 client.
   * Absent: `transport`.
   */
  readonly upgradeTransport?: UpstreamTransport;
}

const NOBODY = new CidrSet([]);

/** A client's request as a listener hands it over. */
export interface ProxyRequest {
  readonly method: string;
  /** Origin form (`/path?query`) as sent, or `*`. */
  readonly target: string;
  /** What routes it: the absolute-form authority or `Host`; `null` when there is none. */
  readonly authority: string | null;
  readonly headers: HeaderList;
  /** The body: a stream (`Deno.serve`), a chunk source (h1 listener), bytes, or `null`. */
  readonly body: Uint8Array<ArrayBuffer> | BodySource | ReadableStream<Uint8Array> | null;
  /** The body's declared length, -1 when unknown (chunked). */
  readonly bodyLength: number;
  /** Who sent it (the peer, or what a trusted PROXY header says) and over which scheme. */
  readonly client: ClientFacts;
  /** A protocol to switch to (`Connection: upgrade` + `Upgrade`), h1 listener only. */
  readonly upgrade?: string;
  /** Whether the client takes a chunked body as the server sent it (HTTP/1.1 client). */
  readonly rawChunked?: boolean;
  /** Aborts when the client goes away. */
  readonly signal: AbortSignal;
}

/**
 * Request bodies up to this size, with a declared length, are read before connecting (nginx's
 * request buffering) so that a failed attempt can be replayed on another server: the replay
 * buffer. Larger or chunked bodies stream through and are not replayed once sending began.
 */
export const REPLAY_BUFFER_BYTES = 64 * 1024;

/**
 * Route, pick, attempt, retry: one call per client request.
 *
 * @example
 * ```ts
 * const path = new RequestPath({ router, transport, retries: 2 });
 * const reply = await path.handle(request);
 * ```
 */
export class RequestPath {
  readonly #router: Router;
  readonly #transport: UpstreamTransport;
  readonly #retries: number;
  readonly #onUpstreamFailure: UpstreamFailureListener | undefined;
  readonly #trusted: CidrSet;
  readonly #upgradeTransport: UpstreamTransport;

  constructor(options: RequestPathOptions) {
    this.#upgradeTransport = options.upgradeTransport ?? options.transport;
    this.#trusted = options.trustedProxies ?? NOBODY;
    this.#router = options.router;
    this.#transport = options.transport;
    this.#retries = options.retries;
    this.#onUpstreamFailure = options.onUpstreamFailure;
  }

  /** The transport requests go out through. */
  get transport(): UpstreamTransport {
    return this.#transport;
  }

  /**
   * Answers one request: the server's reply, or the proxy's own error answer. Rejects only when
   * reading the client's (small, buffered) body fails; the listener answers that itself.
   */
  async handle(request: ProxyRequest): Promise<UpstreamReply> {
    const authority = request.authority;
    const target = request.target;
    const destination = this.#router.resolve(authority, target);
    if (destination === undefined) {
      return errorReply(
        "unknown-host",
        authority === null ? "request has no Host header" : `no backend for host "${authority}"`,
      );
    }
    const pool = destination.pool;
    const forwarded = forwardingOf(request.headers, authority ?? "", request.client, this.#trusted);
    // The client a balancer hashes on is the one forwarding names (a trusted proxy's client).
    const context = new ExchangeContext(request.headers, forwarded.realIp, target);
    const first = pool.pick(context);
    if (first === undefined) {
      return errorReply("no-server", `no server available for backend "${pool.name}"`);
    }

    let body = request.body;
    if (
      body !== null && !(body instanceof Uint8Array) && request.bodyLength >= 0 &&
      request.bodyLength <= REPLAY_BUFFER_BYTES
    ) {
      body = await readWhole(body, request.bodyLength);
    }
    const upstreamRequest: UpstreamRequest = {
      method: request.method,
      target: forwardTarget(target, destination.strip),
      headers: request.headers,
      forwarded,
      body,
      bodyLength: request.bodyLength,
      upgrade: request.upgrade,
      rawChunked: request.rawChunked,
      signal: request.signal,
    };

    const transport = request.upgrade === undefined ? this.#transport : this.#upgradeTransport;
    let upstream: Upstream = first;
    let tried: Upstream[] | undefined;
    for (let attempt = 0;; attempt++) {
      // The selector hears of every exchange: least_conn counts it in flight, ewma times it.
      pool.begin(upstream);
      const started = performance.now();
      try {
        const reply = await transport.exchange(upstreamRequest, upstream);
        pool.end(upstream, performance.now() - started, true);
        const cookie = pool.sticky === undefined ? undefined : pool.stickyCookie(context, upstream);
        if (cookie !== undefined) reply.headers.push(["set-cookie", cookie]);
        return reply;
      } catch (err) {
        pool.end(upstream, performance.now() - started, false);
        const error = err instanceof UpstreamError
          ? err
          : new UpstreamError("broken", String(err), true, err);
        if (request.signal.aborted) {
          return errorReply("upstream-unreachable", "client went away");
        }
        this.#onUpstreamFailure?.(pool.name, upstream.key, error);
        // Retries go through the same selector (and sticky cookie), never to a server tried.
        const next = attempt < this.#retries && canRetry(request.method, error)
          ? pool.pick(context, tried = tried ?? [upstream])
          : undefined;
        if (next === undefined) {
          // The server's address stays inside: clients at the edge learn only what failed.
          return error.failure === "timeout"
            ? errorReply("upstream-timeout", "the upstream server did not answer in time")
            : errorReply("upstream-unreachable", `the upstream server failed (${error.failure})`);
        }
        tried!.push(next);
        upstream = next;
      }
    }
  }
}

/** Reads a body of a known small length into one buffer (the replay buffer). */
async function readWhole(
  body: BodySource | ReadableStream<Uint8Array>,
  length: number,
): Promise<Uint8Array<ArrayBuffer>> {
  const source = body instanceof ReadableStream ? streamSource(body) : body;
  const out = new Uint8Array(length);
  let got = 0;
  for (let chunk = await source.next(); chunk !== null; chunk = await source.next()) {
    if (got + chunk.length > length) {
      source.cancel();
      throw new RangeError("request body longer than its Content-Length");
    }
    out.set(chunk, got);
    got += chunk.length;
    if (got === length) break;
  }
  if (got !== length) throw new RangeError("request body shorter than its Content-Length");
  return out;
}

/**
 * A request may go to another server when it can be sent again whole, and either the first
 * server cannot have acted on it (no connection) or acting twice is harmless.
 */
function canRetry(method: string, error: UpstreamError): boolean {
  if (error.bodyConsumed) return false;
  return error.failure === "connect" || IDEMPOTENT_METHODS.has(method);
}

/**
 * Path and query exactly as the client sent them, from a `Deno.serve` request URL: it keeps the
 * raw request target after `scheme://authority`, so slicing it avoids a `URL` object and any
 * normalisation of `..`, `%2F` or case.
 *
 * @example
 * ```ts
 * targetOf("http://a.test/a/../b?x=1"); // "/a/../b?x=1"
 * ```
 */
export function targetOf(url: string): string {
  const slash = url.indexOf("/", url.indexOf("://") + 3);
  return slash === -1 ? "/" : url.slice(slash);
}
