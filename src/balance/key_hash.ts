/**
 * A fast, well-mixed 32-bit hash of strings for the data plane: placing keys and servers on the
 * consistent-hash ring, and naming servers in sticky cookies. FNV-1a over UTF-16 code units,
 * then MurmurHash3's finaliser so that keys differing in one character land far apart.
 * Not a cryptographic hash.
 *
 * @module
 */

/**
 * 32-bit hash of `text` (unsigned); `seed` gives independent hashes of the same text.
 *
 * @example
 * ```ts
 * keyHash("10.0.0.1") === keyHash("10.0.0.1"); // true
 * ```
 */
export function keyHash(text: string, seed = 0): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
