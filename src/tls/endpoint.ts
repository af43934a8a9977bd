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

/** A server accepting on one generation of the TLS port. */
export interface TlsServing {
  /** Stops accepting; connections already accepted go on (they finish or the drain ends them). */
  stopAccepting(): void;
  /** Resolves when every connection it accepted is done (after `stopAccepting`). */
  readonly finished: Promise<void>;
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
  return Deno.listenTls({
    hostname: address.hostname,
    port: address.port,
    transport: "tcp",
    reusePort: true,
    alpnProtocols: ["http/1.1"],
    [SNI_RESOLVER]: resolve,
  } as Deno.ListenTlsOptions & Deno.TcpListenOptions);
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
  #retired = new Set<Promise<void>>();
  #fingerprints = "";
  #closed = false;

  constructor(address: Address, open: TlsOpener) {
    this.address = address;
    this.#open = open;
  }

  /** Puts `certificates` in force for new handshakes; the same set again changes nothing. */
  update(certificates: readonly ServedCertificate[]): void {
    if (this.#closed) return;
    const fingerprints = certificates.map((c) => c.fingerprint).join(",");
    if (fingerprints === this.#fingerprints && this.#current !== undefined) return;
    if (certificates.length === 0 && this.#current === undefined) return;
    let next: TlsServing;
    try {
      next = this.#open(new CertificateIndex(certificates), this.address);
    } catch (err) {
      // Keep serving the previous set; the next change tries again.
      log("error", "cannot re-open the TLS listener, keeping the previous certificates", {
        address: `${this.address.hostname}:${this.address.port}`,
        error: String(err),
      });
      return;
    }
    this.#fingerprints = fingerprints;
    const old = this.#current;
    this.#current = next;
    if (old !== undefined) this.#retire(old);
  }

  /** Stops accepting and resolves when every connection of every generation is done. */
  async shutdown(): Promise<void> {
    this.#closed = true;
    if (this.#current !== undefined) this.#retire(this.#current);
    this.#current = undefined;
    await Promise.all(this.#retired);
  }

  #retire(serving: TlsServing): void {
    serving.stopAccepting();
    const done = serving.finished.catch(() => {}).finally(() => this.#retired.delete(done));
    this.#retired.add(done);
  }
}
