/**
 * The proxy listener, in the main isolate or in a worker: dynlb's own HTTP/1.1 server (`h1`, the
 * default) or `Deno.serve` (`serve`), both in front of the same request path. Everything it
 * needs arrives as plain data so a worker can build it from a message.
 *
 * @module
 */
import type { Address } from "../cli/options.ts";
import { formatHostPort } from "../address.ts";
import { log } from "../log.ts";
import { CidrSet } from "./cidr.ts";
import { proxyError } from "./errors.ts";
import { FetchTransport } from "./fetch_transport.ts";
import { type ClientTimeouts, H1Server } from "./h1/server.ts";
import { H1Transport } from "./h1/transport.ts";
import { replyToResponse } from "./reply.ts";
import { RequestPath, type UpstreamFailureListener } from "./request_path.ts";
import type { Router } from "./router.ts";
import type { TransportTimeouts, UpstreamTransport } from "./transport.ts";

/** Upstream clients to choose from with `--upstream-transport`. */
export type TransportName = "h1" | "fetch";

/** Client-side listeners to choose from with `--listener`. */
export type ListenerName = "h1" | "serve";

/** Settings of one proxy listener (structured-cloneable, for workers). */
export interface ProxySettings {
  readonly listen: Address;
  /** Share the port with other isolates (SO_REUSEPORT). */
  readonly reusePort: boolean;
  readonly listener: ListenerName;
  readonly transport: TransportName;
  readonly timeouts: TransportTimeouts;
  /** Client connection timeouts (h1 listener). */
  readonly client: ClientTimeouts;
  /** Client connections per process (h1 listener). */
  readonly maxConnections: number;
  /** The process-wide connection counter (a `SharedArrayBuffer` view) when several isolates listen. */
  readonly connectionCount?: Int32Array;
  readonly retries: number;
  /** `--trusted-proxies`: CIDR ranges (already validated). */
  readonly trustedProxies: readonly string[];
}

/** A running proxy listener. */
export interface ProxyServer {
  readonly addr: Deno.NetAddr;
  /** Stops accepting and resolves when requests in flight are done. */
  shutdown(): Promise<void>;
  /** Closes upstream connections (after `shutdown`). */
  close(): void;
}

/**
 * A listener could not be opened; the message says where and why.
 *
 * @example
 * ```ts
 * try {
 *   listen("admin", { hostname: "127.0.0.1", port: 9001 }, app.fetch);
 * } catch (err) {
 *   if (err instanceof ListenError) console.error(err.message);
 * }
 * ```
 */
export class ListenError extends Error {
  override name = "ListenError";
}

/**
 * Builds the transport `--upstream-transport` names.
 *
 * @example
 * ```ts
 * const transport = createTransport("fetch", { connectMs: 5000, responseMs: 60000 });
 * ```
 */
export function createTransport(
  name: TransportName,
  timeouts: TransportTimeouts,
): UpstreamTransport {
  switch (name) {
    case "fetch":
      return new FetchTransport(timeouts);
    case "h1":
      return new H1Transport(timeouts);
  }
}

/**
 * Starts a proxy listener routing with `router`.
 *
 * @example
 * ```ts
 * const server = serveProxy(new Router(), settings);
 * ```
 */
export function serveProxy(
  router: Router,
  settings: ProxySettings,
  onUpstreamFailure?: UpstreamFailureListener,
): ProxyServer {
  const transport = createTransport(settings.transport, settings.timeouts);
  const path = new RequestPath({
    router,
    transport,
    retries: settings.retries,
    onUpstreamFailure,
    trustedProxies: new CidrSet(settings.trustedProxies),
  });
  if (settings.listener === "serve") {
    const server = listen("proxy", settings.listen, serveHandler(path), settings.reusePort);
    return {
      addr: server.addr,
      shutdown: () => server.shutdown(),
      close: () => transport.close(),
    };
  }
  const listener = listenTcp("proxy", settings.listen, settings.reusePort);
  const server = new H1Server({
    path,
    timeouts: settings.client,
    maxConnections: settings.maxConnections,
    connectionCount: settings.connectionCount,
  });
  server.serve(listener, { proto: "http" });
  return {
    addr: listener.addr,
    shutdown: () => server.shutdown(),
    close: () => {
      server.close();
      transport.close();
    },
  };
}

/**
 * The `Deno.serve` handler in front of the request path.
 *
 * @example
 * ```ts
 * Deno.serve({ port: 8080 }, serveHandler(new RequestPath({ router, transport, retries: 2 })));
 * ```
 */
export function serveHandler(
  path: RequestPath,
  proto: "http" | "https" = "http",
): (request: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) => Promise<Response> {
  return async (request, info) => {
    const headers = request.headers;
    const length = headers.get("content-length");
    const reply = await path.handle({
      method: request.method,
      target: targetOf(request.url),
      authority: headers.get("host"),
      headers,
      body: request.body,
      bodyLength: length === null ? -1 : Number(length),
      client: { address: info.remoteAddr.hostname, proto },
      signal: request.signal,
    });
    return replyToResponse(reply);
  };
}

/**
 * Path and query exactly as the client sent them. `Deno.serve` keeps the raw request target in
 * `request.url` after `scheme://authority`, so slicing it avoids a `URL` object and any
 * normalisation of `..`, `%2F` or case.
 */
function targetOf(url: string): string {
  const slash = url.indexOf("/", url.indexOf("://") + 3);
  return slash === -1 ? "/" : url.slice(slash);
}

/**
 * A TCP listener on an address, with a start-up error that names the address and the cause.
 *
 * @example
 * ```ts
 * const listener = listenTcp("proxy", { hostname: "127.0.0.1", port: 0 });
 * ```
 */
export function listenTcp(what: string, address: Address, reusePort = false): Deno.TcpListener {
  try {
    return Deno.listen({ hostname: address.hostname, port: address.port, reusePort });
  } catch (err) {
    throw listenError(what, address, err);
  }
}

function listenError(what: string, address: Address, err: unknown): ListenError {
  const reason = err instanceof Deno.errors.AddrInUse
    ? "address already in use"
    : err instanceof Deno.errors.PermissionDenied
    ? "permission denied"
    : (err as Error).message;
  return new ListenError(
    `cannot listen on ${formatHostPort(address.hostname, address.port)} (${what}): ${reason}`,
  );
}

/**
 * `Deno.serve` on an address, with a start-up error that names the address and the cause.
 *
 * @example
 * ```ts
 * const server = listen("admin", { hostname: "127.0.0.1", port: 9001 }, app.fetch);
 * ```
 */
export function listen(
  what: string,
  address: Address,
  handler: Deno.ServeHandler<Deno.NetAddr>,
  reusePort = false,
): Deno.HttpServer<Deno.NetAddr> {
  try {
    return Deno.serve({
      hostname: address.hostname,
      port: address.port,
      reusePort,
      onListen: () => {},
      onError: (err) => {
        log("error", `${what} request failed`, { error: String(err) });
        return proxyError("internal", "internal error");
      },
    }, handler);
  } catch (err) {
    throw listenError(what, address, err);
  }
}
