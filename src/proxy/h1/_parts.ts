/**
 * Test helpers of the h1 codec tests: an in-memory byte source that hands out given parts, the
 * split points every valid message must survive, and a seeded generator for mutation fuzzing.
 *
 * @module
 */
import type { ByteSource } from "./connection.ts";

/**
 * Serves the given parts, one part (or what fits) per read.
 *
 * @example
 * ```ts
 * const wire = new Wire(new Parts([bytesOf("GET / HTTP/1.1\r\n"), bytesOf("Host: a\r\n\r\n")]));
 * ```
 */
export class Parts implements ByteSource {
  #parts: Uint8Array[];
  #i = 0;
  #off = 0;

  constructor(parts: Uint8Array[]) {
    this.#parts = parts;
  }

  read(p: Uint8Array): Promise<number | null> {
    while (this.#i < this.#parts.length && this.#parts[this.#i].length === this.#off) {
      this.#i++;
      this.#off = 0;
    }
    if (this.#i >= this.#parts.length) return Promise.resolve(null);
    const part = this.#parts[this.#i];
    const n = Math.min(p.length, part.length - this.#off);
    p.set(part.subarray(this.#off, this.#off + n));
    this.#off += n;
    return Promise.resolve(n);
  }
}

/**
 * Latin-1 text as bytes (one byte per character).
 *
 * @example
 * ```ts
 * bytesOf("\xff").length; // 1
 * ```
 */
export function bytesOf(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

/**
 * Every split into two parts, and one byte per part.
 *
 * @example
 * ```ts
 * for (const parts of splits(bytes)) await decode(parts);
 * ```
 */
export function* splits(bytes: Uint8Array): Generator<Uint8Array[]> {
  for (let k = 1; k < bytes.length; k++) yield [bytes.subarray(0, k), bytes.subarray(k)];
  yield Array.from(bytes, (_, i) => bytes.subarray(i, i + 1));
}

/**
 * mulberry32: a small seeded generator, so a failure can be replayed.
 *
 * @example
 * ```ts
 * const rand = random(42);
 * rand(); // in [0, 1)
 * ```
 */
export function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
