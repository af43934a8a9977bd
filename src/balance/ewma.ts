/**
 * `ewma`: power of two random choices over peak-EWMA latency × requests in flight, as Linkerd
 * and ingress-nginx balance (Finagle's `PeakEwma`). Two distinct servers are drawn at random and
 * the one with the lower cost wins:
 *
 *   cost = peak EWMA of response time × (in-flight + 1) / weight
 *
 * The EWMA jumps to any response time above it (the "peak") and otherwise decays towards the
 * observed times with a time constant of {@link DECAY_MS}; it also decays while a server is not
 * picked, so a server that was slow is tried again after a while. A failed exchange counts as a
 * {@link FAILURE_MS} response. In-flight counts are the backend's shared counters; latencies are
 * per isolate (each sees enough responses of its own). A pick is O(1).
 *
 * @module
 */
import type { RequestContext, Selector, SelectorInput } from "./selector.ts";
import type { Upstream } from "./upstream.ts";

/** Time constant of the decay (Linkerd's default). */
export const DECAY_MS = 10_000;
/** What a failed exchange counts as. */
export const FAILURE_MS = 1_000;

/**
 * Latency state beside each counters array: a `[cost, time of last update]` pair per slot. A
 * server's in-flight slot is stable across selector rebuilds (health changes) and across config
 * changes that keep it (see `memory.ts`), so its estimate is too.
 */
const latencies = new WeakMap<Int32Array, Float64Array>();

/**
 * Peak-EWMA with two random choices.
 *
 * @example
 * ```ts
 * const selector = new EwmaSelector({ servers, all: servers, memory });
 * const server = selector.pick(NO_CONTEXT)!;
 * selector.begin(server);
 * selector.end(server, 3.2, true);
 * ```
 */
export class EwmaSelector implements Selector {
  readonly #servers: readonly Upstream[];
  readonly #counters: Int32Array;
  /** Each configured server's slot: its in-flight count and its latency pair. */
  readonly #slotOf: Map<Upstream, number>;
  readonly #latency: Float64Array;
  readonly #random: () => number;

  constructor(input: SelectorInput, random: () => number = Math.random) {
    const { counters, inflight } = input.memory;
    this.#servers = input.servers;
    this.#counters = counters;
    this.#slotOf = new Map(input.all.map((s, i) => [s, inflight[i]]));
    let latency = latencies.get(counters);
    if (latency === undefined) {
      latencies.set(counters, latency = new Float64Array(2 * counters.length));
    }
    this.#latency = latency;
    this.#random = random;
  }

  pick(_context: RequestContext, exclude?: readonly Upstream[]): Upstream | undefined {
    let servers = this.#servers;
    if (exclude !== undefined && exclude.length > 0) {
      servers = servers.filter((s) => !exclude.includes(s)); // retry path only
    }
    const n = servers.length;
    if (n <= 1) return servers[0];
    const a = Math.floor(this.#random() * n);
    let b = Math.floor(this.#random() * (n - 1));
    if (b >= a) b++;
    const now = performance.now();
    const first = servers[a];
    const second = servers[b];
    return this.#cost(second, now) < this.#cost(first, now) ? second : first;
  }

  begin(server: Upstream): void {
    const slot = this.#slotOf.get(server);
    if (slot !== undefined) Atomics.add(this.#counters, slot, 1);
  }

  end(server: Upstream, ms: number, ok: boolean): void {
    const slot = this.#slotOf.get(server);
    if (slot === undefined) return;
    Atomics.sub(this.#counters, slot, 1);
    this.#observe(slot, ok ? ms : Math.max(ms, FAILURE_MS), performance.now());
  }

  /** The peak EWMA of `server` as of `now`, in ms. */
  latency(server: Upstream, now = performance.now()): number {
    const slot = this.#slotOf.get(server);
    return slot === undefined ? 0 : this.#decayed(slot, now);
  }

  #cost(server: Upstream, now: number): number {
    const index = this.#slotOf.get(server)!;
    const inflight = Atomics.load(this.#counters, index);
    // The small constant keeps servers never measured (cost 0) ordered by their load.
    return (this.#decayed(index, now) + 0.001) * (Math.max(0, inflight) + 1) / server.weight;
  }

  /** Finagle's `PeakEwma.get`: the cost decays towards 0 while nothing is observed. */
  #decayed(index: number, now: number): number {
    const latency = this.#latency;
    const cost = latency[2 * index];
    if (cost === 0) return 0;
    return cost * Math.exp(-Math.max(0, now - latency[2 * index + 1]) / DECAY_MS);
  }

  /** Finagle's `PeakEwma.observe`: a peak is taken at once, lower times blend in over time. */
  #observe(index: number, ms: number, now: number): void {
    const latency = this.#latency;
    const cost = latency[2 * index];
    const w = Math.exp(-Math.max(0, now - latency[2 * index + 1]) / DECAY_MS);
    const decayed = cost * w;
    latency[2 * index] = ms > decayed ? ms : decayed + ms * (1 - w);
    latency[2 * index + 1] = now;
  }
}
