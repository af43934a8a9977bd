/**
 * The byte tunnel between an h1 client and a server after a `101 Switching Protocols`: bytes
 * flow both ways until either side ends, or until neither sent a byte for the tunnel idle
 * timeout.
 *
 * @module
 */
import type { Tunnel } from "../transport.ts";
import { type Wire, writeFully } from "./connection.ts";

/**
 * The client's side of a tunnel.
 *
 * @example
 * ```ts
 * await relayTunnel({ wire, write: (b) => writeFully(conn, b), close: () => conn.close() }, t, 600_000);
 * ```
 */
export interface TunnelClient {
  /** The client's read buffer (bytes already read past the request go to the server first). */
  readonly wire: Wire;
  write(bytes: Uint8Array): Promise<void>;
  /** Ends the client connection (the idle timeout uses it). */
  close(): void;
}

/**
 * Relays bytes between `client` and `tunnel` until either side ends or breaks, or `idleMs`
 * pass without a byte either way (then `client` is closed). Never rejects; closes neither side
 * itself but on the idle timeout.
 *
 * @example
 * ```ts
 * await relayTunnel(client, reply.tunnel!, 600_000);
 * ```
 */
export async function relayTunnel(
  client: TunnelClient,
  tunnel: Tunnel,
  idleMs: number,
): Promise<void> {
  const wire = client.wire;
  let last = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const check = () => {
    const quiet = performance.now() - last;
    if (quiet >= idleMs) client.close();
    else timer = setTimeout(check, idleMs - quiet);
  };
  timer = setTimeout(check, idleMs);
  try {
    const toServer = (async () => {
      if (wire.buffered > 0) {
        await writeFully(tunnel, wire.buf.slice(wire.start, wire.end));
        wire.start = wire.end;
      }
      // A read the request's watch started may still be pending: its bytes go first.
      for (;;) {
        const more = await wire.fill();
        if (!more) break;
        last = performance.now();
        await writeFully(tunnel, wire.buf.slice(wire.start, wire.end));
        wire.start = wire.end;
      }
    })();
    const toClient = (async () => {
      if (tunnel.buffered.length > 0) await client.write(tunnel.buffered);
      const buf = new Uint8Array(64 * 1024);
      for (;;) {
        const n = await tunnel.read(buf);
        if (n === null) break;
        last = performance.now();
        await client.write(buf.subarray(0, n));
      }
    })();
    // Either side ending ends the tunnel; the other then fails as its socket closes.
    toServer.catch(() => {});
    toClient.catch(() => {});
    await Promise.race([toServer, toClient]);
  } catch {
    /* either side broke */
  } finally {
    clearTimeout(timer);
  }
}
