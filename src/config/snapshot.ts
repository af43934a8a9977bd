/**
 * Compiles a validated config into the immutable routing snapshot the request path reads:
 * host (exact or wildcard) → path prefixes → backend pool. The request path never sees the
 * config itself.
 *
 * @module
 */
import { type CounterLayout, layoutCounters } from "../balance/memory.ts";
import { UpstreamPool } from "../balance/pool.ts";
import { type Upstream, upstreamOf } from "../balance/upstream.ts";
import { normalizeHost } from "./host.ts";
import { HostTable } from "./host_table.ts";
import { normalizePrefix, PrefixTable } from "./prefix_table.ts";
import type { Destination } from "./route.ts";
import type { Config } from "./types.ts";

/** What one host entry routes to. */
export interface HostRoute {
  /** The host's `backend_name`, for paths no prefix matches. */
  readonly destination: Destination;
  /** The host's `paths`, when it has some. */
  readonly paths?: PrefixTable;
  /** `redirect_https`: plain-HTTP requests get a 308 to `https://`. */
  readonly redirectHttps?: boolean;
}

/** What the request path routes with. Replaced whole on every config change. */
export interface Snapshot {
  /** The config version it was compiled from. */
  readonly version: number;
  /** Normalised host or `*.` pattern → route; several hosts may share one pool. */
  readonly hosts: HostTable<HostRoute>;
  /** `default_backend`: where hosts matching nothing go; absent: they get 404. */
  readonly fallback?: HostRoute;
  /** backend_name → pool, for health updates. */
  readonly backends: ReadonlyMap<string, UpstreamPool>;
  /** Whether any host has `redirect_https` (plain requests skip the check otherwise). */
  readonly redirectHttps: boolean;
}

/** A server marked down at compile time: `backend_name` and the server's `addr:port` key. */
export interface DownServer {
  readonly backend: string;
  readonly server: string;
}

/**
 * Builds a snapshot; `down` lists servers whose health state is already down, so a new config
 * does not briefly send traffic to servers known dead. `counters` (placed by `CounterSlots`, in
 * shared memory) lets worker isolates share round-robin positions and requests in flight, and
 * successive snapshots share them for the servers they have in common.
 *
 * @example
 * ```ts
 * const snap = compileSnapshot(config, 1);
 * snap.hosts.find("www.test1.com")?.destination.pool.pick();
 * ```
 */
export function compileSnapshot(
  config: Config,
  version: number,
  down: readonly DownServer[] = [],
  counters?: CounterLayout,
): Snapshot {
  const downByBackend = new Map<string, string[]>();
  for (const d of down) {
    const list = downByBackend.get(d.backend);
    if (list) list.push(d.server);
    else downByBackend.set(d.backend, [d.server]);
  }
  const memory = layoutCounters(config, counters);
  const backends = new Map<string, UpstreamPool>();
  const destinations = new Map<string, Destination>();
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
    const pool = new UpstreamPool(b.backend_name, servers, {
      balancer: b.balancer,
      hash_on: b.hash_on,
      sticky: b.sticky,
      down: downByBackend.get(b.backend_name),
      memory: memory[index],
    });
    backends.set(b.backend_name, pool);
    destinations.set(b.backend_name, { pool, strip: 0 });
  });
  const hosts = new HostTable<HostRoute>();
  let redirectHttps = false;
  for (const h of config.hosts) {
    const destination = destinations.get(h.backend_name)!;
    const paths = h.paths === undefined || h.paths.length === 0 ? undefined : new PrefixTable(
      h.paths.map((p) => {
        const pool = backends.get(p.backend_name)!;
        const strip = p.strip_prefix ? normalizePrefix(p.prefix).length : 0;
        return [p.prefix, strip === 0 ? destinations.get(p.backend_name)! : { pool, strip }];
      }),
    );
    const route: HostRoute = paths === undefined ? { destination } : { destination, paths };
    if (h.redirect_https === true) redirectHttps = true;
    hosts.set(
      normalizeHost(h.host),
      h.redirect_https === true ? { ...route, redirectHttps: true } : route,
    );
  }
  const fallback = config.default_backend === undefined
    ? undefined
    : { destination: destinations.get(config.default_backend)! };
  return { version, hosts, fallback, backends, redirectHttps };
}
