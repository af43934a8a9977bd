/**
 * The proxy listener: `Deno.serve` with the proxy handler, in the main isolate or in a worker.
 * Everything it needs arrives as plain data so a worker can build it from a message.
 *
 * @module
 */
import type { Address } from "../cli/options.ts";
import { log } from "../log.ts";
import { CidrSet } from "./cidr.ts";
import { proxyError } from "./errors.ts";
import { FetchTransport } from "./fetch_transport.ts";
import { H1Transport } from "./h1/transport.ts";
import { createProxyHandler, type UpstreamFailureListener } from "./handler.ts";
import type { Observers, ObserveSettings } from "./observe.ts";
import type { Router } from "./router.ts";
import type { Snapshot } from "../config/snapshot.ts";
import type { TransportTimeouts, UpstreamTransport } from "./transport.ts";
import { upgradeOf, WebSocketRelay } from "./websocket_relay.ts";

/** Upstream clients to choose from with `--upstream-transport`. */
export type TransportName = "h1" | "fetch";

/** Settings of one proxy listener (structured-cloneable, for workers). */
export interface ProxySettings extends ObserveSettings {
  readonly listen: Address;
  /** Share the port with other isolates (SO_REUSEPORT). */
  readonly reusePort: boolean;
  readonly transport: TransportName;
  readonly timeouts: TransportTimeouts;
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
  const trustedProxies = new CidrSet(settings.trustedProxies);
  const proxy = createProxyHandler({
    router,
    transport,
    retries: settings.retries,
    onUpstreamFailure,
    trustedProxies,
    recorder: observers?.recorder,
    accessLog: observers?.accessLog,
    requestIdHeader: settings.requestIdHeader,
  });
  router.onSnapshot((snapshot) => transport.retain?.(serverKeys(snapshot)));
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
  return {
    listen(address = settings.listen, reusePort = settings.reusePort) {
      const server = listen("proxy", address, handler, reusePort);
      return {
        addr: server.addr,
        shutdown: async () => {
          await server.shutdown();
          await relay.drained();
        },
        close,
      };
    },
    close,
  };
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
    const where = `${address.hostname}:${address.port}`;
    const reason = err instanceof Deno.errors.AddrInUse
      ? "address already in use"
      : err instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : (err as Error).message;
    throw new ListenError(`cannot listen on ${where} (${what}): ${reason}`);
  }
}
