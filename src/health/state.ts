/**
 * The consecutive-counter state machine of one check target (Pingora's `Health` in
 * pingora-load-balancing): `fail` consecutive failures take an up server down, `success`
 * consecutive passes bring a down server back. Synchronous and free of I/O and clocks: the
 * caller passes the time, so it is tested without servers or timers.
 *
 * @module
 */
import type { ServerState } from "./types.ts";

/** The thresholds of one check definition. */
export interface Thresholds {
  /** Consecutive passes that take a down server up (≥ 1). */
  readonly success: number;
  /** Consecutive failures that take an up server down (≥ 1). */
  readonly fail: number;
}

/**
 * Counters and state of one target. Servers start up: a new config must not wait for checks
 * before sending traffic, and a dead server is found within `fail` checks.
 *
 * @example
 * ```ts
 * const s = new CheckState();
 * s.record({ success: 2, fail: 1 }, false, Date.now(), "connection refused"); // "down"
 * s.state; // "down"
 * ```
 */
export class CheckState {
  /** Current state. */
  state: ServerState = "up";
  /** Consecutive passing checks (0 after a failure). */
  passes = 0;
  /** Consecutive failing checks (0 after a pass). */
  failures = 0;
  /** Time (ms since the epoch) of the last finished check, or null. */
  lastCheck: number | null = null;
  /** The last failure's message, or null. */
  lastError: string | null = null;
  /** Time of the last failure, or null (tells which of two error sources is newer). */
  lastErrorAt: number | null = null;
  /** Time of the last state change, or null. */
  lastChange: number | null = null;

  /**
   * Records one check's outcome at time `now`; returns the new state when this check changed
   * it, otherwise null.
   *
   * @example
   * ```ts
   * const s = new CheckState();
   * s.record({ success: 1, fail: 3 }, false, 0, "status 500"); // null (1 of 3)
   * ```
   */
  record(limits: Thresholds, ok: boolean, now: number, error?: string): ServerState | null {
    this.lastCheck = now;
    if (ok) {
      this.failures = 0;
      this.passes++;
      if (this.state === "down" && this.passes >= limits.success) return this.#set("up", now);
    } else {
      this.passes = 0;
      this.failures++;
      this.lastError = error ?? "check failed";
      this.lastErrorAt = now;
      if (this.state === "up" && this.failures >= limits.fail) return this.#set("down", now);
    }
    return null;
  }

  /**
   * A copy, for a target whose definition changed but whose probe did not (same server, type
   * and uri): the evidence gathered so far stays valid under new thresholds or interval.
   *
   * @example
   * ```ts
   * const next = new CheckState().clone();
   * ```
   */
  clone(): CheckState {
    const copy = new CheckState();
    copy.state = this.state;
    copy.passes = this.passes;
    copy.failures = this.failures;
    copy.lastCheck = this.lastCheck;
    copy.lastError = this.lastError;
    copy.lastErrorAt = this.lastErrorAt;
    copy.lastChange = this.lastChange;
    return copy;
  }

  #set(state: ServerState, now: number): ServerState {
    this.state = state;
    this.lastChange = now;
    return state;
  }
}
