/**
 * The servers of one backend with their health overlay. Picks skip servers marked down; a
 * health change rebuilds the round-robin over the servers still up (control-plane rate, not
 * request rate), so a pick stays O(1).
 *
 * @module
 */
import { type SharedCursor, SmoothWeightedRoundRobin } from "./swrr.ts";
import type { Upstream } from "./upstream.ts";

/**
 * A backend's servers and the balancer over the ones that are up.
 *
 * @example
 * ```ts
 * const pool = new UpstreamPool("api", [upstreamOf("127.0.0.1", 9000, 1)]);
 * pool.pick()?.origin; // "http://127.0.0.1:9000"
 * ```
 */
export class UpstreamPool {
  readonly name: string;
  readonly servers: readonly Upstream[];
  /** Keys of servers marked down; allocated on the first one (most pools never need it). */
  #down: Set<string> | undefined;
  #balancer: SmoothWeightedRoundRobin<Upstream>;
  #cursor: SharedCursor | undefined;

  constructor(
    name: string,
    servers: readonly Upstream[],
    down: Iterable<string> = [],
    cursor?: SharedCursor,
  ) {
    this.name = name;
    this.servers = servers;
    this.#cursor = cursor;
    for (const key of down) {
      if (servers.some((s) => s.key === key)) (this.#down ??= new Set()).add(key);
    }
    this.#balancer = this.#build();
  }

  /** The next server in weighted round-robin order among those up, if any. */
  pick(): Upstream | undefined {
    return this.#balancer.next();
  }

  /**
   * Another server than those in `tried`, for a retry; `undefined` when every server that is up
   * was tried.
   */
  pickAnother(tried: readonly Upstream[]): Upstream | undefined {
    const items = this.#balancer.items;
    for (let i = 0; i < items.length; i++) {
      const next = this.#balancer.next();
      if (next !== undefined && !tried.includes(next)) return next;
    }
    // With skewed weights (10:1) a few picks may all land on tried servers: scan the rest
    // (retry path only, not every request).
    return items.find((s) => !tried.includes(s));
  }

  /** Number of servers currently up. */
  get upCount(): number {
    return this.#balancer.items.length;
  }

  /** Whether the server with `key` is currently marked down. */
  isDown(key: string): boolean {
    return this.#down?.has(key) ?? false;
  }

  /** Marks a server up or down; unknown keys are ignored. */
  setHealth(key: string, up: boolean): void {
    if (!this.servers.some((s) => s.key === key)) return;
    const down = this.#down ??= new Set();
    const changed = up ? down.delete(key) : !down.has(key);
    if (!up) down.add(key);
    if (changed) this.#balancer = this.#build();
  }

  #build(): SmoothWeightedRoundRobin<Upstream> {
    const down = this.#down;
    const up = down === undefined || down.size === 0
      ? this.servers
      : this.servers.filter((s) => !down.has(s.key));
    return new SmoothWeightedRoundRobin(up, this.#cursor);
  }
}
