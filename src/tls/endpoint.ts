/**
 * One TLS port whose certificates change at run time without a restart and without closing
 * open connections.
 *
 * `Deno.listenTls` asks its SNI resolver once per server name for the listener's whole life, so
 * a changed certificate set is put in force by opening a new listener on the same port
 * (`reusePort`) and then closing the old one: new handshakes reach the new listener, accepted
 * connections finish on the server that accepted them. The same applies to `Deno.serve` with
 * `cert`/`key` (the `serve` listener: one certificate, HTTP/2 by ALPN).
 *
 * @module
 */
import type { Address } from "../cli/options.ts";
import { log } from "../log.ts";
import type { ServedCertificate } from "./certificate.ts";
import { CertificateIndex } from "./index.ts";
import { formatHostPort } from "../address.ts";

/** A server accepting on one generation of the TLS port. */
export interface TlsServing {
  /** The bound address (the real port when 0 was asked for). */
  readonly addr: Deno.NetAddr;
  /** Stops accepting; connections already accepted go on. */
  stopAccepting(): void;
  /** Stops accepting and resolves when its requests in flight are done (the drain). */
  shutdown(): Promise<void>;
}

/** Opens a server for a certificate set on `address` (with `reusePort`). Throws when it cannot. */
export type TlsOpener = (index: CertificateIndex, address: Address) => TlsServing;

/** The key `Deno.listenTls` reads its per-handshake certificate callback from (Deno 2.9). */
export const SNI_RESOLVER: unique symbol = Symbol.for("unstableSniResolver") as never;

/**
 * Opens `Deno.listenTls` serving each handshake the certificate the index picks for its SNI
 * name, offering only HTTP/1.1 by ALPN.
 *
 * @example
 * ```ts
 * const listener = listenTlsWithSni(index, { hostname: "0.0.0.0", port: 8443 });
 * ```
 */
export function listenTlsWithSni(index: CertificateIndex, address: Address): Deno.TlsListener {
  const resolve = (serverName: string) => {
    const found = index.resolve(serverName);
    // No certificate at all (ACME still ordering): the handshake fails.
    if (found === undefined) throw new Error("no certificate");
    return { cert: found.cert, key: found.key };
  };
  // The typings know only a fixed `cert`/`key`; the resolver replaces them.
  const options = {
    hostname: address.hostname,
    port: address.port,
    transport: "tcp",
    reusePort: true,
    alpnProtocols: ["http/1.1"],
    [SNI_RESOLVER]: resolve,
  } as unknown as Deno.ListenTlsOptions & Deno.TlsCertifiedKeyPem;
  return Deno.listenTls(options);
}

/**
 * The TLS port: re-opened on every change of the certificate set.
 *
 * @example
 * ```ts
 * const endpoint = new TlsEndpoint({ hostname: "0.0.0.0", port: 8443 }, opener);
 * endpoint.update(certificates); // opens, or re-opens with the new set
 * await endpoint.shutdown();
 * ```
 */
export class TlsEndpoint {
  readonly address: Address;
  readonly #open: TlsOpener;
  #current: TlsServing | undefined;
  #retired = new Set<TlsServing>();
  #fingerprints: string | undefined;
  #closed = false;

  /**
   * Binds the port at once (a placeholder that closes every connection until certificates
   * arrive), so the address is known and held from start-up; throws when it cannot bind.
   */
  constructor(address: Address, open: TlsOpener) {
    this.#open = open;
    this.#current = placeholder(address);
    this.address = { hostname: address.hostname, port: this.#current.addr.port };
  }

  /** Where it listens. */
  get addr(): Deno.NetAddr {
    return { transport: "tcp", hostname: this.address.hostname, port: this.address.port };
  }

  /** Puts `certificates` in force for new handshakes; the same set again changes nothing. */
  update(certificates: readonly ServedCertificate[]): void {
    if (this.#closed) return;
    const fingerprints = certificates.map((c) => c.fingerprint).join(",");
    if (fingerprints === this.#fingerprints) return;
    let next: TlsServing;
    try {
      next = certificates.length === 0
        ? placeholder(this.address)
        : this.#open(new CertificateIndex(certificates), this.address);
    } catch (err) {
      // Keep serving the previous set; the next change tries again.
      log("error", "cannot re-open the TLS listener, keeping the previous certificates", {
        address: formatHostPort(this.address.hostname, this.address.port),
        error: String(err),
      });
      return;
    }
    this.#fingerprints = fingerprints;
    const old = this.#current;
    this.#current = next;
    if (old !== undefined) {
      old.stopAccepting();
      this.#retired.add(old);
    }
  }

  /** Stops accepting and resolves when the requests in flight of every generation are done. */
  async shutdown(): Promise<void> {
    this.#closed = true;
    const all = [...this.#retired, ...(this.#current ? [this.#current] : [])];
    this.#current = undefined;
    this.#retired.clear();
    await Promise.all(all.map((s) => s.shutdown().catch(() => {})));
  }
}

/** Holds the port while there is no certificate: accepts and closes at once. */
function placeholder(address: Address): TlsServing {
  const listener = Deno.listen({
    hostname: address.hostname,
    port: address.port,
    reusePort: true,
  });
  const accepting = (async () => {
    try {
      for await (const conn of listener) conn.close();
    } catch {
      // Closed.
    }
  })();
  let closed = false;
  const stop = () => {
    if (closed) return;
    closed = true;
    listener.close();
  };
  return {
    addr: listener.addr as Deno.NetAddr,
    stopAccepting: stop,
    shutdown: () => {
      stop();
      return accepting;
    },
  };
}
