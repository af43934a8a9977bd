/**
 * The proxy listeners, in the main isolate or in a worker: dynlb's own HTTP/1.1 server (`h1`, the
 * default) or `Deno.serve` (`serve`), plain and (with `--listen-tls`) HTTPS, all in front of the
 * same request path (`request_path.ts`). Everything it needs arrives as plain data so a worker
 * can build it from a message.
 *
 * @module
 */
import { formatHostPort } from "../address.ts";
import type { Address } from "../cli/options.ts";
import { log } from "../log.ts";
import type { ChallengeLookup } from "../acme/challenge.ts";
import type { ServedCertificate } from "../tls/certificate.ts";
import { listenTlsWithSni, TlsEndpoint, type TlsOpener, type TlsServing } from "../tls/endpoint.ts";
import type { CertificateIndex } from "../tls/index.ts";
import { CidrSet } from "./cidr.ts";
import { proxyProtocolPrelude } from "./proxy_prelude.ts";
import { proxyError } from "./errors.ts";
import { FetchTransport } from "./fetch_transport.ts";
import { type ClientTimeouts, H1Server } from "./h1/server.ts";
import { H1Transport } from "./h1/transport.ts";
import { replyToResponse } from "./reply.ts";
import { RequestPath, type UpstreamFailureListener } from "./request_path.ts";
import { serveTarget } from "./serve_target.ts";
import type { Observers, ObserveSettings } from "./observe.ts";
import { LISTENERS } from "../metrics/layout.ts";
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
  /** `--proxy-protocol`: trusted peers open plain-HTTP connections with a PROXY header (h1). */
  readonly proxyProtocol?: boolean;
  /** `--listen-tls`: the HTTPS listener. */
  readonly listenTls?: Address;
}

/** A running proxy listener. */
export interface ProxyServer {
  readonly addr: Deno.NetAddr;
  /** Where the HTTPS listener is, with `--listen-tls`. */
  readonly tlsAddr?: Deno.NetAddr;
  /**
   * Closes the listeners and resolves once no connection can be accepted any more; open
   * connections stay (the first step of `shutdown`, for several workers to take together).
   * Absent on the `serve` listener: `Deno.serve` cannot stop accepting without closing.
   */
  stopAccepting?(): Promise<void>;
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
   * Opens the listeners (throws {@link ListenError}), on `settings.listen` and
   * `settings.listenTls` unless told other addresses (a pool of workers resolves port 0 once
   * for all).
   */
  listen(address?: Address, reusePort?: boolean, tlsAddress?: Address): ProxyServer;
  /**
   * Puts a certificate set in force on the HTTPS listener (new handshakes); kept for it when it
   * is not open yet.
   */
  applyCertificates(certificates: readonly ServedCertificate[]): void;
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
  acmeChallenge?: ChallengeLookup,
): PreparedProxy {
  const transport = createTransport(settings.transport, settings.timeouts);
  observers?.watchPool(transport);
  const trustedProxies = new CidrSet(settings.trustedProxies);
  router.onSnapshot((snapshot) => transport.retain?.(serverKeys(snapshot)));
  const pathOptions = {
    router,
    transport,
    retries: settings.retries,
    onUpstreamFailure,
    trustedProxies,
    recorder: observers?.recorder,
    accessLog: observers?.accessLog,
    requestIdHeader: settings.requestIdHeader,
    acmeChallenge,
  };
  if (settings.listener === "h1") {
    return prepareH1(settings, transport, pathOptions, observers);
  }
  const relays: WebSocketRelay[] = [];
  /** The handler of one listener: the proxy path, WebSockets to the relay. */
  const handlerFor = (
    proto: "http" | "https",
    httpsPort?: number,
  ): Deno.ServeHandler<Deno.NetAddr> => {
    const proxy = serveHandler(new RequestPath({ ...pathOptions, httpsPort }), proto);
    const relay = new WebSocketRelay({
      router,
      timeouts: settings.timeouts,
      trustedProxies,
      proto,
      recorder: observers?.recorder,
    });
    relays.push(relay);
    return (request, info) => {
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
  };
  const close = () => {
    for (const relay of relays) relay.close();
    transport.close();
  };
  // Deno.serve closes a busy connection after its answer on shutdown but does not say so: an
  // answer that completes from then on tells the client.
  let draining = false;
  const finish = (response: Response) => draining ? withConnectionClose(response) : response;
  const closing =
    (handler: Deno.ServeHandler<Deno.NetAddr>): Deno.ServeHandler<Deno.NetAddr> =>
    (request, info) => {
      const response = handler(request, info);
      return response instanceof Promise ? response.then(finish) : finish(response);
    };
  let certificates: readonly ServedCertificate[] = [];
  let tls: TlsEndpoint | undefined;
  return {
    listen(address = settings.listen, reusePort = settings.reusePort, tlsAddress) {
      tlsAddress ??= settings.listenTls;
      if (tlsAddress !== undefined) {
        const httpsHandler = closing(handlerFor("https"));
        tls = openTls(tlsAddress, (index, at) => serveTls("https proxy", at, index, httpsHandler));
        tls.update(certificates);
      }
      const https = tls;
      let server;
      try {
        const handler = closing(handlerFor("http", https?.addr.port));
        server = listen("proxy", address, handler, reusePort);
      } catch (err) {
        void https?.shutdown();
        throw err;
      }
      return {
        addr: server.addr,
        tlsAddr: https?.addr,
        shutdown: async () => {
          draining = true;
          await Promise.all([server.shutdown(), https?.shutdown()]);
          await Promise.all(relays.map((relay) => relay.drained()));
        },
        close,
      };
    },
    applyCertificates(next) {
      certificates = next;
      tls?.update(next);
    },
    close,
  };
}

/**
 * The `h1` listener: one {@link H1Server} for the plain port and every generation of the TLS
 * port (each listener tells its scheme), so a drain covers them all.
 */
function prepareH1(
  settings: ProxySettings,
  transport: UpstreamTransport,
  pathOptions: ConstructorParameters<typeof RequestPath>[0],
  observers: Observers | undefined,
): PreparedProxy {
  // Only the h1 client can tunnel: with fetch, upgrade requests still go through one.
  const tunnels = transport instanceof H1Transport ? transport : new H1Transport(settings.timeouts);
  const closeTransports = () => {
    transport.close();
    if (tunnels !== transport) tunnels.close();
  };
  let certificates: readonly ServedCertificate[] = [];
  let tls: TlsEndpoint | undefined;
  return {
    listen(address = settings.listen, reusePort = settings.reusePort, tlsAddress) {
      tlsAddress ??= settings.listenTls;
      // The TLS port is bound first (a placeholder until certificates arrive): redirects need
      // its port, and its generations are served by the server made next.
      const later: { server?: H1Server } = {};
      if (tlsAddress !== undefined) {
        tls = openTls(tlsAddress, (index, at) => {
          const server = later.server!;
          const listener = listenTlsWithSni(index, at);
          server.serve(listener, { proto: "https" });
          return {
            addr: listener.addr,
            stopAccepting: () => server.stopServing(listener),
            shutdown: () => server.shutdown(),
          };
        });
      }
      const server = later.server = new H1Server({
        path: new RequestPath({
          ...pathOptions,
          upgradeTransport: tunnels,
          httpsPort: tls?.addr.port,
        }),
        timeouts: settings.client,
        maxConnections: settings.maxConnections,
        connectionCount: settings.connectionCount,
        onTunnel: observers?.recorder && ((delta) => observers.recorder!.tunnel(delta)),
        onConnection: observers?.recorder &&
          ((proto, delta) => observers.recorder!.connection(LISTENERS.indexOf(proto), delta)),
        prelude: settings.proxyProtocol
          ? proxyProtocolPrelude(new CidrSet(settings.trustedProxies), settings.client.headerMs)
          : undefined,
      });
      tls?.update(certificates);
      const https = tls;
      let listener: Deno.TcpListener;
      try {
        listener = listenTcp("proxy", address, reusePort);
      } catch (err) {
        void https?.shutdown();
        throw err;
      }
      server.serve(listener, { proto: "http" });
      return {
        addr: listener.addr,
        tlsAddr: https?.addr,
        // TLS generations are listeners of the same server: this stops them all.
        stopAccepting: () => server.stopAccepting(),
        shutdown: async () => {
          await Promise.all([server.shutdown(), https?.shutdown()]);
        },
        close: () => {
          server.close();
          closeTransports();
        },
      };
    },
    applyCertificates(next) {
      certificates = next;
      tls?.update(next);
    },
    close: closeTransports,
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
    const routed = serveTarget(request, proto);
    if ("refused" in routed) return proxyError("bad-request", routed.refused);
    const { authority, target, headers } = routed;
    const length = headers.get("content-length");
    const reply = await path.handle({
      method: request.method,
      target,
      authority,
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
    throw listenError(address, what, err);
  }
}

function openTls(address: Address, opener: TlsOpener): TlsEndpoint {
  try {
    return new TlsEndpoint(address, opener);
  } catch (err) {
    throw listenError(address, "https proxy", err);
  }
}

/**
 * The `serve` listener's HTTPS: `Deno.serve` with the first certificate of the set (it cannot
 * choose by SNI) and HTTP/2 or HTTP/1.1 by ALPN.
 */
function serveTls(
  what: string,
  address: Address,
  index: CertificateIndex,
  handler: Deno.ServeHandler<Deno.NetAddr>,
): TlsServing {
  const first = index.certificates[0];
  const server = Deno.serve({
    hostname: address.hostname,
    port: address.port,
    reusePort: true,
    cert: first.cert,
    key: first.key,
    onListen: () => {},
    onError: answerFailure(what),
  }, handler);
  let done: Promise<void> | undefined;
  const shutdown = () => done ??= server.shutdown();
  return { addr: server.addr, stopAccepting: () => void shutdown(), shutdown };
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
      onError: answerFailure(what),
    }, handler);
  } catch (err) {
    throw listenError(address, what, err);
  }
}

/**
 * The `onError` of a `Deno.serve` listener (`what`): a handler that threw is logged and the
 * client gets the proxy's 500, never Deno's default page.
 */
function answerFailure(what: string): (err: unknown) => Response {
  return (err) => {
    log("error", `${what} request failed`, { error: String(err) });
    return proxyError("internal", "internal error");
  };
}

/**
 * The start-up error for a listener that could not open: it names the address, the listener
 * (`what`) and the cause in words, and keeps the cause (`AddrInUse`, …) for callers to test.
 *
 * @example
 * ```ts
 * throw listenError({ hostname: "127.0.0.1", port: 8080 }, "proxy", err);
 * ```
 */
export function listenError(address: Address, what: string, err: unknown): ListenError {
  const reason = err instanceof Deno.errors.AddrInUse
    ? "address already in use"
    : err instanceof Deno.errors.PermissionDenied
    ? "permission denied"
    : err instanceof Error
    ? err.message
    : String(err);
  const where = formatHostPort(address.hostname, address.port);
  return new ListenError(`cannot listen on ${where} (${what}): ${reason}`, { cause: err });
}
