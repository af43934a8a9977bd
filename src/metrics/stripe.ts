/**
 * One isolate's counters in shared memory. Every proxy isolate writes only its own stripe, so a
 * count is a plain add to a `Float64Array` slot — no atomic read-modify-write, no contention
 * between workers, no message, lock or allocation per request — and the admin isolate sums the
 * stripes when it is scraped. A slot has one writer; readers see each 64-bit store whole and
 * at worst a moment late, which is all a counter needs. Doubles count exactly up to 2^53.
 *
 * Backends and servers have stable numeric ids (see `registry.ts`) and one fixed-size block
 * each (see `BlockLayout`); the two block arrays live in growable `SharedArrayBuffer`s that the
 * writer grows when a config brings higher ids. Readers hold length-tracking views, so they see
 * growth without being told.
 *
 * @module
 */
import { type BlockLayout, HEADER, OVERFLOW_KEY } from "./layout.ts";

/** Largest byte size of a stripe's block arrays (virtual address space, touched lazily). */
const MAX_BYTES = 256 * 1024 * 1024;

/** The shared buffers of one stripe (structured-cloneable: they are shared, not copied). */
export interface StripeBuffers {
  readonly header: SharedArrayBuffer;
  readonly backends: SharedArrayBuffer;
  readonly servers: SharedArrayBuffer;
}

/**
 * Allocates an empty stripe.
 *
 * @example
 * ```ts
 * const writer = new StripeWriter(createStripe(), new BlockLayout(DEFAULT_BUCKETS));
 * ```
 */
export function createStripe(): StripeBuffers {
  return {
    header: new SharedArrayBuffer(HEADER.size * 8),
    backends: new SharedArrayBuffer(0, { maxByteLength: MAX_BYTES }),
    servers: new SharedArrayBuffer(0, { maxByteLength: MAX_BYTES }),
  };
}

/**
 * Length-tracking views of a stripe (they see the writer's growth without being told).
 *
 * @example
 * ```ts
 * const view = new StripeView(createStripe());
 * view.header[HEADER.tunnels]; // 0
 * ```
 */
export class StripeView {
  readonly header: Float64Array;
  readonly backends: Float64Array;
  readonly servers: Float64Array;

  constructor(buffers: StripeBuffers) {
    this.header = new Float64Array(buffers.header);
    this.backends = new Float64Array(buffers.backends);
    this.servers = new Float64Array(buffers.servers);
  }
}

/**
 * The writing side of a stripe, used by exactly one isolate.
 *
 * @example
 * ```ts
 * const writer = new StripeWriter(createStripe(), new BlockLayout([0.1, 1]));
 * writer.ensure(2, 4);
 * writer.request(1, 1, 200, 0.004);
 * ```
 */
export class StripeWriter {
  readonly layout: BlockLayout;
  readonly #buffers: StripeBuffers;
  readonly #header: Float64Array;
  readonly #backends: Float64Array;
  readonly #servers: Float64Array;
  readonly #bounds: Float64Array;

  constructor(buffers: StripeBuffers, layout: BlockLayout) {
    this.layout = layout;
    this.#buffers = buffers;
    const view = new StripeView(buffers);
    this.#header = view.header;
    this.#backends = view.backends;
    this.#servers = view.servers;
    this.#bounds = Float64Array.from(layout.buckets);
  }

  /** Grows the block arrays to hold backend ids below `backends` and server ids below `servers`. */
  ensure(backends: number, servers: number): void {
    grow(this.#buffers.backends, backends * this.layout.backendSize * 8);
    grow(this.#buffers.servers, servers * this.layout.serverSize * 8);
  }

  /** Clears the header's gauges (a replacement worker starts with no connections). */
  resetGauges(): void {
    const h = this.#header;
    for (let i = 0; i < HEADER.accessLogDropped; i++) h[i] = 0;
  }

  /** Adds `delta` to header slot `slot` (see `HEADER`). */
  add(slot: number, delta: number): void {
    this.#header[slot] += delta;
  }

  /** Sets header slot `slot`. */
  set(slot: number, value: number): void {
    this.#header[slot] = value;
  }

  /** One answered request of backend `bid` (0: no backend). */
  request(bid: number, method: number, status: number, seconds: number): void {
    const layout = this.layout;
    const base = bid * layout.backendSize;
    const f = this.#backends;
    if (base + layout.backendSize > f.length) return;
    this.#observe(f, base + layout.duration, seconds);
    countKey(
      f,
      base + layout.backendCodes,
      layout.backendSize - layout.backendCodes,
      method * 1000 + status,
    );
  }

  /** A response head from server `sid` of backend `bid`, `seconds` after the request went out. */
  upstreamResponse(bid: number, sid: number, status: number, seconds: number): void {
    const layout = this.layout;
    const b = this.#backends;
    const base = bid * layout.backendSize;
    if (base + layout.backendSize <= b.length) this.#observe(b, base + layout.upstream, seconds);
    const s = this.#servers;
    const sbase = sid * layout.serverSize;
    if (sbase + layout.serverSize > s.length) return;
    this.#observe(s, sbase + layout.serverUpstream, seconds);
    countKey(s, sbase + layout.serverCodes, layout.serverSize - layout.serverCodes, status);
  }

  /** A failed exchange with server `sid` (`kind`: an index of `ERROR_KINDS`). */
  upstreamError(sid: number, kind: number): void {
    const s = this.#servers;
    const slot = sid * this.layout.serverSize + this.layout.serverErrors + kind;
    if (slot < s.length) s[slot]++;
  }

  /** Another server tried for a request of backend `bid`. */
  retry(bid: number): void {
    const f = this.#backends;
    const slot = bid * this.layout.backendSize + this.layout.retries;
    if (slot < f.length) f[slot]++;
  }

  #observe(f: Float64Array, base: number, seconds: number): void {
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && seconds > bounds[i]) i++;
    f[base + i]++;
    f[base + bounds.length + 1] += seconds;
  }
}

/**
 * Counts `key` in a table of (key, count) pairs at `base` spanning `size` slots: the entry with
 * that key, else the first empty one, else the last entry (relabelled as overflow).
 */
function countKey(f: Float64Array, base: number, size: number, key: number): void {
  const last = base + size - 2;
  for (let i = base; i < last; i += 2) {
    const k = f[i];
    if (k === key) {
      f[i + 1]++;
      return;
    }
    if (k === 0) {
      f[i + 1]++;
      f[i] = key;
      return;
    }
  }
  f[last] = OVERFLOW_KEY;
  f[last + 1]++;
}

function grow(buffer: SharedArrayBuffer, bytes: number): void {
  if (bytes > buffer.byteLength) {
    buffer.grow(Math.min(MAX_BYTES, Math.max(bytes, buffer.byteLength * 2)));
  }
}
