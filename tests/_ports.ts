/**
 * Free loopback ports for the servers tests start (redis-server, Sentinels, pebble).
 *
 * @module
 */

/** Ports handed out in this process: never handed out twice. */
const given = new Set<number>();

/**
 * A loopback TCP port nothing listens on, and not one handed out before in this process (a port
 * bound and released at once can come back on the next call: a run once gave a Sentinel test's
 * master and replica the same one). With `udp`, free for UDP too (a DNS server's port).
 *
 * @example
 * ```ts
 * const [master, replica] = [freePort(), freePort()]; // always two different ports
 * const dns = freePort({ udp: true });
 * ```
 */
export function freePort(options: { udp?: boolean } = {}): number {
  for (;;) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const { port } = listener.addr as Deno.NetAddr;
    listener.close();
    if (given.has(port)) continue;
    if (options.udp) {
      try {
        Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port }).close();
      } catch {
        continue; // taken for UDP: another
      }
    }
    given.add(port);
    return port;
  }
}
