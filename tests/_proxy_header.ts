/**
 * PROXY protocol headers written byte by byte, as a load balancer would send them, for the
 * parser, prelude and end-to-end tests.
 *
 * @module
 */

/** The v2 signature: `\r\n\r\n\0\r\nQUIT\n`. */
export const V2_SIGNATURE: readonly number[] = [
  ...[0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a],
  ...[0x51, 0x55, 0x49, 0x54, 0x0a],
];

/** Text as Latin-1 bytes. */
export function ascii(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

/** The parts one after the other. */
export function concat(...parts: ArrayLike<number>[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

/** A 16-bit number, big-endian. */
export function be16(n: number): number[] {
  return [n >> 8, n & 0xff];
}

/**
 * A v2 header from its version/command byte, family/protocol byte and the body after the fixed
 * part (addresses, then TLVs).
 *
 * @example
 * ```ts
 * proxyV2(0x20, 0x00, []); // LOCAL
 * ```
 */
export function proxyV2(command: number, family: number, body: ArrayLike<number>): Uint8Array {
  return concat(V2_SIGNATURE, [command, family, ...be16(body.length)], body);
}

/** A v2 PROXY header for TCP over IPv4 (addresses as 4 bytes each). */
export function proxyV2Tcp4(
  source: readonly number[],
  destination: readonly number[],
  sourcePort: number,
  destinationPort: number,
): Uint8Array {
  return proxyV2(0x21, 0x11, [
    ...source,
    ...destination,
    ...be16(sourcePort),
    ...be16(destinationPort),
  ]);
}

/** A v2 PROXY header for TCP over IPv6 (addresses as 16 bytes each). */
export function proxyV2Tcp6(
  source: readonly number[],
  destination: readonly number[],
  sourcePort: number,
  destinationPort: number,
): Uint8Array {
  return proxyV2(0x21, 0x21, [
    ...source,
    ...destination,
    ...be16(sourcePort),
    ...be16(destinationPort),
  ]);
}

/** The v2 LOCAL header a balancer sends on its own health checks. */
export const PROXY_V2_LOCAL: Uint8Array = proxyV2(0x20, 0x00, []);
