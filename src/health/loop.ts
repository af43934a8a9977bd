/**
 * The check loop of one target (one server under one check definition): probe, record the
 * outcome in the target's {@linkcode CheckState}, wait `interval`, repeat.
 *
 * One timer per target and no overlap: the next check is scheduled `interval` after the
 * previous one *finished*, so a slow server is checked every `interval` + probe time (at most
 * `interval + timeout`), never twice at once. A tick costs one timer, one connection and the
 * probe's own timeout timer; nothing is allocated per tick besides what the probe needs.
 *
 * @module
 */
import { log } from "../log.ts";
import { httpProbe, type ProbeResult, tcpProbe } from "./probe.ts";
import type { CheckState, Thresholds } from "./state.ts";
import type { ServerState } from "./types.ts";

/** A check definition in the units the loop uses (milliseconds). */
export interface CheckDefinition extends Thresholds {
  readonly type: "tcp" | "http";
  /** Request path of `http` checks. */
  readonly uri: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
}

/** Called after every check with its outcome and the state change it caused, if any. */
export type CheckListener = (
  ok: boolean,
  change: ServerState | null,
  error: string | undefined,
) => void;

/**
 * Runs the checks of one target until stopped.
 *
 * @example
 * ```ts
 * const def = { type: "tcp", uri: "/", intervalMs: 1000, timeoutMs: 500, success: 2, fail: 3 } as const;
 * const loop = new CheckLoop("127.0.0.1", 8080, def, new CheckState(), () => {}, Date.now);
 * loop.start(0);
 * await loop.stop();
 * ```
 */
export class CheckLoop {
  readonly addr: string;
  readonly port: number;
  readonly definition: CheckDefinition;
  readonly state: CheckState;
  #listener: CheckListener;
  #now: () => number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** One controller for the loop's life: aborting it ends the in-flight probe on stop. */
  #abort = new AbortController();
  #inflight: Promise<void> | undefined;
  #stopped = false;
  /** Bound once so that scheduling a tick allocates no closure. */
  #tick = () => {
    this.#timer = undefined;
    this.#inflight = this.#check();
  };

  constructor(
    addr: string,
    port: number,
    definition: CheckDefinition,
    state: CheckState,
    listener: CheckListener,
    now: () => number,
  ) {
    this.addr = addr;
    this.port = port;
    this.definition = definition;
    this.state = state;
    this.#listener = listener;
    this.#now = now;
  }

  /** Schedules the first check `delayMs` from now. */
  start(delayMs: number): void {
    if (this.#stopped || this.#timer !== undefined || this.#inflight) return;
    this.#timer = setTimeout(this.#tick, delayMs);
  }

  /**
   * Stops the loop: no further checks, the in-flight probe (if any) is aborted and its outcome
   * discarded. Resolves when that probe has let go of its connection.
   */
  stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#abort.abort();
    return this.#inflight ?? Promise.resolve();
  }

  async #check(): Promise<void> {
    const d = this.definition;
    const signal = this.#abort.signal;
    let result: ProbeResult;
    if (d.type === "http") {
      result = await httpProbe(this.addr, this.port, d.uri, d.timeoutMs, signal);
    } else {
      result = await tcpProbe(this.addr, this.port, d.timeoutMs, signal);
    }
    this.#inflight = undefined;
    if (this.#stopped) return;
    const error = result.ok ? undefined : result.error;
    const change = this.state.record(d, result.ok, this.#now(), error);
    try {
      this.#listener(result.ok, change, error);
    } catch (err) {
      // A broken listener must not end the loop (nor reject a promise nobody awaits).
      log("error", "health listener failed", { error: String(err) });
    }
    if (!this.#stopped) this.#timer = setTimeout(this.#tick, d.intervalMs);
  }
}
