/**
 * `least_conn`: the server with the fewest requests in flight relative to its weight (nginx's
 * `least_conn`, HAProxy's `leastconn`); ties go round-robin. In-flight counts live in the
 * backend's counters (shared across worker isolates), so every isolate sees every request.
 *
 * A pick scans the servers up once (nginx does the same): O(servers of the backend), nothing
 * allocated.
 *
 * @module
 */
import type { BackendMemory } from "./memory.ts";
import type { RequestContext, Selector, SelectorInput } from "./selector.ts";
import { SmoothWeightedRoundRobin } from "./swrr.ts";
import type { Upstream } from "./upstream.ts";

/** A server up, with where its count lives. */
interface Slot {
  readonly server: Upstream;
  readonly weight: number;
  /** Index of its in-flight count in the counters array. */
  readonly count: number;
  /** Its position among the servers up (where a scan starts). */
  readonly at: number;
}

/**
 * Weighted least-connections.
 *
 * @example
 * ```ts
 * const selector = new LeastConnSelector({ servers, all: servers, memory });
 * const server = selector.pick(NO_CONTEXT)!;
 * selector.begin(server);
 * // … the exchange …
 * selector.end(server, 12, true);
 * ```
 */
export class LeastConnSelector implements Selector {
  readonly #slots: readonly Slot[];
  readonly #counters: Int32Array;
  /** Count index of every configured server (also those down: their exchanges still end). */
  readonly #countOf: Map<Upstream, number>;
  /** Where each scan starts: weighted round-robin, so ties follow the weights. */
  readonly #start: SmoothWeightedRoundRobin<Slot>;

  constructor(input: SelectorInput) {
    const memory: BackendMemory = input.memory;
    this.#counters = memory.counters;
    this.#countOf = new Map(input.all.map((s, i) => [s, memory.inflight[i]]));
    this.#slots = input.servers.map((server, at) => ({
      server,
      weight: server.weight,
      count: this.#countOf.get(server)!,
      at,
    }));
    this.#start = new SmoothWeightedRoundRobin(this.#slots, {
      array: memory.counters,
      index: memory.cursor,
    });
  }

  pick(_context: RequestContext, exclude?: readonly Upstream[]): Upstream | undefined {
    const slots = this.#slots;
    const n = slots.length;
    if (n === 0) return undefined;
    const counters = this.#counters;
    const first = this.#start.next()!.at;
    let best: Slot | undefined;
    let bestCount = 0;
    for (let k = 0; k < n; k++) {
      const slot = slots[first + k < n ? first + k : first + k - n];
      if (exclude !== undefined && exclude.includes(slot.server)) continue;
      const count = Atomics.load(counters, slot.count);
      // count/weight < bestCount/bestWeight, without division; strict, so ties keep the first.
      if (best === undefined || count * best.weight < bestCount * slot.weight) {
        best = slot;
        bestCount = count;
      }
    }
    return best?.server;
  }

  begin(server: Upstream): void {
    const index = this.#countOf.get(server);
    if (index !== undefined) Atomics.add(this.#counters, index, 1);
  }

  end(server: Upstream, _ms: number, _ok: boolean): void {
    const index = this.#countOf.get(server);
    if (index !== undefined) Atomics.sub(this.#counters, index, 1);
  }
}
