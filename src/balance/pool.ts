/**
 * The servers of one backend with their health overlay, its balancer and its sticky cookie.
 * Picks never return a server marked down: a health change rebuilds the selector over the
 * servers still up (control-plane rate, not request rate), the same way for every algorithm.
 *
 * @module
 */
import { type BalancerSpec, createSelector } from "./balancer.ts";
import { type BackendMemory, layoutCounters } from "./memory.ts";
import { NO_CONTEXT, type RequestContext, type Selector } from "./selector.ts";
import { type StickyConfig, StickyTable } from "./sticky.ts";
import type { Upstream } from "./upstream.ts";

/** How a pool balances, beyond its servers. */
export interface PoolOptions extends BalancerSpec {
  /** Keys of servers down from the start. */
  readonly down?: Iterable<string>;
  /** The backend's counters (shared across isolates); local ones when absent. */
  readonly memory?: BackendMemory;
  /** Sticky cookie settings; none when absent. */
  readonly sticky?: StickyConfig;
}

/**
 * A backend's servers and the balancer over the ones that are up.
 *
 * @example
 * ```ts
 * const pool = new UpstreamPool("api", [upstreamOf("127.0.0.1", 9000, 1)]);
 * const server = pool.pick()!;
 * pool.begin(server);
 * // … the exchange …
 * pool.end(server, 4.2, true);
 * ```
 */
export class UpstreamPool {
  readonly name: string;
  readonly servers: readonly Upstream[];
  /** The sticky cookie table, when the backend has one. */
  readonly sticky: StickyTable | undefined;
  /** Keys of servers marked down; allocated on the first one (most pools never need it). */
  #down: Set<string> | undefined;
  #selector: Selector;
  #upCount = 0;
  readonly #spec: BalancerSpec;
  readonly #memory: BackendMemory;

  constructor(name: string, servers: readonly Upstream[], options: PoolOptions = {}) {
    this.name = name;
    this.servers = servers;
    this.#spec = { balancer: options.balancer, hash_on: options.hash_on };
    this.#memory = options.memory ?? layoutCounters({ backends: [{ servers }] })[0];
    this.sticky = options.sticky === undefined
      ? undefined
      : new StickyTable(name, servers, options.sticky);
    for (const key of options.down ?? []) {
      if (servers.some((s) => s.key === key)) (this.#down ??= new Set()).add(key);
    }
    this.#selector = this.#build();
  }

  /**
   * A server for the request among those up, never one of `exclude` (servers a retry already
   * tried): the one its sticky cookie names if that one is up, else the balancer's choice.
   * Whoever sends to it calls {@link begin} and then {@link end}.
   */
  pick(context: RequestContext = NO_CONTEXT, exclude?: readonly Upstream[]): Upstream | undefined {
    const sticky = this.sticky;
    if (sticky !== undefined) {
      const token = context.cookie(sticky.cookie);
      const server = token === null ? undefined : sticky.serverOf(token);
      if (
        server !== undefined && !this.isDown(server.key) &&
        (exclude === undefined || !exclude.includes(server))
      ) return server;
    }
    return this.#selector.pick(context, exclude);
  }

  /** An exchange with `server` begins. */
  begin(server: Upstream): void {
    this.#selector.begin(server);
  }

  /** The exchange with `server` ended after `ms` milliseconds; `ok` false when it failed. */
  end(server: Upstream, ms: number, ok: boolean): void {
    this.#selector.end(server, ms, ok);
  }

  /**
   * The `Set-Cookie` value to send with a response from `server`, when the backend is sticky and
   * the request did not already name that server; `secure` (the client came over HTTPS) marks
   * the cookie `Secure`.
   */
  stickyCookie(context: RequestContext, server: Upstream, secure = false): string | undefined {
    const sticky = this.sticky;
    if (sticky === undefined) return undefined;
    const token = context.cookie(sticky.cookie);
    return token !== null && sticky.serverOf(token) === server
      ? undefined
      : sticky.setCookie(server, secure);
  }

  /** Number of servers currently up. */
  get upCount(): number {
    return this.#upCount;
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
    if (changed) this.#selector = this.#build();
  }

  #build(): Selector {
    const down = this.#down;
    const up = down === undefined || down.size === 0
      ? this.servers
      : this.servers.filter((s) => !down.has(s.key));
    this.#upCount = up.length;
    return createSelector(this.#spec, { servers: up, all: this.servers, memory: this.#memory });
  }
}
