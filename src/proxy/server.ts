/**
 * The proxy listener, in the main isolate or in a worker: dynlb's own HTTP/1.1 server (`h1`, the
 * default) or `Deno.serve` (`serve`), both in front of the same request path (`request_path.ts`).
 * Everything it needs arrives as plain data so a worker can build it from a message.
 *
 * @module
 */
import { formatHostPort } from "../address.ts";
import type { Address } from "../cli/options.ts";
import { log } from "../log.ts";
import { CidrSet } from "./cidr.ts";
import { proxyError } from "./errors.ts";
import { FetchTransport } from "./fetch_transport.ts";
import { type ClientTimeouts, H1Server } from "./h1/server.ts";
import { H1Transport } from "./h1/transport.ts";
import { replyToResponse } from "./reply.ts";
import { RequestPath, targetOf, type UpstreamFailureListener } from "./request_path.ts";
import type { Observers, ObserveSettings } from "./observe.ts";
import type { Router } from "./router.ts";
import type { Snapshot } from "../config/snapshot.ts";
import type { TransportTimeouts, UpstreamTransport } from "./transport.ts";
import { upgradeOf, WebSocketRelay } from "./websocket_relay.ts";

/** Upstream clients to choose from with `--upstream-transport`. */
export type TransportName = "h1" | "fetch";

/** Client-side listeners to choose from with `--listener`. */
export type ListenerName = "h1" | "serve";

/** Settings of one proxy listener (structured-cloneable, for workers). */
export interface ProxySettings extends ObserveSettings {
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
  /**
   * The process-wide connection counter (a `SharedArrayBuffer` view) when several isolates
   * listen; absent: this isolate counts alone.
   */
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

/** A proxy whose request path is built but whose listener is not open yet. */
export interface PreparedProxy {
  /**
   * Opens the listener (throws {@link ListenError}), on `settings.listen` unless told another
   * address (a pool of workers resolves port 0 once for all).
   */
  listen(address?: Address, reusePort?: boolean): ProxyServer;
  /** Closes upstream connections (when the listener never opened). */
  close(): void;
}

/**
 * Builds the request path routing with `router`; the listener opens on `listen()`, once the
 * router has the config in force (a listener that accepts earlier would answer 404 to every host).
 *
 * @example
 * ```ts
 * const proxy = prepareProxy(router, settings, undefined, observers);
 * await router.applyConfig(config, 1, []);
 * const server = proxy.listen();
 * ```
 */
export function prepareProxy(
  router: Router,
  settings: ProxySettings,
  onUpstreamFailure?: UpstreamFailureListener,
  observers?: Observers,
): PreparedProxy {
  const transport = createTransport(settings.transport, settings.timeouts);
  observers?.watchPool(transport);
  const observe = {
    recorder: observers?.recorder,
    accessLog: observers?.accessLog,
    requestIdHeader: settings.requestIdHeader,
  };
  const trustedProxies = new CidrSet(settings.trustedProxies);
  router.onSnapshot((snapshot) => transport.retain?.(serverKeys(snapshot)));
  if (settings.listener === "h1") {
    // Only the h1 client can tunnel: with fetch, upgrade requests still go through one.
    const tunnels = transport instanceof H1Transport
      ? transport
      : new H1Transport(settings.timeouts);
    const path = new RequestPath({
      router,
      transport,
      retries: settings.retries,
      onUpstreamFailure,
      trustedProxies,
      upgradeTransport: tunnels,
      ...observe,
    });
    const closeTransports = () => {
      transport.close();
      tunnels.close();
    };
    return {
      listen(address = settings.listen, reusePort = settings.reusePort) {
        const listener = listenTcp("proxy", address, reusePort);
        const server = new H1Server({
          path,
          timeouts: settings.client,
          maxConnections: settings.maxConnections,
          connectionCount: settings.connectionCount,
          onTunnel: observers?.recorder && ((delta) => observers.recorder!.tunnel(delta)),
        });
        server.serve(listener, { proto: "http" });
        return {
          addr: listener.addr,
          shutdown: () => server.shutdown(),
          close: () => {
            server.close();
            closeTransports();
          },
        };
      },
      close: closeTransports,
    };
  }
  const path = new RequestPath({
    router,
    transport,
    retries: settings.retries,
    onUpstreamFailure,
    trustedProxies,
    ...observe,
  });
  const proxy = serveHandler(path);
  const relay = new WebSocketRelay({
    router,
    timeouts: settings.timeouts,
    trustedProxies,
    recorder: observers?.recorder,
  });
  const handler: Deno.ServeHandler<Deno.NetAddr> = (request, info) => {
    switch (upgradeOf(request.headers)) {
      case "none":
        return proxy(request, info);
      case "websocket":
        return relay.handle(request, info);
      case "other":
        return proxyError(
          "upgrade-not-supported",
          "this listener relays WebSocket upgrades only",
        );
    }
  };
  const close = () => {
    relay.close();
    transport.close();
  };
  // Deno.serve closes a busy connection after its answer on shutdown but does not say so: an
  // answer that completes from then on tells the client.
  let draining = false;
  const finish = (response: Response) => draining ? withConnectionClose(response) : response;
  const closing: Deno.ServeHandler<Deno.NetAddr> = (request, info) => {
    const response = handler(request, info);
    return response instanceof Promise ? response.then(finish) : finish(response);
  };
  return {
    listen(address = settings.listen, reusePort = settings.reusePort) {
      const server = listen("proxy", address, closing, reusePort);
      return {
        addr: server.addr,
        shutdown: async () => {
          draining = true;
          await server.shutdown();
          await relay.drained();
        },
        close,
      };
    },
    close,
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
    const delivered = reply.delivered;
    if (delivered !== undefined) info.completed.then(delivered, delivered);
    return replyToResponse(reply);
  };
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
  const where = formatHostPort(address.hostname, address.port);
  return new ListenError(`cannot listen on ${where} (${what}): ${reason}`, { cause: err });
}

/** `response` with `Connection: close` (a copy when its headers are immutable, as fetch's are). */
function withConnectionClose(response: Response): Response {
  if (response.status === 101) return response;
  try {
    response.headers.set("connection", "close");
    return response;
  } catch {
    const copy = new Response(response.body, response);
    copy.headers.set("connection", "close");
    return copy;
  }
}

/** The `addr:port` of every server in a snapshot. */
function serverKeys(snapshot: Snapshot): Set<string> {
  const keys = new Set<string>();
  for (const pool of snapshot.backends.values()) {
    for (const server of pool.servers) keys.add(server.key);
  }
  return keys;
}

/**
 * Starts a proxy listener routing with `router` at once.
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
  observers?: Observers,
): ProxyServer {
  return prepareProxy(router, settings, onUpstreamFailure, observers).listen();
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
