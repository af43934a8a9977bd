/**
 * The contract between a backend's pool and its balancing algorithm (Pingora's `selection/`):
 * a {@link Selector} is built from the backend's servers and their weights, picks a server for a
 * request from a cheap {@link RequestContext}, and is told when each exchange it took part in
 * began and ended. One file per algorithm implements it (`round_robin.ts`, `least_conn.ts`,
 * `ewma.ts`, `hash.ts`); {@link createSelector} chooses by name.
 *
 * Health is the pool's business and the same for every algorithm: the pool rebuilds the
 * selector with the servers that are up whenever that set changes (control-plane rate).
 *
 * @module
 */
import { TCHAR } from "../proxy/h1/fields.ts";
import type { Upstream } from "./upstream.ts";
import type { BackendMemory } from "./memory.ts";

/** The balancer names `backends[].balancer` accepts. */
export const BALANCERS = ["round_robin", "least_conn", "ewma", "hash"] as const;

/** One of {@link BALANCERS}. */
export type BalancerName = typeof BALANCERS[number];

/**
 * What a selector may read of a request. Every accessor is lazy: a balancer that needs nothing
 * (round-robin) costs nothing, and one that hashes a cookie parses the `Cookie` header once.
 */
export interface RequestContext {
  /** The client's address as the edge saw it (the connection's peer). */
  clientIp(): string;
  /** A request header by lower-case name, or `null`. */
  header(name: string): string | null;
  /** A cookie's value by name, or `null`. */
  cookie(name: string): string | null;
  /** Path and query exactly as the client sent them. */
  uri(): string;
}

/** What a selector is built from. */
export interface SelectorInput {
  /** The servers to choose among: those up, in config order. */
  readonly servers: readonly Upstream[];
  /** Every server of the backend, in config order (positions of the shared counters). */
  readonly all: readonly Upstream[];
  /** The backend's counters (shared across worker isolates when there are workers). */
  readonly memory: BackendMemory;
}

/** A balancing algorithm over one backend's servers that are up. */
export interface Selector {
  /**
   * A server for the request, never one of `exclude` (the servers a retry already tried);
   * `undefined` when no server is left.
   */
  pick(context: RequestContext, exclude?: readonly Upstream[]): Upstream | undefined;
  /** An exchange with `server` begins (whoever chose it: this selector or a sticky cookie). */
  begin(server: Upstream): void;
  /** The exchange with `server` ended after `ms` milliseconds; `ok` is false when it failed. */
  end(server: Upstream, ms: number, ok: boolean): void;
}

/** A context with nothing in it, for picks made outside a request (tests, tools). */
export const NO_CONTEXT: RequestContext = {
  clientIp: () => "",
  header: () => null,
  cookie: () => null,
  uri: () => "/",
};

/**
 * Finds a cookie in a `Cookie` header value (RFC 6265 §5.4: `name=value` pairs split by `; `).
 * A comma also separates: that is how several `Cookie` fields read when joined into one value
 * (cookie values cannot contain one).
 *
 * @example
 * ```ts
 * cookieValue("a=1; dynlb=x7", "dynlb"); // "x7"
 * ```
 */
export function cookieValue(header: string | null, name: string): string | null {
  if (header === null) return null;
  let start = 0;
  while (start < header.length) {
    let end = header.indexOf(";", start);
    if (end === -1) end = header.length;
    const comma = header.indexOf(",", start);
    if (comma !== -1 && comma < end) end = comma;
    while (header.charCodeAt(start) === 32) start++;
    const eq = header.indexOf("=", start);
    if (eq !== -1 && eq < end && eq - start === name.length && header.startsWith(name, start)) {
      let value = header.slice(eq + 1, end).trim();
      if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) {
        value = value.slice(1, -1);
      }
      return value;
    }
    start = end + 1;
  }
  return null;
}

/**
 * Whether `text` is an RFC 9110 `token` (what header and cookie names are made of).
 *
 * @example
 * ```ts
 * isToken("X-User"); // true
 * isToken("a b"); // false
 * ```
 */
export function isToken(text: string): boolean {
  if (text.length === 0) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff || TCHAR[c] !== 1) return false;
  }
  return true;
}
