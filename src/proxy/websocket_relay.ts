/**
 * WebSocket under the `serve` listener: `Deno.serve` hides the socket, so an upgrade cannot
 * become a byte tunnel there. Instead dynlb opens a WebSocket to the selected server and relays
 * message by message (`Deno.upgradeWebSocket` toward the client), passing the subprotocol and
 * close codes on. Other `Upgrade`s get a 501 under this listener; `h2c` is ignored (served as
 * HTTP/1.1, as a server may do with any upgrade it does not take).
 *
 * @module
 */
import type { RequestRecorder } from "../metrics/recorder.ts";
import { forwardTarget } from "../config/route.ts";
import { ExchangeContext } from "./context.ts";
import { proxyError } from "./errors.ts";
import { type ClientFacts, forwardingOf } from "./forwarding.ts";
import { serveTarget } from "./serve_target.ts";
import { connectionNamed, upstreamHeaders } from "./hop.ts";
import type { CidrSet } from "./cidr.ts";
import type { Router } from "./router.ts";
import type { TransportTimeouts } from "./transport.ts";

/** What a request asks to upgrade to. */
export type UpgradeKind =
  /** No upgrade (or `h2c`, which is ignored): an ordinary request. */
  | "none"
  | "websocket"
  /** Any other protocol: not available under the `serve` listener. */
  | "other";

/**
 * Whether `headers` ask for a protocol upgrade (`Upgrade` together with `Connection: upgrade`).
 *
 * @example
 * ```ts
 * upgradeOf(new Headers({ connection: "Upgrade", upgrade: "websocket" })); // "websocket"
 * ```
 */
export function upgradeOf(headers: Headers): UpgradeKind {
  const upgrade = headers.get("upgrade");
  if (upgrade === null) return "none";
  if (!connectionNamed(headers)?.has("upgrade")) return "none";
  const first = upgrade.split(",")[0].trim().toLowerCase();
  if (first === "websocket") return "websocket";
  if (first.startsWith("h2c")) return "none";
  return "other";
}

/** Handshake headers the relay's own WebSocket client writes (and so never copies). */
const HANDSHAKE: ReadonlySet<string> = new Set([
  "sec-websocket-key",
  "sec-websocket-version",
  "sec-websocket-protocol",
  // Neither side of the relay negotiates extensions: a client's offer must not reach the server.
  "sec-websocket-extensions",
]);

/**
 * Bytes a relay may hold for one side that does not read as fast as the other sends (Deno's
 * WebSocket API has no backpressure: reading cannot be paused).
 */
export const RELAY_BUFFER_BYTES = 32 * 1024 * 1024;

/** Close codes `WebSocket.close()` accepts (the rest are for endpoints to report, not send). */
function sendableCode(code: number): boolean {
  return code === 1000 || (code >= 3000 && code <= 4999);
}

/** The two sockets of one relay, and what to call once it is over. */
interface Pair {
  readonly client: WebSocket;
  readonly server: WebSocket;
  readonly ended: () => void;
}

/** What the relay needs from the listener. */
export interface RelayOptions {
  readonly router: Router;
  readonly timeouts: TransportTimeouts;
  readonly trustedProxies: CidrSet;
  /** Counts relays open (`dynlb_open_tunnels`). */
  readonly recorder?: RequestRecorder;
  /** The scheme of the listener (`https` on `--listen-tls`); `http` when absent. */
  readonly proto?: "http" | "https";
}

/**
 * Relays WebSocket connections for the `serve` listener and keeps track of the open ones for
 * shutdown.
 *
 * @example
 * ```ts
 * const relay = new WebSocketRelay({ router, timeouts, trustedProxies });
 * Deno.serve((request, info) =>
 *   upgradeOf(request.headers) === "websocket" ? relay.handle(request, info) : proxy(request, info)
 * );
 * ```
 */
export class WebSocketRelay {
  readonly #options: RelayOptions;
  readonly #client: Deno.HttpClient;
  readonly #open = new Set<Pair>();
  readonly #trusted: CidrSet;
  #drained: PromiseWithResolvers<void> | undefined;

  constructor(options: RelayOptions) {
    this.#options = options;
    this.#trusted = options.trustedProxies;
    // `allowHost`: the client's Host reaches the server, as for every other request.
    this.#client = Deno.createHttpClient({ allowHost: true });
  }

  /** WebSockets relayed right now. */
  get open(): number {
    return this.#open.size;
  }

  /**
   * Answers an upgrade request: connects to a server of the routed backend, then upgrades the
   * client with the subprotocol the server chose. A server that cannot be reached or does not
   * answer `101` gives a 502 (`Deno`'s WebSocket client does not expose the refusal).
   */
  async handle(request: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>): Promise<Response> {
    const routed = serveTarget(request, this.#options.proto ?? "http");
    if ("refused" in routed) return proxyError("bad-request", routed.refused);
    const { authority: host, target, headers: requestHeaders } = routed;
    const destination = this.#options.router.resolve(host, target);
    if (destination === undefined) {
      return proxyError(
        "unknown-host",
        host === null ? "request has no Host header" : `no backend for host "${host}"`,
      );
    }
    if (request.method !== "GET" || requestHeaders.get("sec-websocket-key") === null) {
      return proxyError("bad-request", "a WebSocket upgrade is a GET with Sec-WebSocket-Key");
    }
    const pool = destination.pool;
    const client: ClientFacts = {
      address: info.remoteAddr.hostname,
      proto: this.#options.proto ?? "http",
    };
    const forwarded = forwardingOf(requestHeaders, host ?? "", client, this.#trusted);
    const upstream = pool.pick(new ExchangeContext(requestHeaders, forwarded.realIp, target));
    if (upstream === undefined) {
      return proxyError("no-server", `no server available for backend "${pool.name}"`);
    }

    const headers = upstreamHeaders(requestHeaders, forwarded);
    for (const name of HANDSHAKE) headers.delete(name);
    const protocols = (requestHeaders.get("sec-websocket-protocol") ?? "")
      .split(",").map((p) => p.trim()).filter((p) => p !== "");
    const url = `ws://${upstream.key}${forwardTarget(target, destination.strip)}`;
    // The balancer counts the socket in flight for as long as it is open (least_conn).
    pool.begin(upstream);
    const started = performance.now();
    const server = new WebSocket(url, { protocols, headers, client: this.#client });
    server.binaryType = "arraybuffer";
    const opened = await this.#opened(server);
    if (opened !== "open") {
      pool.end(upstream, performance.now() - started, false);
      return opened === "timeout"
        ? proxyError("upstream-timeout", "the upstream server did not answer in time")
        : proxyError("upstream-unreachable", "the upstream server refused the WebSocket");
    }
    const handshakeMs = performance.now() - started;
    const ended = () => pool.end(upstream, handshakeMs, true);

    let upgraded;
    try {
      upgraded = Deno.upgradeWebSocket(request, {
        protocol: server.protocol === "" ? undefined : server.protocol,
        // Liveness is the two endpoints' business; dynlb relays their pings as it can.
        idleTimeout: 0,
      });
    } catch {
      server.close();
      ended();
      return proxyError("bad-request", "invalid WebSocket upgrade request");
    }
    this.#pair(upgraded.socket, server, ended);
    return upgraded.response;
  }

  /** Resolves once no relay is open (after the listener stopped accepting). */
  drained(): Promise<void> {
    if (this.#open.size === 0) return Promise.resolve();
    this.#drained ??= Promise.withResolvers<void>();
    return this.#drained.promise;
  }

  /** Closes every relay (1001 "going away" to both ends) and the upstream client. */
  close(): void {
    for (const { client, server } of this.#open) {
      closeQuietly(client, 1001, "dynlb is shutting down");
      closeQuietly(server, 1000, "dynlb is shutting down");
    }
    this.#client.close();
  }

  #opened(server: WebSocket): Promise<"open" | "failed" | "timeout"> {
    const { connectMs, responseMs } = this.#options.timeouts;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        closeQuietly(server, 1000, "");
        resolve("timeout");
      }, connectMs + responseMs);
      server.onopen = () => {
        clearTimeout(timer);
        resolve("open");
      };
      server.onclose = () => {
        clearTimeout(timer);
        resolve("failed");
      };
      // An error event is followed by a close event; nothing to add.
      server.onerror = (event) => event.preventDefault();
    });
  }

  #pair(client: WebSocket, server: WebSocket, ended: () => void): void {
    const pair = { client, server, ended };
    this.#open.add(pair);
    this.#options.recorder?.tunnel(1);
    client.binaryType = "arraybuffer";
    // The server may speak first, before the client's side has finished opening.
    let early: (string | ArrayBuffer)[] | undefined = [];
    client.onopen = () => {
      for (const data of early!) client.send(data);
      early = undefined;
      // The server left between its handshake and this one.
      if (server.readyState === WebSocket.CLOSED) closeQuietly(client, 1000, "");
    };
    // Neither side can be told to stop reading, so a receiver slower than its sender makes the
    // relay buffer: past the bound the relay ends rather than grow without limit.
    const overflow = () => {
      closeQuietly(client, 1011, "dynlb: relay buffer full");
      closeQuietly(server, 1000, "dynlb: relay buffer full");
    };
    server.onmessage = (event: MessageEvent<string | ArrayBuffer>) => {
      if (early !== undefined) early.push(event.data);
      else if (client.readyState === WebSocket.OPEN) {
        client.send(event.data);
        if (client.bufferedAmount > RELAY_BUFFER_BYTES) overflow();
      }
    };
    client.onmessage = (event: MessageEvent<string | ArrayBuffer>) => {
      if (server.readyState === WebSocket.OPEN) {
        server.send(event.data);
        if (server.bufferedAmount > RELAY_BUFFER_BYTES) overflow();
      }
    };
    client.onerror = (event) => event.preventDefault();
    server.onerror = (event) => event.preventDefault();
    // A close on one side closes the other with the same code and reason where the API allows
    // it: the server side of the relay may send any code; Deno's client only 1000 and 3000-4999.
    server.onclose = (event) => {
      this.#closed(pair);
      if (early !== undefined) {
        // Not open yet: close once it is, after what the server said first.
        client.onopen = () => {
          for (const data of early!) client.send(data);
          early = undefined;
          closeQuietly(client, event.code, event.reason);
        };
        return;
      }
      closeQuietly(client, event.code, event.reason);
    };
    client.onclose = (event) => {
      this.#closed(pair);
      closeQuietly(server, sendableCode(event.code) ? event.code : 1000, event.reason);
    };
  }

  #closed(pair: Pair): void {
    if (!this.#open.delete(pair)) return;
    this.#options.recorder?.tunnel(-1);
    pair.ended();
    if (this.#open.size === 0 && this.#drained !== undefined) {
      this.#drained.resolve();
      this.#drained = undefined;
    }
  }
}

/**
 * Closes `socket` with `code` and `reason` when it is not closed yet. 1005 (no code) and 1006
 * (abnormal) are never sent: they are reported locally only, so the close goes without a code.
 */
function closeQuietly(socket: WebSocket, code: number, reason: string): void {
  if (socket.readyState === WebSocket.CLOSING || socket.readyState === WebSocket.CLOSED) return;
  try {
    if (code === 1005 || code === 1006 || code === 1015) socket.close();
    else socket.close(code, reason);
  } catch {
    socket.close();
  }
}
