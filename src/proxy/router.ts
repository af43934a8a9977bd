/**
 * The routing table the request path reads: the current immutable snapshot, swapped whole on a
 * config change. A request keeps the pool it looked up, so requests in flight finish on the
 * snapshot they started with.
 *
 * @module
 */
import { normalizeHost } from "../config/host.ts";
import { HostTable } from "../config/host_table.ts";
import type { Destination } from "../config/route.ts";
import {
  compileSnapshot,
  type DownServer,
  type HostRoute,
  type Snapshot,
} from "../config/snapshot.ts";
import type { Config } from "../config/types.ts";
import { type CounterLayout, CounterSlots } from "../balance/memory.ts";
import type { UpstreamPool } from "../balance/pool.ts";
import type { DataPlane } from "../control/data_plane.ts";

const EMPTY: Snapshot = {
  version: 0,
  hosts: new HostTable(),
  backends: new Map(),
  redirectHttps: false,
};

/**
 * Host and path → pool lookup over the current snapshot; also the in-isolate {@link DataPlane}.
 *
 * @example
 * ```ts
 * const router = new Router();
 * await router.applyConfig(config, 1, []);
 * router.resolve("WWW.test1.com:8080", "/api/users")?.pool.pick();
 * ```
 */
export class Router implements DataPlane {
  #snapshot: Snapshot = EMPTY;
  #counterSlots: CounterSlots | undefined;
  #onSnapshot: ((snapshot: Snapshot) => void) | undefined;

  /** The snapshot in force. */
  get snapshot(): Snapshot {
    return this.#snapshot;
  }

  /**
   * Where a request for `host` (a `Host` header value) and `target` (its raw path and query)
   * goes: the host's entry (exact, else the longest wildcard, else `default_backend`), then its
   * longest matching path prefix. `undefined`: no route (404).
   */
  resolve(host: string | null, target: string): Destination | undefined {
    const route = this.#hostRoute(host);
    if (route === undefined) return undefined;
    const paths = route.paths;
    if (paths === undefined) return route.destination;
    return paths.match(target) ?? route.destination;
  }

  /** Whether plain-HTTP requests for `host` (a `Host` header value) go to HTTPS instead. */
  redirectsHttps(host: string | null): boolean {
    return this.#snapshot.redirectHttps && this.#hostRoute(host)?.redirectHttps === true;
  }

  /**
   * The pool a host's `backend_name` (or `default_backend`) names, whatever the path; `undefined`
   * for a host that matches nothing.
   */
  route(host: string | null): UpstreamPool | undefined {
    return this.#hostRoute(host)?.destination.pool;
  }

  #hostRoute(host: string | null): HostRoute | undefined {
    const snapshot = this.#snapshot;
    if (host === null) return snapshot.fallback;
    const hosts = snapshot.hosts;
    // Most clients send an already-normal host: try it before normalising.
    return hosts.exact(host) ?? hosts.find(normalizeHost(host)) ?? snapshot.fallback;
  }

  /**
   * Compiles and installs a new snapshot; `counters` shares balancer counters with other
   * isolates (see `compileSnapshot`); without, the router places its own.
   */
  applyConfig(
    config: Config,
    version: number,
    down: readonly DownServer[],
    counters?: CounterLayout,
  ): Promise<void> {
    // In one isolate the router places its own counters (kept servers keep their counts).
    counters ??= (this.#counterSlots ??= new CounterSlots(false)).place(config);
    this.#snapshot = compileSnapshot(config, version, down, counters);
    this.#onSnapshot?.(this.#snapshot);
    return Promise.resolve();
  }

  /** Calls `listener` after each new snapshot is in force (the transport forgets old servers). */
  onSnapshot(listener: (snapshot: Snapshot) => void): void {
    this.#onSnapshot = listener;
  }

  /** Marks a server of a backend up or down in the current snapshot. */
  setHealth(backend: string, server: string, up: boolean): void {
    this.#snapshot.backends.get(backend)?.setHealth(server, up);
  }
}
