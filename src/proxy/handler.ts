/**
 * The request path: Host and path → pool → server (the backend's selector, or its sticky
 * cookie) → transport, with bounded retries on other servers of the same backend (nginx's
 * `proxy_next_upstream error timeout`). An exchange ends, for the selector, when the response
 * head arrived or the attempt failed. It reads only the immutable
 * snapshot through the router; it never parses config, awaits a store or logs per request.
 *
 * @module
 */
import type { Upstream } from "../balance/upstream.ts";
import type { AccessEntry } from "../access/format.ts";
import { clientRequestId } from "../access/request_id.ts";
import { forwardTarget } from "../config/route.ts";
import type { RequestRecorder } from "../metrics/recorder.ts";
import { CidrSet } from "./cidr.ts";
import { ExchangeContext } from "./context.ts";
import { forwardingOf } from "./forwarding.ts";
import { proxyError } from "./errors.ts";
import type { Forwarded } from "./hop.ts";
import type { Router } from "./router.ts";
import { UpstreamError, type UpstreamRequest, type UpstreamTransport } from "./transport.ts";

/** Called when a server failed while proxying, for passive health detection. */
export type UpstreamFailureListener = (
  backend: string,
  server: string,
  error: UpstreamError,
) => void;

/** What the proxy handler needs. */
export interface ProxyOptions {
  readonly router: Router;
  readonly transport: UpstreamTransport;
  /** Further servers tried after a failed attempt (0: no retry). */
  readonly retries: number;
  /** Told about every failed attempt. */
  readonly onUpstreamFailure?: UpstreamFailureListener;
  /** Peers whose forwarding headers are believed (`--trusted-proxies`); absent: nobody. */
  readonly trustedProxies?: CidrSet;
  /** Counts requests, attempts and latencies (absent: metrics off). */
  readonly recorder?: RequestRecorder;
  /** Gets one entry per request once its response is delivered (absent: no access log). */
  readonly accessLog?: (entry: AccessEntry) => void;
  /** The request id header (lower case); absent: `x-request-id`. */
  readonly requestIdHeader?: string;
}

const NOBODY = new CidrSet([]);

/**
 * Request bodies up to this size, with a declared length, are read before connecting (nginx's
 * request buffering) so that a failed attempt can be replayed on another server. Larger or
 * chunked bodies stream through and are not replayed once sending began.
 */
const BUFFERED_BODY_BYTES = 64 * 1024;

/** Methods that can be sent again after the upstream may have seen them (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);

/**
 * Builds the `Deno.serve` handler of the proxy listener.
 *
 * @example
 * ```ts
 * const handler = createProxyHandler({ router, transport, retries: 2 });
 * Deno.serve({ port: 8080 }, handler);
 * ```
 */
export function createProxyHandler(
  options: ProxyOptions,
): (request: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) => Promise<Response> {
  const { router, transport, retries, onUpstreamFailure, recorder, accessLog } = options;
  const trusted = options.trustedProxies ?? NOBODY;
  const idHeader = options.requestIdHeader ?? "x-request-id";

  return async function proxy(request, info) {
    const started = performance.now();
    const given = clientRequestId(request.headers, idHeader);
    const id = given ?? crypto.randomUUID();
    const host = request.headers.get("host");
    const target = targetOf(request.url);
    const destination = router.resolve(host, target);
    const pool = destination?.pool;
    let response: Response | undefined;
    let upstream: Upstream | undefined;
    let upstreamStatus = 0;
    let upstreamSeconds = -1;
    let attempts = 0;
    if (destination === undefined || pool === undefined) {
      response = proxyError(
        "unknown-host",
        host === null ? "request has no Host header" : `no backend for host "${host}"`,
      );
    } else {
      const forwarded = withRequestId(
        forwardingOf(
          request.headers,
          host ?? "",
          { address: info.remoteAddr.hostname, proto: "http" },
          trusted,
        ),
        given === null ? idHeader : undefined,
        id,
      );
      // The client a balancer hashes on is the one forwarding names (a trusted proxy's client).
      const context = new ExchangeContext(request.headers, forwarded.realIp, target);
      upstream = pool.pick(context);
      if (upstream === undefined) {
        response = proxyError("no-server", `no server available for backend "${pool.name}"`);
      } else {
        const body = bodyOf(request);
        const upstreamRequest: UpstreamRequest = {
          method: request.method,
          target: forwardTarget(target, destination.strip),
          headers: request.headers,
          forwarded,
          body: body instanceof Promise ? await body : body,
          signal: request.signal,
        };
        let tried: Upstream[] | undefined;
        for (;; attempts++) {
          // The selector hears of every exchange: least_conn counts it in flight, ewma times it.
          pool.begin(upstream);
          const sent = performance.now();
          try {
            response = await transport.send(upstreamRequest, upstream);
            const elapsed = performance.now() - sent;
            pool.end(upstream, elapsed, true);
            upstreamStatus = response.status;
            upstreamSeconds = elapsed / 1000;
            recorder?.upstreamResponse(pool, upstream, upstreamStatus, upstreamSeconds);
            const cookie = pool.sticky === undefined
              ? undefined
              : pool.stickyCookie(context, upstream);
            if (cookie !== undefined) response.headers.append("set-cookie", cookie);
            break;
          } catch (err) {
            pool.end(upstream, performance.now() - sent, false);
            const error = err instanceof UpstreamError
              ? err
              : new UpstreamError("broken", String(err), true, err);
            if (request.signal.aborted) {
              response = proxyError("upstream-unreachable", "client went away");
              break;
            }
            recorder?.upstreamError(pool, upstream, error.failure);
            onUpstreamFailure?.(pool.name, upstream.key, error);
            // Retries go through the same selector (and sticky cookie), never to a server tried.
            const next: Upstream | undefined = attempts < retries && canRetry(request.method, error)
              ? pool.pick(context, tried = tried ?? [upstream])
              : undefined;
            if (next === undefined) {
              // The server's address stays inside: clients at the edge learn only what failed.
              response = error.failure === "timeout"
                ? proxyError("upstream-timeout", "the upstream server did not answer in time")
                : proxyError(
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
    response.headers.set(idHeader, id);
    recorder?.request(pool, request.method, response.status, (performance.now() - started) / 1000);
    if (accessLog !== undefined) {
      // Read the request now: it is closed once the response has been delivered.
      const entry = entryOf(request, info.remoteAddr.hostname, host, started, id, response);
      entry.backend = pool?.name ?? null;
      entry.server = upstream?.key ?? null;
      if (upstreamStatus !== 0) entry.upstreamStatus = upstreamStatus;
      if (upstreamSeconds >= 0) entry.upstreamSeconds = upstreamSeconds;
      entry.retries = attempts;
      const done = () => {
        entry.seconds = (performance.now() - started) / 1000;
        accessLog(entry);
      };
      info.completed.then(done, done);
    }
    return response;
  };
}

/** The forwarding headers, plus the request id when the proxy made it. */
function withRequestId(forwarded: Forwarded, name: string | undefined, id: string): Forwarded {
  return name === undefined ? forwarded : { ...forwarded, requestId: { name, value: id } };
}

/** The access log entry of an exchange, with what the request and response heads say. */
function entryOf(
  request: Request,
  client: string,
  host: string | null,
  started: number,
  requestId: string,
  response: Response,
): Mutable<AccessEntry> {
  const headers = request.headers;
  const sent = response.headers.get("content-length");
  return {
    time: performance.timeOrigin + started,
    requestId,
    client,
    method: request.method,
    host,
    target: targetOf(request.url),
    protocol: "HTTP/1.1",
    status: response.status,
    bytesIn: Number(headers.get("content-length") ?? 0) || 0,
    bytesOut: sent === null ? null : Number(sent),
    seconds: 0,
    backend: null,
    server: null,
    upstreamStatus: null,
    upstreamSeconds: null,
    retries: 0,
    error: response.headers.get("x-dynlb-error"),
    referer: headers.get("referer"),
    userAgent: headers.get("user-agent"),
  };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function bodyOf(
  request: Request,
): Promise<Uint8Array<ArrayBuffer>> | ReadableStream<Uint8Array> | null {
  const body = request.body;
  if (body === null) return null;
  const length = request.headers.get("content-length");
  if (length !== null && Number(length) <= BUFFERED_BODY_BYTES) return request.bytes();
  return body;
}

/**
 * A request may go to another server when it can be sent again whole, and either the first
 * server cannot have acted on it (no connection) or acting twice is harmless.
 */
function canRetry(method: string, error: UpstreamError): boolean {
  if (error.bodyConsumed) return false;
  return error.failure === "connect" || IDEMPOTENT.has(method);
}

/**
 * Path and query exactly as the client sent them. `Deno.serve` keeps the raw request target in
 * `request.url` after `scheme://authority`, so slicing it avoids a `URL` object and any
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
