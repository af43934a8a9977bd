/**
 * Which forwarding headers a request carries upstream. At the edge anyone can send
 * `X-Forwarded-For`, `X-Forwarded-Host`, `X-Forwarded-Proto` or `X-Real-IP`, so a client's are
 * replaced with what dynlb itself saw, unless the client is a proxy listed in
 * `--trusted-proxies`: then `X-Forwarded-For` is appended to and the other three are passed on
 * (set by dynlb when the trusted proxy sent none) — Traefik's and Caddy's rule.
 *
 * @module
 */
import type { CidrSet } from "./cidr.ts";
import { type Forwarded, type HeaderList, headerValue } from "./hop.ts";

/** What the listener knows about the client of one request. */
export interface ClientFacts {
  /**
   * The client's address: the TCP peer, or the source a PROXY protocol header carried (the
   * trust decision is about the HTTP client, which the PROXY header names).
   */
  readonly address: string;
  /** The scheme the client used to reach dynlb. */
  readonly proto: "http" | "https";
}

/**
 * The forwarding headers for a request with `headers` and `host` from `client`.
 *
 * @example
 * ```ts
 * const trusted = new CidrSet(["10.0.0.0/8"]);
 * const h = new Headers({ "x-forwarded-for": "1.2.3.4" });
 * forwardingOf(h, "a.test", { address: "10.0.0.5", proto: "http" }, trusted).for; // "1.2.3.4, 10.0.0.5"
 * forwardingOf(h, "a.test", { address: "8.8.8.8", proto: "http" }, trusted).for; // "8.8.8.8"
 * ```
 */
export function forwardingOf(
  headers: HeaderList,
  host: string,
  client: ClientFacts,
  trusted: CidrSet,
): Forwarded {
  const address = client.address;
  if (!trusted.has(address)) {
    return { for: address, host, proto: client.proto, realIp: address };
  }
  const prior = headerValue(headers, "x-forwarded-for");
  return {
    for: prior === null || prior.trim() === "" ? address : `${prior}, ${address}`,
    host: headerValue(headers, "x-forwarded-host") ?? host,
    proto: headerValue(headers, "x-forwarded-proto") ?? client.proto,
    realIp: headerValue(headers, "x-real-ip") ?? address,
  };
}
