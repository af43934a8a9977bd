/**
 * Where a request goes once its host (and path) matched: a backend's pool, and how much of the
 * path to strip. Compiled once per config; a lookup returns one of these without allocating.
 *
 * @module
 */
import type { UpstreamPool } from "../balance/pool.ts";

/** The outcome of routing a request. */
export interface Destination {
  /** The backend serving it. */
  readonly pool: UpstreamPool;
  /** Characters to remove from the start of the target (`strip_prefix`); 0: none. */
  readonly strip: number;
}

/**
 * The target to forward once `destination`'s prefix is stripped: what follows the prefix, always
 * starting with `/` (`/api/x?q` → `/x?q`, `/api?q` → `/?q`).
 *
 * @example
 * ```ts
 * forwardTarget("/api/users?id=1", 4); // "/users?id=1"
 * ```
 */
export function forwardTarget(target: string, strip: number): string {
  if (strip === 0) return target;
  const rest = target.slice(strip);
  return rest.charCodeAt(0) === 47 /* / */ ? rest : "/" + rest;
}
