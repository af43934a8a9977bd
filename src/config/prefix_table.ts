/**
 * Path-prefix routing of one host (`hosts[].paths`): the longest prefix matching whole segments
 * of the raw path (before `?`, not decoded) wins. `/api` and `/api/` are one prefix; both match
 * `/api`, `/api/` and `/api/users`, never `/apis`. `/` matches every path.
 *
 * A lookup tries the path cut at each `/`, longest first, but only at lengths some prefix has:
 * its cost grows with the path's length, never with the number of prefixes.
 *
 * @module
 */
import type { Destination } from "./route.ts";

/**
 * The canonical form of a prefix: without a trailing `/` (except `/` itself).
 *
 * @example
 * ```ts
 * normalizePrefix("/api/"); // "/api"
 * ```
 */
export function normalizePrefix(prefix: string): string {
  let end = prefix.length;
  while (end > 1 && prefix.charCodeAt(end - 1) === 47 /* / */) end--;
  return end === prefix.length ? prefix : prefix.slice(0, end);
}

/**
 * Prefix → destination of one host.
 *
 * @example
 * ```ts
 * const table = new PrefixTable([["/api/", api]]);
 * table.match("/api/users?x=1"); // api
 * table.match("/apis"); // undefined
 * ```
 */
export class PrefixTable {
  readonly #byPrefix = new Map<string, Destination>();
  /** `#lengths[n]` is 1 when some prefix (other than `/`) is `n` characters long. */
  readonly #lengths: Uint8Array;
  readonly #root: Destination | undefined;

  constructor(entries: Iterable<readonly [string, Destination]>) {
    let longest = 0;
    for (const [raw, destination] of entries) {
      const prefix = normalizePrefix(raw);
      this.#byPrefix.set(prefix, destination);
      if (prefix.length > longest) longest = prefix.length;
    }
    this.#root = this.#byPrefix.get("/");
    this.#lengths = new Uint8Array(longest + 1);
    for (const prefix of this.#byPrefix.keys()) {
      if (prefix !== "/") this.#lengths[prefix.length] = 1;
    }
  }

  /** The destination of the longest prefix matching `target`'s path, if any. */
  match(target: string): Destination | undefined {
    if (target.charCodeAt(0) !== 47 /* / */) return undefined;
    let end = target.indexOf("?");
    if (end === -1) end = target.length;
    const lengths = this.#lengths;
    const longest = lengths.length - 1;
    // Candidates: the whole path, then the path cut before each `/`, longest first.
    let cut = end;
    if (cut > longest) {
      cut = target.lastIndexOf("/", longest);
      if (cut <= 0) return this.#root;
    }
    while (cut > 0) {
      if (lengths[cut] === 1) {
        const hit = this.#byPrefix.get(target.slice(0, cut));
        if (hit !== undefined) return hit;
      }
      cut = target.lastIndexOf("/", cut - 1);
    }
    return this.#root;
  }
}
