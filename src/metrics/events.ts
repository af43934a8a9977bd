/**
 * The recent health changes, newest last, for the dashboard's log.
 *
 * @module
 */
import type { HealthChange } from "../health/types.ts";

/** One change as shown. */
export interface HealthEvent {
  /** ISO time. */
  readonly time: string;
  readonly backend: string;
  readonly server: string;
  readonly up: boolean;
  readonly reason: string;
}

/**
 * A bounded log of health changes.
 *
 * @example
 * ```ts
 * const events = new HealthEvents();
 * events.record({ backend: "api", server: "127.0.0.1:9000", up: false, reason: "3 failed tcp checks" });
 * events.recent(); // [{ time: "…", backend: "api", … }]
 * ```
 */
export class HealthEvents {
  readonly #kept: number;
  #events: HealthEvent[] = [];

  constructor(kept = 50) {
    this.#kept = kept;
  }

  /** Notes a change now. */
  record(change: HealthChange): void {
    const { backend, server, up, reason } = change;
    this.#events.push({ time: new Date().toISOString(), backend, server, up, reason });
    if (this.#events.length > this.#kept) this.#events.shift();
  }

  /** The kept changes, oldest first. */
  recent(): readonly HealthEvent[] {
    return this.#events;
  }
}
