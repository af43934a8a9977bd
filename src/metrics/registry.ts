/**
 * The admin isolate's side of the request metrics: it gives backends and servers stable ids,
 * hands every proxy isolate a stripe of shared memory (see `stripe.ts`) and sums the stripes
 * when `/metrics` or the dashboard asks.
 *
 * Ids are never reused for another name: a backend removed and added again continues its
 * counters, and a renamed one starts from zero, as Prometheus expects of a counter.
 *
 * @module
 */
import { upstreamOf } from "../balance/upstream.ts";
import type { Config } from "../config/types.ts";
import { BlockLayout, HEADER } from "./layout.ts";
import { createStripe, type StripeBuffers, StripeView } from "./stripe.ts";

/**
 * The ids of one config's backends and servers, in config order (servers of backend `i`
 * follow those of backend `i - 1`), and the id space a stripe must hold.
 */
export interface MetricIds {
  readonly backends: readonly number[];
  readonly servers: readonly number[];
  /** One more than the largest backend id. */
  readonly backendCount: number;
  /** One more than the largest server id. */
  readonly serverCount: number;
}

/** One backend of the running config as the metrics see it. */
export interface MeteredBackend {
  readonly name: string;
  readonly id: number;
  readonly servers: readonly MeteredServer[];
}

/** One server of one backend. */
export interface MeteredServer {
  /** The `addr:port` key. */
  readonly server: string;
  readonly id: number;
}

/**
 * Ids, stripes and sums.
 *
 * @example
 * ```ts
 * const registry = new MetricsRegistry(DEFAULT_BUCKETS);
 * const stripe = registry.newStripe();
 * const ids = registry.assign(config);
 * ```
 */
export class MetricsRegistry {
  readonly layout: BlockLayout;
  /** Backend id 0 is the requests that matched no host. */
  #backendIds = new Map<string, number>([["", 0]]);
  #serverIds = new Map<string, number>();
  #stripes: StripeView[] = [];
  #current: MeteredBackend[] = [];

  constructor(buckets: readonly number[]) {
    this.layout = new BlockLayout(buckets);
  }

  /** Allocates the stripe of one more isolate; its figures are summed from now on. */
  newStripe(): StripeBuffers {
    const buffers = createStripe();
    this.#stripes.push(new StripeView(buffers));
    return buffers;
  }

  /** Numbers the backends and servers of `config` (the running config from now on). */
  assign(config: Config): MetricIds {
    const backends: number[] = [];
    const servers: number[] = [];
    const current: MeteredBackend[] = [];
    for (const b of config.backends) {
      const name = b.backend_name;
      let id = this.#backendIds.get(name);
      if (id === undefined) this.#backendIds.set(name, id = this.#backendIds.size);
      backends.push(id);
      const metered: MeteredServer[] = [];
      const seen = new Set<number>();
      for (const s of b.servers) {
        const server = upstreamOf(s.addr, s.port, s.weight).key;
        const key = `${name}\n${server}`;
        let sid = this.#serverIds.get(key);
        if (sid === undefined) this.#serverIds.set(key, sid = this.#serverIds.size);
        servers.push(sid);
        if (!seen.has(sid)) metered.push({ server, id: sid });
        seen.add(sid);
      }
      current.push({ name, id, servers: metered });
    }
    this.#current = current;
    return {
      backends,
      servers,
      backendCount: this.#backendIds.size,
      serverCount: this.#serverIds.size,
    };
  }

  /** The running config's backends and servers with their ids. */
  get backends(): readonly MeteredBackend[] {
    return this.#current;
  }

  /** A header slot (see `HEADER`) summed over every isolate. */
  header(slot: number): number {
    let sum = 0;
    for (const s of this.#stripes) sum += s.header[slot];
    return sum;
  }

  /** Open connections per listener index, summed. */
  connections(listener: number): number {
    return this.header(HEADER.connections + listener);
  }

  /**
   * Adds `count` slots of backend `id`'s block from `offset` on, over every isolate, into
   * `out` (which is returned).
   */
  sumBackend(id: number, offset: number, out: Float64Array): Float64Array {
    return sumBlock(this.#stripes, "backends", id * this.layout.backendSize + offset, out);
  }

  /** The same for server `id`'s block. */
  sumServer(id: number, offset: number, out: Float64Array): Float64Array {
    return sumBlock(this.#stripes, "servers", id * this.layout.serverSize + offset, out);
  }

  /** Backend `id`'s (method·1000 + status) → count, over every isolate. */
  backendCodes(id: number, into = new Map<number, number>()): Map<number, number> {
    const l = this.layout;
    return sumTable(
      this.#stripes,
      "backends",
      id * l.backendSize + l.backendCodes,
      l.backendSize - l.backendCodes,
      into,
    );
  }

  /** Server `id`'s status → count, over every isolate. */
  serverCodes(id: number, into = new Map<number, number>()): Map<number, number> {
    const l = this.layout;
    return sumTable(
      this.#stripes,
      "servers",
      id * l.serverSize + l.serverCodes,
      l.serverSize - l.serverCodes,
      into,
    );
  }
}

function sumBlock(
  stripes: readonly StripeView[],
  which: "backends" | "servers",
  start: number,
  out: Float64Array,
): Float64Array {
  out.fill(0);
  const n = out.length;
  for (const stripe of stripes) {
    const f = stripe[which];
    if (start + n > f.length) continue;
    for (let i = 0; i < n; i++) out[i] += f[start + i];
  }
  return out;
}

function sumTable(
  stripes: readonly StripeView[],
  which: "backends" | "servers",
  start: number,
  size: number,
  into: Map<number, number>,
): Map<number, number> {
  for (const stripe of stripes) {
    const f = stripe[which];
    if (start + size > f.length) continue;
    for (let i = start; i < start + size; i += 2) {
      const key = f[i];
      if (key === 0) continue;
      into.set(key, (into.get(key) ?? 0) + f[i + 1]);
    }
  }
  return into;
}
