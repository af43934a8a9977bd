/**
 * Compiles a validated config into the immutable routing snapshot the request path reads:
 * normalised host → backend pool. The request path never sees the config itself.
 *
 * @module
 */
import { UpstreamPool } from "../balance/pool.ts";
import { type Upstream, upstreamOf } from "../balance/upstream.ts";
import { normalizeHost } from "./host.ts";
import type { Config } from "./types.ts";

/** What the request path routes with. Replaced whole on every config change. */
export interface Snapshot {
  /** The config version it was compiled from. */
  readonly version: number;
  /** Normalised host → pool; several hosts may share one pool. */
  readonly hosts: ReadonlyMap<string, UpstreamPool>;
  /** backend_name → pool, for health updates. */
  readonly backends: ReadonlyMap<string, UpstreamPool>;
  /** Normalised hosts whose plain-HTTP requests are redirected to HTTPS. */
  readonly redirectHttps: ReadonlySet<string>;
}

/** A server marked down at compile time: `backend_name` and the server's `addr:port` key. */
export interface DownServer {
  readonly backend: string;
  readonly server: string;
}

/**
 * Builds a snapshot; `down` lists servers whose health state is already down, so a new config
 * does not briefly send traffic to servers known dead. `cursors` (one slot per backend, in
 * shared memory) lets worker isolates share each backend's round-robin position.
 *
 * @example
 * ```ts
 * const snap = compileSnapshot(config, 1);
 * snap.hosts.get("www.test1.com")?.pick();
 * ```
 */
export function compileSnapshot(
  config: Config,
  version: number,
  down: readonly DownServer[] = [],
  cursors?: Uint32Array,
): Snapshot {
  const downByBackend = new Map<string, string[]>();
  for (const d of down) {
    const list = downByBackend.get(d.backend);
    if (list) list.push(d.server);
    else downByBackend.set(d.backend, [d.server]);
  }
  const backends = new Map<string, UpstreamPool>();
  const upstreams = new Map<string, Upstream>();
  config.backends.forEach((b, index) => {
    const servers = b.servers.map((s) => {
      // One record per distinct server: large configs list the same servers many times.
      const id = `${s.addr}\n${s.port}\n${s.weight}`;
      let upstream = upstreams.get(id);
      if (upstream === undefined) {
        upstreams.set(id, upstream = upstreamOf(s.addr, s.port, s.weight));
      }
      return upstream;
    });
    const cursor = cursors === undefined ? undefined : { array: cursors, index };
    backends.set(
      b.backend_name,
      new UpstreamPool(b.backend_name, servers, downByBackend.get(b.backend_name), cursor),
    );
  });
  const hosts = new Map<string, UpstreamPool>();
  const redirectHttps = new Set<string>();
  for (const h of config.hosts) {
    hosts.set(normalizeHost(h.host), backends.get(h.backend_name)!);
    if (h.redirect_https === true) redirectHttps.add(normalizeHost(h.host));
  }
  return { version, hosts, backends, redirectHttps };
}
