/**
 * Host → route lookup with wildcards, as nginx's `server_name`: an exact name wins; otherwise
 * the longest `*.suffix` the name ends with (`*.example.com` matches `a.example.com` and
 * `a.b.example.com`, not `example.com`). A lookup is one map probe per label of the requested
 * name: its cost never grows with the number of hosts.
 *
 * @module
 */

/**
 * Exact and wildcard names → `T`.
 *
 * @example
 * ```ts
 * const table = new HostTable<string>();
 * table.set("*.example.com", "any");
 * table.set("www.example.com", "www");
 * table.find("www.example.com"); // "www"
 * table.find("a.b.example.com"); // "any"
 * ```
 */
export class HostTable<T> {
  readonly #exact = new Map<string, T>();
  /** Keyed by the suffix with its leading dot: `*.example.com` → `.example.com`. */
  readonly #wildcards = new Map<string, T>();
  /** Most dots in a wildcard's suffix: longer suffixes of a name cannot match. */
  #maxDots = 0;

  /** Adds a normalised name or `*.` pattern; a later entry for the same name replaces it. */
  set(name: string, value: T): void {
    if (name.startsWith("*.")) {
      const suffix = name.slice(1);
      this.#wildcards.set(suffix, value);
      this.#maxDots = Math.max(this.#maxDots, suffix.split(".").length - 1);
    } else {
      this.#exact.set(name, value);
    }
  }

  /** Number of names and patterns. */
  get size(): number {
    return this.#exact.size + this.#wildcards.size;
  }

  /** The entry of exactly `name` (no wildcard), if any. */
  exact(name: string): T | undefined {
    return this.#exact.get(name);
  }

  /** The entry for a normalised name: exact first, then the longest matching wildcard. */
  find(name: string): T | undefined {
    const exact = this.#exact.get(name);
    if (exact !== undefined || this.#wildcards.size === 0) return exact;
    return this.wildcard(name);
  }

  /**
   * The longest wildcard matching `name`, ignoring exact entries. Only suffixes with at most as
   * many labels as the longest wildcard are tried, so a name of a thousand labels costs no more.
   */
  wildcard(name: string): T | undefined {
    const wildcards = this.#wildcards;
    let first = name.length;
    for (let k = 0; k < this.#maxDots && first > 0; k++) first = name.lastIndexOf(".", first - 1);
    // `*.com` must not match `.com` itself: a label has to precede the suffix.
    if (first < 1) first = name.indexOf(".", 1);
    for (let dot = first; dot !== -1; dot = name.indexOf(".", dot + 1)) {
      const hit = wildcards.get(name.slice(dot));
      if (hit !== undefined) return hit;
    }
    return undefined;
  }
}
