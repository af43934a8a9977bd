/**
 * Reusable write buffers for the heads (and small bodies) the HTTP/1.1 codec encodes.
 *
 * Allocating an `ArrayBuffer` is the dearest thing the request path does in JavaScript: each one
 * is a malloc'd backing store that V8 tracks as external memory, so a few per request cost more
 * CPU than parsing and routing together (measured: `new Uint8Array(300)` ~1 µs, 16 KiB ~7 µs
 * including the garbage collection it causes) and inflate the resident set between collections.
 * A writer takes a buffer, encodes into it, awaits its write, and gives it back; buffers are
 * per isolate (no sharing between workers) and bounded in number and size.
 *
 * @module
 */

/** Buffers are made at least this big, so that one fits a head and a typical small body. */
const MIN_BYTES = 32 * 1024;
/** Larger buffers are not kept: a rare huge head must not pin its memory. */
const MAX_KEPT_BYTES = 256 * 1024;
/**
 * Free buffers kept (8 MiB of the smallest): a write to a slow client holds its buffer until the
 * client read it, so 64 was too few at 128 connections (a profile showed the allocations back);
 * more concurrent writers than this allocate (and drop) their own.
 */
const MAX_KEPT = 256;

/**
 * A free list of write buffers.
 *
 * @example
 * ```ts
 * const out = scratch.take(head.length);
 * try {
 *   const n = writeLatin1(out, 0, head);
 *   await conn.write(out.subarray(0, n));
 * } finally {
 *   scratch.give(out);
 * }
 * ```
 */
export class ScratchBuffers {
  readonly #free: ArrayBuffer[] = [];

  /** A buffer of at least `bytes` bytes (contents undefined), to be given back after use. */
  take(bytes: number): Uint8Array<ArrayBuffer> {
    const free = this.#free;
    for (let i = free.length - 1; i >= 0; i--) {
      const buffer = free[i];
      if (buffer.byteLength < bytes) continue;
      free[i] = free[free.length - 1];
      free.pop();
      return new Uint8Array(buffer);
    }
    return new Uint8Array(Math.max(bytes, MIN_BYTES));
  }

  /** Returns a buffer from {@link take} (any view of it); it must no longer be in use. */
  give(view: Uint8Array<ArrayBuffer>): void {
    const buffer = view.buffer;
    if (buffer.byteLength > MAX_KEPT_BYTES || this.#free.length >= MAX_KEPT) return;
    this.#free.push(buffer);
  }

  /** Free buffers held (for tests). */
  get size(): number {
    return this.#free.length;
  }
}

/** This isolate's write buffers. */
export const scratch: ScratchBuffers = new ScratchBuffers();
