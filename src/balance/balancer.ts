/**
 * Chooses a backend's {@link Selector} by the name in `backends[].balancer`.
 *
 * @module
 */
import { EwmaSelector } from "./ewma.ts";
import { HashSelector, parseHashOn } from "./hash.ts";
import { LeastConnSelector } from "./least_conn.ts";
import { RoundRobinSelector } from "./round_robin.ts";
import type { BalancerName, Selector, SelectorInput } from "./selector.ts";

/** A backend's balancing settings, as validated. */
export interface BalancerSpec {
  /** `round_robin` when absent. */
  readonly balancer?: BalancerName;
  /** The key of `hash` (see `parseHashOn`). */
  readonly hash_on?: string;
}

/**
 * Builds the selector `spec` names over `input`.
 *
 * @example
 * ```ts
 * const selector = createSelector({ balancer: "least_conn" }, { servers, all: servers, memory });
 * ```
 */
export function createSelector(spec: BalancerSpec, input: SelectorInput): Selector {
  switch (spec.balancer ?? "round_robin") {
    case "round_robin":
      return new RoundRobinSelector(input);
    case "least_conn":
      return new LeastConnSelector(input);
    case "ewma":
      return new EwmaSelector(input);
    case "hash": {
      // Validation refuses a bad or missing hash_on; client_ip is the safe reading of none.
      const on = parseHashOn(spec.hash_on ?? "client_ip") ?? { kind: "client_ip" };
      return new HashSelector(input, on);
    }
  }
}
