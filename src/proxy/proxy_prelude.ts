/**
 * `--proxy-protocol` at accept time on the h1 listener, as HAProxy's `accept-proxy` with
 * `tcp-request connection expect-proxy layer4 if { src <trusted> }`: a connection from a
 * trusted peer must begin with a PROXY v1 or v2 header, whose source address then stands for
 * the client everywhere (forwarding headers, trust, logs); a connection from any other peer must
 * not (anyone could claim any address), and is served as plain HTTP. Whatever breaks those rules
 * is closed without an answer: the bytes cannot be trusted to be HTTP.
 *
 * @module
 */
import type { CidrSet } from "./cidr.ts";
import type { ClientFacts } from "./forwarding.ts";
import type { Wire } from "./h1/connection.ts";
import { parseProxyHeader, proxyOpening, ProxyProtocolError } from "./proxy_protocol.ts";

/** What the h1 listener runs once per connection before its first request. */
export type Prelude = (
  conn: Deno.Conn,
  wire: Wire,
  peer: ClientFacts,
) => Promise<ClientFacts | null>;

/**
 * The prelude of `--proxy-protocol`: resolves the client as it should be seen, or `null` to
 * close the connection. A header must be complete within `timeoutMs` (the client header
 * timeout; the request head's own timeout starts after it).
 *
 * @example
 * ```ts
 * const prelude = proxyProtocolPrelude(new CidrSet(["10.0.0.0/8"]), 10_000);
 * new H1Server({ path, timeouts, maxConnections: 16384, prelude });
 * ```
 */
export function proxyProtocolPrelude(trusted: CidrSet, timeoutMs: number): Prelude {
  return async (conn, wire, peer) => {
    // On a TLS listener the first bytes are the TLS handshake, read inside the socket: a PROXY
    // header would have to come before it, which `Deno.listenTls` cannot see.
    if (peer.proto === "https") return peer;
    // Closing the socket makes the pending read fail, which ends the connection.
    let expired = false;
    const timer = setTimeout(() => {
      expired = true;
      try {
        conn.close();
      } catch { /* already closed */ }
    }, timeoutMs);
    try {
      return trusted.has(peer.address)
        ? await readHeader(wire, peer)
        : await refuseHeader(wire, peer);
    } catch (err) {
      if (err instanceof ProxyProtocolError || expired) return null;
      throw err;
    } finally {
      clearTimeout(timer);
    }
  };
}

/** A trusted peer: the connection must start with a header, which is consumed. */
async function readHeader(wire: Wire, peer: ClientFacts): Promise<ClientFacts | null> {
  for (;;) {
    const header = parseProxyHeader(wire.buf.subarray(wire.start, wire.end));
    if (header !== null) {
      wire.start += header.length;
      // LOCAL (the balancer's own health check), UNKNOWN, UNSPEC, UNIX: the peer stands.
      return header.source === undefined ? peer : { ...peer, address: header.source.hostname };
    }
    if (!(await wire.fill())) return null;
  }
}

/** Any other peer: plain HTTP, unless it starts with a PROXY header (then refused). */
async function refuseHeader(wire: Wire, peer: ClientFacts): Promise<ClientFacts | null> {
  for (;;) {
    switch (proxyOpening(wire.buf.subarray(wire.start, wire.end))) {
      case "other":
        return peer;
      case "proxy":
        return null;
    }
    if (!(await wire.fill())) return null;
  }
}
