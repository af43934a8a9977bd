/**
 * The counters balancers keep per backend, in one `Int32Array`: a round-robin cursor and one
 * in-flight count per configured server. With worker isolates the array lives in a
 * `SharedArrayBuffer` the control plane allocates for each config and sends to every worker,
 * which lays it out the same way from the same config: the isolates serving one port then walk
 * one round-robin sequence and see each other's requests in flight (what nginx's `zone` gives its
 * workers). Every access is an `Atomics` operation.
 *
 * @module
 */

/** A backend's slots in the counters array. */
export interface BackendMemory {
  readonly counters: Int32Array;
  /** Index of the round-robin cursor. */
  readonly cursor: number;
  /** Index of the first server's in-flight count; server `i` (config order) is at `inflight + i`. */
  readonly inflight: number;
}

/** Anything listing backends with their servers (a config). */
export interface BackendShape {
  readonly backends: readonly { readonly servers: readonly unknown[] }[];
}

/**
 * Slots a config's counters need: one cursor plus one per server, for every backend.
 *
 * @example
 * ```ts
 * countersLength({ backends: [{ servers: [1, 2] }] }); // 3
 * ```
 */
export function countersLength(config: BackendShape): number {
  let length = 0;
  for (const b of config.backends) length += 1 + b.servers.length;
  return length;
}

/**
 * Counters for `config` in shared memory, to hand to every isolate compiling it.
 *
 * @example
 * ```ts
 * const counters = sharedCounters(config);
 * compileSnapshot(config, 1, [], counters);
 * ```
 */
export function sharedCounters(config: BackendShape): Int32Array {
  return new Int32Array(new SharedArrayBuffer(4 * Math.max(1, countersLength(config))));
}

/**
 * Lays out `config`'s backends over `counters` (local memory when absent), in config order.
 *
 * @example
 * ```ts
 * const [first] = layoutCounters(config);
 * Atomics.load(first.counters, first.inflight); // requests in flight to its first server
 * ```
 */
export function layoutCounters(config: BackendShape, counters?: Int32Array): BackendMemory[] {
  const length = countersLength(config);
  const array = counters !== undefined && counters.length >= length
    ? counters
    : new Int32Array(Math.max(1, length));
  const out: BackendMemory[] = [];
  let offset = 0;
  for (const b of config.backends) {
    out.push({ counters: array, cursor: offset, inflight: offset + 1 });
    offset += 1 + b.servers.length;
  }
  return out;
}
