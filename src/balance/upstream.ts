/**
 * An upstream server as the data plane sees it: addresses resolved into the strings the
 * forwarder needs, computed once per config rather than per request.
 *
 * @module
 */
import { formatHostPort } from "../address.ts";

/** One server of one backend, ready to forward to. */
export interface Upstream {
  /** `addr:port` (IPv6 in brackets): the server's identity in logs, health and status. */
  readonly key: string;
  readonly addr: string;
  readonly port: number;
  readonly weight: number;
  /** `http://addr:port`, the prefix of every upstream URL. */
  readonly origin: string;
}

/**
 * Builds the upstream record of a server.
 *
 * @example
 * ```ts
 * upstreamOf("::1", 8080, 1).origin; // "http://[::1]:8080"
 * ```
 */
export function upstreamOf(addr: string, port: number, weight: number): Upstream {
  const key = formatHostPort(addr, port);
  return { key, addr, port, weight, origin: `http://${key}` };
}
