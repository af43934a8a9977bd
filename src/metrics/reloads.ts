/**
 * Config reloads as counted for `dynlb_config_reloads_total` and shown on the dashboard.
 *
 * @module
 */

/** One config change attempt. */
export interface Reload {
  /** Milliseconds since the epoch. */
  readonly time: number;
  /** Where the config came from: `admin`, `store`, `cache`, `empty`. */
  readonly source: string;
  readonly ok: boolean;
  /** The version applied; 0 when refused. */
  readonly version: number;
}

const KEPT = 20;

/**
 * Counts reloads by source and result and keeps the last few.
 *
 * @example
 * ```ts
 * const reloads = new ReloadStats();
 * reloads.record("admin", true, 2);
 * reloads.counts(); // Map { "admin\nsuccess" => 1 }
 * ```
 */
export class ReloadStats {
  #counts = new Map<string, number>();
  #recent: Reload[] = [];
  #lastOk = true;
  #lastSuccess = 0;

  /** Notes one attempt. */
  record(source: string, ok: boolean, version: number, now = Date.now()): void {
    const key = `${source}\n${ok ? "success" : "failure"}`;
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
    this.#lastOk = ok;
    if (ok) this.#lastSuccess = now;
    this.#recent.push({ time: now, source, ok, version });
    if (this.#recent.length > KEPT) this.#recent.shift();
  }

  /** `source\nresult` → count. */
  counts(): ReadonlyMap<string, number> {
    return this.#counts;
  }

  /** Whether the last attempt was applied. */
  get lastOk(): boolean {
    return this.#lastOk;
  }

  /** Milliseconds since the epoch of the last applied config; 0 before one. */
  get lastSuccess(): number {
    return this.#lastSuccess;
  }

  /** The last attempts, oldest first. */
  recent(): readonly Reload[] {
    return this.#recent;
  }
}
