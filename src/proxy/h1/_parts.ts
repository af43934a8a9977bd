/**
 * Test helpers of the h1 codec tests: an in-memory byte source that hands out given parts, the
 * split points every message must survive, and seeded mutation fuzzing.
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
 * The splits a message must survive: every split into two parts and one byte per part; for a
 * message over 2,000 bytes (where that would take long) two-part splits at a sample of points,
 * `around` being the offsets the parser's limits make interesting.
 *
 * @example
 * ```ts
 * for (const parts of splits(bytes)) await decode(parts);
 * ```
 */
export function* splits(bytes: Uint8Array, around: number[] = []): Generator<Uint8Array[]> {
  if (bytes.length > 2000) {
    for (const k of [1, 17, 1000, ...around, bytes.length - 1]) {
      if (k < bytes.length) yield [bytes.subarray(0, k), bytes.subarray(k)];
    }
    return;
  }
  for (let k = 1; k < bytes.length; k++) yield [bytes.subarray(0, k), bytes.subarray(k)];
  yield Array.from(bytes, (_, i) => bytes.subarray(i, i + 1));
}

/**
 * Bytes as Latin-1 text (one character per byte).
 *
 * @example
 * ```ts
 * textOf(new Uint8Array([0x68, 0x69])); // "hi"
 * ```
 */
export function textOf(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  return s;
}

/** One input of {@link mutations}: two parts, and the generator to draw further choices from. */
export interface Mutation {
  parts: Uint8Array[];
  rand: () => number;
}

/**
 * Mutation fuzzing input: `rounds` times, one of `seeds` with one to four mutations (a byte
 * replaced by or inserted from `interesting`, bytes deleted, a run duplicated), cut in two at a
 * random point. Seeded, so a failing round can be replayed.
 *
 * @example
 * ```ts
 * for (const { parts } of mutations(["GET / HTTP/1.1\r\n\r\n"], 42, 100, bytesOf("\r\n:"))) {
 *   await decode(parts);
 * }
 * ```
 */
export function* mutations(
  seeds: string[],
  seed: number,
  rounds: number,
  interesting: Uint8Array,
): Generator<Mutation> {
  const rand = random(seed);
  const pick = (n: number) => Math.floor(rand() * n);
  for (let round = 0; round < rounds; round++) {
    const bytes = Array.from(bytesOf(seeds[pick(seeds.length)]));
    for (let m = 1 + pick(4); m > 0; m--) {
      const at = pick(bytes.length + 1);
      switch (pick(4)) {
        case 0:
          bytes[at] = interesting[pick(interesting.length)];
          break;
        case 1:
          bytes.splice(at, 0, interesting[pick(interesting.length)]);
          break;
        case 2:
          bytes.splice(at, 1 + pick(3));
          break;
        default:
          bytes.splice(at, 0, ...bytes.slice(pick(bytes.length), pick(bytes.length)));
      }
    }
    const input = new Uint8Array(bytes);
    const cut = pick(input.length + 1);
    yield { parts: [input.subarray(0, cut), input.subarray(cut)], rand };
  }
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
