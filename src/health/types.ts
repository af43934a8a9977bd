/**
 * The contract between the health checker (control plane) and the rest of the program.
 *
 * A check *target* is one server under one check definition: a server listed by two backends
 * with the same `health_check` is checked once; with different definitions, once per
 * definition. The data plane sees per-backend state: (backend_name, server key) → up/down.
 *
 * @module
 */

/** Up or down. Servers start up. */
export type ServerState = "up" | "down";

/** A change of one server's state as one backend sees it. */
export interface HealthChange {
  readonly backend: string;
  /** The server's `addr:port` key (see `Upstream.key`). */
  readonly server: string;
  readonly up: boolean;
  /** Why, for the log line: `"3 failed tcp checks: connection refused"`, `"passive: 1 failure"`. */
  readonly reason: string;
}

/** One server's row in `GET /status`. */
export interface ServerStatus {
  readonly server: string;
  readonly state: ServerState;
  readonly weight: number;
  /** Consecutive passing checks. */
  readonly passes: number;
  /** Consecutive failing checks. */
  readonly failures: number;
  /** ISO time of the last finished check; null before the first or without checks. */
  readonly last_check: string | null;
  /** The last failure's message; null if none. */
  readonly last_error: string | null;
  /** ISO time of the last state change; null if it never changed. */
  readonly last_change: string | null;
}

/** One backend's part of `GET /status`. */
export interface BackendStatus {
  readonly backend: string;
  /** `tcp`, `http`, or `none` when active checks are off. */
  readonly check: "tcp" | "http" | "none";
  readonly servers: readonly ServerStatus[];
}
