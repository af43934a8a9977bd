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
 * - observation: `onUpstreamFailure` per failed attempt (passive health), the metrics
 *   `recorder` (request, attempt, retry), the request id, and the access log entry finished by the
 *   reply's `delivered` once the listener has sent the answer.
 *
 * @module
 */
import type { Upstream } from "../balance/upstream.ts";
import { CHALLENGE_PREFIX, type ChallengeLookup, challengeResponse } from "../acme/challenge.ts";
import { forwardTarget } from "../config/route.ts";
import { httpsRedirect } from "./redirect.ts";
import { responseToReply } from "./reply.ts";
import { CidrSet } from "./cidr.ts";
import { ExchangeContext } from "./context.ts";
import { type ClientFacts, forwardingOf } from "./forwarding.ts";
import type { AccessEntry } from "../access/format.ts";
import { clientRequestId } from "../access/request_id.ts";
import type { RequestRecorder } from "../metrics/recorder.ts";
import { type Forwarded, type HeaderList, headerValue } from "./hop.ts";
import { errorReply } from "./errors.ts";
import type { Router } from "./router.ts";
import {
  type BodySource,
  type ClientGone,
  clientLeft,
  IDEMPOTENT_METHODS,
  streamSource,
  UpstreamError,
  type UpstreamReply,
  type UpstreamRequest,
  type UpstreamTransport,
} from "./transport.ts";

/**
 * Called when a server failed while proxying, for passive health detection; `at` (ms since the
 * epoch) is when it failed, given when the report travels (from a worker isolate).
 */
export type UpstreamFailureListener = (
  backend: string,
  server: string,
  error: UpstreamError,
  at?: number,
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
  /** Counts requests, attempts and latencies (absent: metrics off). */
  readonly recorder?: RequestRecorder;
  /** Gets one entry per request once its answer is delivered (absent: no access log). */
  readonly accessLog?: (entry: AccessEntry) => void;
  /** The request id header (lower case); absent: `x-request-id`. */
  readonly requestIdHeader?: string;
  /** Answers ACME HTTP-01 challenges (on plain HTTP only); absent: none. */
  readonly acmeChallenge?: ChallengeLookup;
  /** Where `redirect_https` hosts are sent (the TLS listener's port); absent: 443. */
  readonly httpsPort?: number;
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
  /** `HTTP/1.1` (default) or `HTTP/1.0`, for the access log. */
  readonly protocol?: string;
  /** Aborts when the client goes away. */
  readonly signal: AbortSignal;
  /** The same without an event listener per exchange (h1 listener); absent: `signal` only. */
  readonly gone?: ClientGone;
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
  readonly #recorder: RequestRecorder | undefined;
  readonly #accessLog: ((entry: AccessEntry) => void) | undefined;
  readonly #idHeader: string;
  readonly #acmeChallenge: ChallengeLookup | undefined;
  readonly #httpsPort: number;

  constructor(options: RequestPathOptions) {
    this.#acmeChallenge = options.acmeChallenge;
    this.#httpsPort = options.httpsPort ?? 443;
    this.#recorder = options.recorder;
    this.#accessLog = options.accessLog;
    this.#idHeader = options.requestIdHeader ?? "x-request-id";
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
   * reading the client's (small, buffered) body fails; the listener answers that itself. The
   * listener calls the reply's `delivered` (when set) once the answer went out.
   */
  async handle(request: ProxyRequest): Promise<UpstreamReply> {
    if (request.client.proto === "http") {
      // Before routing: the CA asks for names whatever the config routes, and the challenge
      // path is the one thing a redirect_https host still answers on plain HTTP.
      const target = request.target;
      const acme = this.#acmeChallenge;
      const challenge = target.startsWith(CHALLENGE_PREFIX);
      if (challenge && acme !== undefined) {
        const answer = await challengeResponse(target, acme);
        if (answer !== null) return await responseToReply(answer);
      }
      const host = request.authority;
      if (!challenge && host !== null && this.#router.redirectsHttps(host)) {
        return await responseToReply(httpsRedirect(host, target, this.#httpsPort));
      }
    }
    // The clock is read once before the first attempt and once after each (an op, ~0.4 µs):
    // what runs between without an await takes microseconds, and shares the readings.
    const started = performance.now();
    let now = started;
    const headers = request.headers;
    const given = clientRequestId(headers, this.#idHeader);
    const id = given ?? crypto.randomUUID();
    const authority = request.authority;
    const target = request.target;
    const destination = this.#router.resolve(authority, target);
    const pool = destination?.pool;
    const recorder = this.#recorder;
    let reply: UpstreamReply | undefined;
    let upstream: Upstream | undefined;
    let upstreamStatus = 0;
    let upstreamSeconds = -1;
    let attempts = 0;
    if (destination === undefined || pool === undefined) {
      reply = errorReply(
        "unknown-host",
        authority === null ? "request has no Host header" : `no backend for host "${authority}"`,
      );
    } else {
      const forwarded = withRequestId(
        forwardingOf(headers, authority ?? "", request.client, this.#trusted),
        given === null ? this.#idHeader : undefined,
        id,
      );
      // The client a balancer hashes on is the one forwarding names (a trusted proxy's client).
      const context = new ExchangeContext(headers, forwarded.realIp, target);
      upstream = pool.pick(context);
      if (upstream === undefined) {
        reply = errorReply("no-server", `no server available for backend "${pool.name}"`);
      } else {
        let body = request.body;
        if (
          body !== null && !(body instanceof Uint8Array) && request.bodyLength >= 0 &&
          request.bodyLength <= REPLAY_BUFFER_BYTES
        ) {
          body = await readWhole(body, request.bodyLength);
          now = performance.now();
        }
        const upstreamRequest: UpstreamRequest = {
          method: request.method,
          target: forwardTarget(target, destination.strip),
          headers,
          forwarded,
          body,
          bodyLength: request.bodyLength,
          upgrade: request.upgrade,
          rawChunked: request.rawChunked,
          signal: request.signal,
          gone: request.gone,
        };
        const transport = request.upgrade === undefined ? this.#transport : this.#upgradeTransport;
        let tried: Upstream[] | undefined;
        for (;; attempts++) {
          // The selector hears of every exchange: least_conn counts it in flight, ewma times it.
          pool.begin(upstream);
          const sent = now;
          try {
            reply = await transport.exchange(upstreamRequest, upstream, sent);
            now = performance.now();
            const elapsed = now - sent;
            pool.end(upstream, elapsed, true);
            upstreamStatus = reply.status;
            upstreamSeconds = elapsed / 1000;
            recorder?.upstreamResponse(pool, upstream, upstreamStatus, upstreamSeconds);
            const cookie = pool.sticky === undefined
              ? undefined
              : pool.stickyCookie(context, upstream, request.client.proto === "https");
            if (cookie !== undefined) reply.headers.push(["set-cookie", cookie]);
            break;
          } catch (err) {
            now = performance.now();
            pool.end(upstream, now - sent, false);
            const error = err instanceof UpstreamError
              ? err
              : new UpstreamError("broken", String(err), true, err);
            if (clientLeft(request)) {
              reply = errorReply("upstream-unreachable", "client went away");
              break;
            }
            recorder?.upstreamError(pool, upstream, error.kind);
            this.#onUpstreamFailure?.(pool.name, upstream.key, error);
            // Retries go through the same selector (and sticky cookie), never to a server tried.
            const next: Upstream | undefined =
              attempts < this.#retries && canRetry(request.method, error)
                ? pool.pick(context, tried = tried ?? [upstream])
                : undefined;
            if (next === undefined) {
              // The server's address stays inside: clients at the edge learn only what failed.
              reply = error.failure === "timeout"
                ? errorReply("upstream-timeout", "the upstream server did not answer in time")
                : errorReply(
                  "upstream-unreachable",
                  `the upstream server failed (${error.failure})`,
                );
              break;
            }
            recorder?.retry(pool);
            tried!.push(next);
            upstream = next;
          }
        }
      }
    }
    setHeader(reply.headers, this.#idHeader, id);
    recorder?.request(pool, request.method, reply.status, (now - started) / 1000);
    const accessLog = this.#accessLog;
    if (accessLog === undefined) return reply;
    const entry = entryOf(request, started, id, reply);
    entry.backend = pool?.name ?? null;
    entry.server = upstream?.key ?? null;
    if (upstreamStatus !== 0) entry.upstreamStatus = upstreamStatus;
    if (upstreamSeconds >= 0) entry.upstreamSeconds = upstreamSeconds;
    entry.retries = attempts;
    const delivered = reply.delivered;
    reply.delivered = () => {
      delivered?.();
      entry.seconds = (performance.now() - started) / 1000;
      accessLog(entry);
    };
    return reply;
  }
}

/** Sets `name` (lower case) in reply header pairs, replacing any the server sent. */
function setHeader(headers: [string, string][], name: string, value: string): void {
  for (let i = headers.length - 1; i >= 0; i--) {
    if (headers[i][0].length === name.length && headers[i][0].toLowerCase() === name) {
      headers.splice(i, 1);
    }
  }
  headers.push([name, value]);
}

/** The forwarding headers, plus the request id when the proxy made it. */
function withRequestId(forwarded: Forwarded, name: string | undefined, id: string): Forwarded {
  return name === undefined ? forwarded : { ...forwarded, requestId: { name, value: id } };
}

/** The access log entry of an exchange, with what the request and reply heads say. */
function entryOf(
  request: ProxyRequest,
  started: number,
  requestId: string,
  reply: UpstreamReply,
): Mutable<AccessEntry> {
  const headers = request.headers;
  const body = reply.body;
  return {
    time: performance.timeOrigin + started,
    requestId,
    client: request.client.address,
    method: request.method,
    host: request.authority,
    target: request.target,
    protocol: request.protocol ?? "HTTP/1.1",
    status: reply.status,
    bytesIn: request.bodyLength > 0 ? request.bodyLength : 0,
    bytesOut: reply.contentLength >= 0
      ? reply.contentLength
      : body instanceof Uint8Array
      ? body.length
      : null,
    seconds: 0,
    backend: null,
    server: null,
    upstreamStatus: null,
    upstreamSeconds: null,
    retries: 0,
    error: reply.headers.find(([name]) => name === "x-dynlb-error")?.[1] ?? null,
    referer: headerValue(headers, "referer"),
    userAgent: headerValue(headers, "user-agent"),
  };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

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
