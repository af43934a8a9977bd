/**
 * The counters balancers keep per backend, in one `Int32Array`: a round-robin cursor and one
 * in-flight count per configured server. With worker isolates the array lives in a
 * `SharedArrayBuffer` that every worker receives with each config, so the isolates serving one
 * port walk one round-robin sequence and see each other's requests in flight (what nginx's `zone`
 * gives its workers). Every access is an `Atomics` operation.
 *
 * {@link CounterSlots} (held by whoever sends configs: the worker pool, or the router itself with
 * one isolate) places the counters: a server a new config keeps — same backend, same `addr:port`
 * — keeps its slot, so requests in flight across a config change are still counted, and end on
 * the same counter they began on.
 *
 * @module
 */

/** A backend's slots in the counters array. */
export interface BackendMemory {
  readonly counters: Int32Array;
  /** Index of the round-robin cursor. */
  readonly cursor: number;
  /** Index of each configured server's in-flight count, in config order. */
  readonly inflight: readonly number[];
}

/** Anything listing backends with their servers (a config). */
export interface BackendShape {
  readonly backends: readonly {
    readonly backend_name?: string;
    readonly servers: readonly { readonly addr?: string; readonly port?: number }[];
  }[];
}

/**
 * Where a config's counters are: `slots` lists, backend by backend in config order, the cursor's
 * index and then each server's, into `counters`.
 */
export interface CounterLayout {
  readonly counters: Int32Array;
  readonly slots: Int32Array;
}

/**
 * Slots a config's counters need: one cursor plus one per server, for every backend.
 *
 * @example
 * ```ts
 * countersLength({ backends: [{ servers: [{}, {}] }] }); // 3
 * ```
 */
export function countersLength(config: BackendShape): number {
  let length = 0;
  for (const b of config.backends) length += 1 + b.servers.length;
  return length;
}

/**
 * Splits `layout` into `config`'s backends (in config order); without a layout (or one for
 * another config), local counters.
 *
 * @example
 * ```ts
 * const [first] = layoutCounters(config);
 * Atomics.load(first.counters, first.inflight[0]); // requests in flight to its first server
 * ```
 */
export function layoutCounters(config: BackendShape, layout?: CounterLayout): BackendMemory[] {
  const length = countersLength(config);
  let counters: Int32Array;
  let slots: Int32Array;
  if (layout !== undefined && layout.slots.length === length) {
    ({ counters, slots } = layout);
  } else {
    counters = new Int32Array(Math.max(1, length));
    slots = Int32Array.from({ length }, (_, i) => i);
  }
  const out: BackendMemory[] = [];
  let at = 0;
  for (const b of config.backends) {
    const cursor = slots[at];
    const inflight = Array.from(slots.subarray(at + 1, at + 1 + b.servers.length));
    out.push({ counters, cursor, inflight });
    at += 1 + b.servers.length;
  }
  return out;
}

/**
 * Places the counters of successive configs so that kept servers keep their slots. Slots of
 * servers that left are not reused (a request in flight may still end on them) until the array
 * is full; then a new array twice the size is allocated with the current servers' values.
 *
 * @example
 * ```ts
 * const places = new CounterSlots(true);
 * const layout = places.place(config); // send with the config to every worker
 * ```
 */
export class CounterSlots {
  readonly #shared: boolean;
  #counters: Int32Array;
  /** `backend\naddr:port` (or `backend\n` for the cursor) → slot, for the current config. */
  #slots = new Map<string, number>();
  #next = 0;

  /** `shared`: in a `SharedArrayBuffer` (for worker isolates). */
  constructor(shared: boolean) {
    this.#shared = shared;
    this.#counters = this.#allocate(64);
  }

  /** The layout of `config`'s counters. */
  place(config: BackendShape): CounterLayout {
    const keys: string[] = [];
    config.backends.forEach((b, i) => {
      const name = b.backend_name ?? `#${i}`;
      keys.push(`${name}\n`);
      for (const s of b.servers) keys.push(`${name}\n${s.addr}:${s.port}`);
    });
    let fresh = 0;
    for (const key of keys) if (!this.#slots.has(key)) fresh++;
    if (this.#next + fresh > this.#counters.length) this.#compact(keys, fresh);
    const slots = new Int32Array(keys.length);
    const next = new Map<string, number>();
    keys.forEach((key, i) => {
      let slot = this.#slots.get(key);
      if (slot === undefined) {
        slot = this.#next++;
        Atomics.store(this.#counters, slot, 0);
      }
      next.set(key, slot);
      slots[i] = slot;
    });
    this.#slots = next;
    return { counters: this.#counters, slots };
  }

  /** A new array with room for `keys` and more, carrying the kept servers' values over. */
  #compact(keys: readonly string[], fresh: number): void {
    const old = this.#counters;
    const counters = this.#allocate(Math.max(64, 2 * (keys.length + fresh)));
    const slots = new Map<string, number>();
    let next = 0;
    for (const key of keys) {
      const slot = this.#slots.get(key);
      if (slot === undefined || slots.has(key)) continue;
      Atomics.store(counters, next, Atomics.load(old, slot));
      slots.set(key, next++);
    }
    this.#counters = counters;
    this.#slots = slots;
    this.#next = next;
  }

  #allocate(length: number): Int32Array {
    return this.#shared
      ? new Int32Array(new SharedArrayBuffer(4 * length))
      : new Int32Array(length);
  }
}
