/**
 * What the request path tells the metrics: the one small interface both listeners' shared
 * request path calls. {@link StripeRecorder} turns each call into a few adds on the isolate's
 * own stripe (see `stripe.ts`); a missing recorder (metrics off, for benchmarks) costs one
 * branch per call site.
 *
 * @module
 */
import type { UpstreamPool } from "../balance/pool.ts";
import type { Upstream } from "../balance/upstream.ts";
import type { Snapshot } from "../config/snapshot.ts";
import type { Config } from "../config/types.ts";
import { errorKindIndex, HEADER, methodIndex } from "./layout.ts";
import type { MetricIds } from "./registry.ts";
import type { StripeWriter } from "./stripe.ts";

/** Request-path events, counted without allocating. */
export interface RequestRecorder {
  /** A request was answered (`pool` undefined: no backend matched its host). */
  request(pool: UpstreamPool | undefined, method: string, status: number, seconds: number): void;
  /** A response head arrived from `upstream`, `seconds` after the attempt started. */
  upstreamResponse(pool: UpstreamPool, upstream: Upstream, status: number, seconds: number): void;
  /** An attempt on `upstream` failed (`kind`: connect, timeout, broken, malformed). */
  upstreamError(pool: UpstreamPool, upstream: Upstream, kind: string): void;
  /** Another server is tried for a request of `pool`. */
  retry(pool: UpstreamPool): void;
  /** A client connection opened (+1) or closed (-1) on listener `listener` (see `LISTENERS`). */
  connection(listener: number, delta: number): void;
  /** A tunnel (Upgrade, WebSocket) opened (+1) or closed (-1). */
  tunnel(delta: number): void;
}

interface PoolMeter {
  readonly id: number;
  readonly servers: Map<Upstream, number>;
}

/**
 * Records into one stripe; rebound to each new snapshot with the ids the admin isolate gave.
 *
 * @example
 * ```ts
 * const recorder = new StripeRecorder(new StripeWriter(stripe, registry.layout));
 * await router.applyConfig(config, 1, []);
 * recorder.bind(router.snapshot, config, registry.assign(config));
 * ```
 */
export class StripeRecorder implements RequestRecorder {
  readonly writer: StripeWriter;
  #pools = new Map<UpstreamPool, PoolMeter>();
  /** The previous snapshot's pools: requests that began on it still finish (and count). */
  #previous = new Map<UpstreamPool, PoolMeter>();

  constructor(writer: StripeWriter) {
    this.writer = writer;
  }

  /** Maps the pools of `snapshot` (compiled from `config`) to their ids. */
  bind(snapshot: Snapshot, config: Config, ids: MetricIds): void {
    this.writer.ensure(ids.backendCount, ids.serverCount);
    const pools = new Map<UpstreamPool, PoolMeter>();
    let next = 0;
    config.backends.forEach((b, i) => {
      const pool = snapshot.backends.get(b.backend_name);
      const servers = new Map<Upstream, number>();
      for (let j = 0; j < b.servers.length; j++, next++) {
        const upstream = pool?.servers[j];
        if (upstream !== undefined && !servers.has(upstream)) {
          servers.set(upstream, ids.servers[next]);
        }
      }
      if (pool !== undefined) pools.set(pool, { id: ids.backends[i], servers });
    });
    this.#previous = this.#pools;
    this.#pools = pools;
  }

  request(pool: UpstreamPool | undefined, method: string, status: number, seconds: number): void {
    const id = pool === undefined ? 0 : this.#meter(pool)?.id;
    if (id !== undefined) this.writer.request(id, methodIndex(method), status, seconds);
  }

  upstreamResponse(pool: UpstreamPool, upstream: Upstream, status: number, seconds: number): void {
    const meter = this.#meter(pool);
    const sid = meter?.servers.get(upstream);
    if (sid !== undefined) this.writer.upstreamResponse(meter!.id, sid, status, seconds);
  }

  upstreamError(pool: UpstreamPool, upstream: Upstream, kind: string): void {
    const sid = this.#meter(pool)?.servers.get(upstream);
    if (sid !== undefined) this.writer.upstreamError(sid, errorKindIndex(kind));
  }

  retry(pool: UpstreamPool): void {
    const id = this.#meter(pool)?.id;
    if (id !== undefined) this.writer.retry(id);
  }

  #meter(pool: UpstreamPool): PoolMeter | undefined {
    return this.#pools.get(pool) ?? this.#previous.get(pool);
  }

  connection(listener: number, delta: number): void {
    this.writer.add(HEADER.connections + listener, delta);
  }

  tunnel(delta: number): void {
    this.writer.add(HEADER.tunnels, delta);
  }
}
