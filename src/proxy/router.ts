/**
 * The routing table the request path reads: the current immutable snapshot, swapped whole on a
 * config change. A request keeps the pool it looked up, so requests in flight finish on the
 * snapshot they started with.
 *
 * @module
 */
import { normalizeHost } from "../config/host.ts";
import { compileSnapshot, type DownServer, type Snapshot } from "../config/snapshot.ts";
import type { Config } from "../config/types.ts";
import type { UpstreamPool } from "../balance/pool.ts";
import type { DataPlane } from "../control/data_plane.ts";

const EMPTY: Snapshot = {
  version: 0,
  hosts: new Map(),
  backends: new Map(),
  redirectHttps: new Set(),
};

/**
 * Host → pool lookup over the current snapshot; also the in-isolate {@link DataPlane}.
 *
 * @example
 * ```ts
 * const router = new Router();
 * await router.applyConfig(config, 1, []);
 * router.route("WWW.test1.com:8080")?.pick();
 * ```
 */
export class Router implements DataPlane {
  #snapshot: Snapshot = EMPTY;

  /** The snapshot in force. */
  get snapshot(): Snapshot {
    return this.#snapshot;
  }

  /** The pool serving a `Host` header value, or `undefined` for an unknown or missing host. */
  route(host: string | null): UpstreamPool | undefined {
    if (host === null) return undefined;
    const hosts = this.#snapshot.hosts;
    // Most clients send an already-normal host: try it before normalising.
    return hosts.get(host) ?? hosts.get(normalizeHost(host));
  }

  /** Whether plain-HTTP requests for `host` (a `Host` header value) go to HTTPS instead. */
  redirectsHttps(host: string): boolean {
    const redirects = this.#snapshot.redirectHttps;
    return redirects.size > 0 && (redirects.has(host) || redirects.has(normalizeHost(host)));
  }

  /**
   * Compiles and installs a new snapshot; `cursors` shares round-robin positions with other
   * isolates (see `compileSnapshot`).
   */
  applyConfig(
    config: Config,
    version: number,
    down: readonly DownServer[],
    cursors?: Uint32Array,
  ): Promise<void> {
    this.#snapshot = compileSnapshot(config, version, down, cursors);
    return Promise.resolve();
  }

  /** Marks a server of a backend up or down in the current snapshot. */
  setHealth(backend: string, server: string, up: boolean): void {
    this.#snapshot.backends.get(backend)?.setHealth(server, up);
  }
}
