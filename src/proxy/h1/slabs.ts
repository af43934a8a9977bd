/**
 * Small byte buffers carved out of shared slabs: the parked read buffers of idle client
 * connections. Each buffer is a view of a 16 KiB slab, not an `ArrayBuffer` of its own: an
 * `ArrayBuffer` costs ~0.3 KiB besides its bytes (its object, V8's backing-store record, malloc's
 * header), as much as two 128 B buffers — 3 MB for 10,000 idle connections.
 *
 * A buffer is taken for as long as its owner may read into it; given back, it is handed out again
 * (a slab whose buffers all came back is dropped, but the last one of its size). The owner gives a
 * buffer back only once no read into it is in flight, and never touches it afterwards.
 *
 * @module
 */

/** Bytes of one slab. */
export const SLAB_BYTES = 16 * 1024;

/** One slab: its bytes, the buffers carved out so far and given back. */
class Slab {
  readonly bytes: Uint8Array<ArrayBuffer> = new Uint8Array(SLAB_BYTES);
  /** Buffers given back, handed out again first (no new view). */
  readonly free: Uint8Array<ArrayBuffer>[] = [];
  /** Buffers carved out so far. */
  carved = 0;
  /** Buffers out now. */
  used = 0;
}

/**
 * Buffers of one size, from slabs of {@link SLAB_BYTES}.
 *
 * @example
 * ```ts
 * const pool = new SlabPool(128);
 * const buf = pool.take(); // 128 bytes, a view of a shared slab
 * pool.give(buf);
 * ```
 */
export class SlabPool {
  /** Bytes of each buffer (a divisor of {@link SLAB_BYTES}). */
  readonly size: number;
  readonly #perSlab: number;
  /** Slabs with a buffer left, the last one taken from first. */
  readonly #open: Slab[] = [];
  /** Every slab by its memory, to find a given-back buffer's. */
  readonly #slabs = new Map<ArrayBuffer, Slab>();
  #out = 0;

  constructor(size: number) {
    if (size <= 0 || SLAB_BYTES % size !== 0) {
      throw new RangeError(`buffer size ${size} does not divide the slab`);
    }
    this.size = size;
    this.#perSlab = SLAB_BYTES / size;
  }

  /** Slabs held. */
  get slabs(): number {
    return this.#slabs.size;
  }

  /** Buffers handed out and not given back. */
  get out(): number {
    return this.#out;
  }

  /** A buffer of {@link size} bytes (holding whatever its last owner left in it). */
  take(): Uint8Array<ArrayBuffer> {
    let slab = this.#open.at(-1);
    if (slab === undefined) {
      slab = new Slab();
      this.#open.push(slab);
      this.#slabs.set(slab.bytes.buffer, slab);
    }
    let buf = slab.free.pop();
    if (buf === undefined) {
      const at = slab.carved++ * this.size;
      buf = slab.bytes.subarray(at, at + this.size);
    }
    if (++slab.used === this.#perSlab) this.#open.pop();
    this.#out++;
    return buf;
  }

  /** Gives back a buffer {@link take} handed out; its owner must not use it any more. */
  give(buf: Uint8Array<ArrayBuffer>): void {
    const slab = this.#slabs.get(buf.buffer);
    if (slab === undefined || buf.length !== this.size) {
      throw new RangeError("not a buffer of this pool");
    }
    slab.free.push(buf);
    this.#out--;
    if (slab.used-- === this.#perSlab) this.#open.push(slab);
    else if (slab.used === 0 && this.#slabs.size > 1) {
      this.#open.splice(this.#open.indexOf(slab), 1);
      this.#slabs.delete(buf.buffer);
    }
  }
}
