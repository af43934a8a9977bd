/**
 * IP addresses and CIDR ranges (IPv4 and IPv6), for deciding which peers are trusted proxies.
 * Every address is held as 16 bytes: an IPv4 address is stored IPv4-mapped (`::ffff:a.b.c.d`),
 * so `10.0.0.0/8` also matches a peer a dual-stack listener reports as `::ffff:10.1.2.3`.
 *
 * @module
 */

/**
 * A CIDR range or address that cannot be parsed; the message quotes it.
 *
 * @example
 * ```ts
 * try {
 *   new CidrSet(["10.0.0.0/33"]);
 * } catch (err) {
 *   if (err instanceof CidrError) console.error(err.message);
 * }
 * ```
 */
export class CidrError extends Error {
  override name = "CidrError";
}

/** One parsed range: 16 address bytes and the prefix length over those 16 bytes. */
interface Range {
  readonly bytes: Uint8Array;
  readonly prefix: number;
}

/**
 * A set of CIDR ranges, matched against peer addresses as `Deno.NetAddr.hostname` gives them.
 *
 * @example
 * ```ts
 * const trusted = new CidrSet(["10.0.0.0/8", "fd00::/8", "127.0.0.1"]);
 * trusted.has("10.1.2.3"); // true
 * trusted.has("::ffff:10.1.2.3"); // true
 * trusted.has("192.168.0.1"); // false
 * ```
 */
export class CidrSet {
  readonly #ranges: readonly Range[];

  /** Throws {@link CidrError} naming the first entry that is not an address or a range. */
  constructor(cidrs: readonly string[]) {
    this.#ranges = cidrs.map(parseCidr);
  }

  /** No range at all: nothing is trusted. */
  get empty(): boolean {
    return this.#ranges.length === 0;
  }

  /** Whether `address` lies in one of the ranges; an unparsable address never does. */
  has(address: string): boolean {
    if (this.#ranges.length === 0) return false;
    const bytes = parseIp(address);
    if (bytes === undefined) return false;
    for (const range of this.#ranges) {
      if (inRange(bytes, range)) return true;
    }
    return false;
  }
}

/**
 * Parses `a.b.c.d/n`, `v6::/n` or a bare address (a range of one). Host bits are ignored.
 *
 * @example
 * ```ts
 * parseCidr("192.168.0.0/16").prefix; // 112 (16 + the 96 bits of the IPv4-mapped prefix)
 * ```
 */
export function parseCidr(text: string): Range {
  const slash = text.indexOf("/");
  const addressText = (slash === -1 ? text : text.slice(0, slash)).trim();
  const bytes = parseIp(addressText);
  if (bytes === undefined) {
    throw new CidrError(`"${text}" is not an IP address or CIDR range`);
  }
  const v4 = addressText.indexOf(":") === -1;
  const max = v4 ? 32 : 128;
  let prefix = max;
  if (slash !== -1) {
    const bits = text.slice(slash + 1).trim();
    if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) {
      throw new CidrError(`"${text}": the prefix length must be 0 to ${max}`);
    }
    prefix = Number(bits);
  }
  return { bytes, prefix: v4 ? prefix + 96 : prefix };
}

/**
 * An IPv4 or IPv6 address as 16 bytes (IPv4 mapped into `::ffff:0:0/96`), or `undefined` when
 * `text` is not one. A zone (`fe80::1%eth0`) is ignored; brackets are not accepted.
 *
 * @example
 * ```ts
 * parseIp("127.0.0.1"); // Uint8Array [0,0,0,0,0,0,0,0,0,0,255,255,127,0,0,1]
 * parseIp("::1")![15]; // 1
 * parseIp("localhost"); // undefined
 * ```
 */
export function parseIp(text: string): Uint8Array | undefined {
  const out = new Uint8Array(16);
  if (text.indexOf(":") === -1) {
    if (!parseIpv4(text, out, 12)) return undefined;
    out[10] = 0xff;
    out[11] = 0xff;
    return out;
  }
  const zone = text.indexOf("%");
  const address = zone === -1 ? text : text.slice(0, zone);
  const halves = address.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] === "" ? [] : halves[0].split(":");
  const tail = halves.length === 1 || halves[1] === "" ? [] : halves[1].split(":");
  const groups: number[] = [];
  const all = [...head, ...tail];
  // An embedded IPv4 address (`::ffff:1.2.3.4`) is only allowed as the last part.
  let v4Tail: Uint8Array | undefined;
  const last = all.length > 0 ? all[all.length - 1] : "";
  if (last.indexOf(".") !== -1) {
    v4Tail = new Uint8Array(4);
    if (!parseIpv4(last, v4Tail, 0)) return undefined;
    if (tail.length > 0) tail.pop();
    else if (halves.length === 1) head.pop();
    else return undefined;
  }
  for (const part of [...head, ...tail]) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(part)) return undefined;
    groups.push(parseInt(part, 16));
  }
  const needed = v4Tail === undefined ? 8 : 6;
  const given = head.length + tail.length;
  if (halves.length === 1 ? given !== needed : given > needed - 1) return undefined;
  const zeros = needed - given;
  const full = [
    ...groups.slice(0, head.length),
    ...new Array(zeros).fill(0),
    ...groups.slice(head.length),
  ];
  for (let i = 0; i < needed; i++) {
    out[i * 2] = full[i] >> 8;
    out[i * 2 + 1] = full[i] & 0xff;
  }
  if (v4Tail !== undefined) out.set(v4Tail, 12);
  return out;
}

/** Dotted quad into `out` at `at`; false when it is not exactly four decimal bytes. */
function parseIpv4(text: string, out: Uint8Array, at: number): boolean {
  const parts = text.split(".");
  if (parts.length !== 4) return false;
  for (let i = 0; i < 4; i++) {
    const part = parts[i];
    // No leading zeros: `010` is octal to some parsers and decimal to others.
    if (!/^(0|[1-9]\d{0,2})$/.test(part)) return false;
    const n = Number(part);
    if (n > 255) return false;
    out[at + i] = n;
  }
  return true;
}

function inRange(bytes: Uint8Array, range: Range): boolean {
  const whole = range.prefix >> 3;
  for (let i = 0; i < whole; i++) {
    if (bytes[i] !== range.bytes[i]) return false;
  }
  const bits = range.prefix & 7;
  if (bits === 0) return true;
  const mask = (0xff << (8 - bits)) & 0xff;
  return (bytes[whole] & mask) === (range.bytes[whole] & mask);
}
