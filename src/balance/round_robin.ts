/**
 * `round_robin` (the default): nginx's smooth weighted round-robin over the servers up, its
 * position shared across worker isolates (see `swrr.ts` and `memory.ts`).
 *
 * @module
 */
import type { RequestContext, Selector, SelectorInput } from "./selector.ts";
import { SmoothWeightedRoundRobin } from "./swrr.ts";
import type { Upstream } from "./upstream.ts";

/**
 * Smooth weighted round-robin as a {@link Selector}; the request is not looked at.
 *
 * @example
 * ```ts
 * const all = [upstreamOf("127.0.0.1", 9000, 2), upstreamOf("127.0.0.1", 9001, 1)];
 * const rr = new RoundRobinSelector({ servers: all, all, memory: layoutCounters({ backends: [{ servers: all }] })[0] });
 * rr.pick(NO_CONTEXT)?.port; // 9000
 * ```
 */
export class RoundRobinSelector implements Selector {
  readonly #rr: SmoothWeightedRoundRobin<Upstream>;

  constructor(input: SelectorInput) {
    const { counters, cursor } = input.memory;
    this.#rr = new SmoothWeightedRoundRobin(input.servers, { array: counters, index: cursor });
  }

  pick(_context: RequestContext, exclude?: readonly Upstream[]): Upstream | undefined {
    const rr = this.#rr;
    if (exclude === undefined || exclude.length === 0) return rr.next();
    const items = rr.items;
    for (let i = 0; i < items.length; i++) {
      const next = rr.next();
      if (next !== undefined && !exclude.includes(next)) return next;
    }
    // With skewed weights (10:1) a few picks may all land on tried servers: scan the rest
    // (retry path only, not every request).
    return items.find((s) => !exclude.includes(s));
  }

  begin(_server: Upstream): void {}

  end(_server: Upstream, _ms: number, _ok: boolean): void {}
}
