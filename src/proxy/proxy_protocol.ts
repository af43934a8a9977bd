/**
 * PROXY protocol headers, versions 1 (text) and 2 (binary), as HAProxy's specification
 * (`proxy-protocol.txt`) defines them: an L4 load balancer writes one before the client's first
 * byte to say whom the connection is really from. This module only parses bytes; reading them
 * from a connection and deciding whom to believe is the listener's job.
 *
 * @module
 */
import { parseIp } from "./cidr.ts";

/**
 * Bytes that are not a valid PROXY header (or a header dynlb does not accept). The connection
 * must be closed: what follows cannot be told apart from the header.
 *
 * @example
 * ```ts
 * try {
 *   parseProxyHeader(new TextEncoder().encode("PROXY TCP4 1.2.3.4\r\n"));
 * } catch (err) {
 *   if (err instanceof ProxyProtocolError) conn.close();
 * }
 * ```
 */
export class ProxyProtocolError extends Error {
  override name = "ProxyProtocolError";
}

/** An address and port a header carries. */
export interface ProxyEndpoint {
  /** IPv4 dotted quad or IPv6 text (as `Deno.NetAddr.hostname` writes them). */
  readonly hostname: string;
  readonly port: number;
}

/** A complete PROXY header. */
export interface ProxyHeader {
  readonly version: 1 | 2;
  /** How many bytes the header took; the client's own bytes start there. */
  readonly length: number;
  /**
   * The client the connection is relayed for, or `undefined` when the header carries none that
   * applies (v1 `UNKNOWN`, v2 `LOCAL` — the balancer's own health checks —, v2 `UNSPEC` or UNIX
   * sockets): then the real peer address stands, as the specification says.
   */
  readonly source?: ProxyEndpoint;
  /** The address the client connected to, when `source` is given. */
  readonly destination?: ProxyEndpoint;
}

/** Longest v1 header, CRLF included (the specification's bound). */
export const V1_MAX_BYTES = 107;
/**
 * Longest v2 header dynlb accepts (16 fixed bytes plus addresses and TLVs). The format allows
 * 64 KiB; balancers send well under this (addresses plus a few small TLVs).
 */
export const V2_MAX_BYTES = 4096;

const V1_PREFIX = [0x50, 0x52, 0x4f, 0x58, 0x59, 0x20]; // "PROXY "
/** `\r\n\r\n\0\r\nQUIT\n` */
const V2_SIGNATURE = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

/** What the first bytes of a connection say about a PROXY header. */
export type Opening =
  /** Not a PROXY header (some byte differs from both signatures). */
  | "other"
  /** Too few bytes to tell. */
  | "partial"
  /** A whole v1 or v2 signature: a PROXY header begins here. */
  | "proxy";

/**
 * Whether `bytes`, the first a connection sent, begin a PROXY header. A listener uses it to
 * refuse headers from peers it does not trust.
 *
 * @example
 * ```ts
 * proxyOpening(new TextEncoder().encode("PRO")); // "partial"
 * proxyOpening(new TextEncoder().encode("GET / HTTP/1.1\r\n")); // "other"
 * proxyOpening(new TextEncoder().encode("PROXY TCP4 ")); // "proxy"
 * ```
 */
export function proxyOpening(bytes: Uint8Array): Opening {
  const v1 = prefixState(bytes, V1_PREFIX);
  const v2 = prefixState(bytes, V2_SIGNATURE);
  if (v1 === "proxy" || v2 === "proxy") return "proxy";
  if (v1 === "partial" || v2 === "partial") return "partial";
  return "other";
}

function prefixState(bytes: Uint8Array, signature: readonly number[]): Opening {
  const n = Math.min(bytes.length, signature.length);
  for (let i = 0; i < n; i++) {
    if (bytes[i] !== signature[i]) return "other";
  }
  return n === signature.length ? "proxy" : "partial";
}

/**
 * Parses the PROXY header at the start of `bytes`: the header when it is complete, `null` when
 * more bytes are needed. Throws {@link ProxyProtocolError} as soon as the bytes cannot become a
 * valid header (including bytes that are not a PROXY header at all).
 *
 * @example
 * ```ts
 * const bytes = new TextEncoder().encode("PROXY TCP4 192.0.2.1 198.51.100.2 51000 443\r\nGET /");
 * const header = parseProxyHeader(bytes)!;
 * header.source; // { hostname: "192.0.2.1", port: 51000 }
 * bytes.subarray(header.length); // "GET /"
 * ```
 */
export function parseProxyHeader(bytes: Uint8Array): ProxyHeader | null {
  switch (proxyOpening(bytes)) {
    case "other":
      throw new ProxyProtocolError("the connection does not start with a PROXY protocol header");
    case "partial":
      return null;
  }
  return bytes[0] === V1_PREFIX[0] ? parseV1(bytes) : parseV2(bytes);
}

function parseV1(bytes: Uint8Array): ProxyHeader | null {
  // The CR must come early enough for CRLF to end within the bound.
  const lastCr = V1_MAX_BYTES - 2;
  const limit = Math.min(bytes.length, lastCr + 1);
  let end = -1;
  for (let i = V1_PREFIX.length; i < limit; i++) {
    const b = bytes[i];
    if (b === 0x0d) {
      if (i + 1 === bytes.length) return null;
      if (bytes[i + 1] !== 0x0a) throw v1Error("a CR not followed by LF");
      end = i;
      break;
    }
    // Printable US-ASCII only: no LF alone, no NUL, no control or 8-bit bytes.
    if (b < 0x20 || b > 0x7e) throw v1Error("a byte that is not printable US-ASCII");
  }
  if (end === -1) {
    if (bytes.length > lastCr) throw v1Error(`no CRLF within ${V1_MAX_BYTES} bytes`);
    return null;
  }
  let line = "";
  for (let i = 0; i < end; i++) line += String.fromCharCode(bytes[i]);
  const length = end + 2;
  const fields = line.split(" ");
  if (fields[1] === "UNKNOWN") {
    // The sender could not tell; the rest of the line is to be ignored.
    return { version: 1, length };
  }
  if (fields.length !== 6) throw v1Error("not 6 fields separated by single spaces");
  const [, family, source, destination, sourcePort, destinationPort] = fields;
  if (family !== "TCP4" && family !== "TCP6") {
    throw v1Error(`unknown protocol "${family}" (TCP4, TCP6 or UNKNOWN)`);
  }
  return {
    version: 1,
    length,
    source: { hostname: v1Address(family, source), port: v1Port(sourcePort) },
    destination: { hostname: v1Address(family, destination), port: v1Port(destinationPort) },
  };
}

function v1Address(family: "TCP4" | "TCP6", text: string): string {
  const v6 = text.indexOf(":") !== -1;
  if (v6 !== (family === "TCP6") || text.indexOf("%") !== -1 || parseIp(text) === undefined) {
    throw v1Error(`"${text}" is not an ${family === "TCP4" ? "IPv4" : "IPv6"} address`);
  }
  return text.toLowerCase();
}

function v1Port(text: string): number {
  // Decimal without leading zeros, as the specification writes them.
  if (!/^(0|[1-9]\d{0,4})$/.test(text) || Number(text) > 65535) {
    throw v1Error(`"${text}" is not a port`);
  }
  return Number(text);
}

function v1Error(what: string): ProxyProtocolError {
  return new ProxyProtocolError(`malformed PROXY v1 header: ${what}`);
}

/** Fixed part of a v2 header: signature, version/command, family/transport, length. */
const V2_FIXED = 16;

function parseV2(bytes: Uint8Array): ProxyHeader | null {
  if (bytes.length < V2_FIXED) return null;
  const versionCommand = bytes[12];
  if (versionCommand >> 4 !== 2) throw v2Error(`version ${versionCommand >> 4} (only 2 exists)`);
  const command = versionCommand & 0x0f;
  if (command > 1) throw v2Error(`command ${command} (0 LOCAL or 1 PROXY)`);
  const bodyLength = (bytes[14] << 8) | bytes[15];
  const length = V2_FIXED + bodyLength;
  if (length > V2_MAX_BYTES) throw v2Error(`${length} bytes (dynlb accepts ${V2_MAX_BYTES})`);
  // LOCAL: the family byte is to be ignored, as are the addresses.
  const familyTransport = command === 0 ? 0 : bytes[13];
  const needed = ADDRESS_BYTES.get(familyTransport);
  if (needed === undefined) {
    throw v2Error(`address family and protocol 0x${familyTransport.toString(16)}`);
  }
  if (bodyLength < needed) {
    throw v2Error(`${bodyLength} address bytes for 0x${familyTransport.toString(16)}`);
  }
  if (bytes.length < length) return null;
  // LOCAL (the balancer's own connection), UNSPEC and UNIX: the real peer stands. TLVs after
  // the addresses are skipped.
  const family = familyTransport >> 4;
  if (family === 0 || family === 3) return { version: 2, length };
  const at = V2_FIXED;
  if (family === 1) {
    return {
      version: 2,
      length,
      source: { hostname: ipv4(bytes, at), port: port(bytes, at + 8) },
      destination: { hostname: ipv4(bytes, at + 4), port: port(bytes, at + 10) },
    };
  }
  return {
    version: 2,
    length,
    source: { hostname: ipv6(bytes, at), port: port(bytes, at + 32) },
    destination: { hostname: ipv6(bytes, at + 16), port: port(bytes, at + 34) },
  };
}

/**
 * The family/protocol bytes the specification defines (any other must be refused), each with
 * the size of its address block: UNSPEC, TCP and UDP over IPv4 and IPv6, UNIX stream and dgram.
 */
const ADDRESS_BYTES: ReadonlyMap<number, number> = new Map([
  [0x00, 0],
  [0x11, 12],
  [0x12, 12],
  [0x21, 36],
  [0x22, 36],
  [0x31, 216],
  [0x32, 216],
]);

function v2Error(what: string): ProxyProtocolError {
  return new ProxyProtocolError(`malformed PROXY v2 header: ${what}`);
}

function port(bytes: Uint8Array, at: number): number {
  return (bytes[at] << 8) | bytes[at + 1];
}

function ipv4(bytes: Uint8Array, at: number): string {
  return `${bytes[at]}.${bytes[at + 1]}.${bytes[at + 2]}.${bytes[at + 3]}`;
}

/**
 * IPv6 text as RFC 5952 writes it (lower case, the longest run of two or more zero groups as
 * `::`), and IPv4-mapped addresses as `::ffff:a.b.c.d` — the forms Deno reports peers in.
 *
 * @example
 * ```ts
 * ipv6(new Uint8Array(16).fill(0, 0, 15).fill(1, 15), 0); // "::1"
 * ```
 */
export function ipv6(bytes: Uint8Array, at: number): string {
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((bytes[at + i * 2] << 8) | bytes[at + i * 2 + 1]);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return `::ffff:${ipv4(bytes, at + 12)}`;
  }
  let bestStart = -1;
  let bestLength = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (list: number[]) => list.map((g) => g.toString(16)).join(":");
  if (bestStart === -1) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}
