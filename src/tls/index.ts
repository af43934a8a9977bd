/**
 * Which certificate a TLS handshake gets for its SNI name: an exact name first, then a wildcard
 * covering it (one label), and among several candidates the one valid longest; no SNI or an
 * unknown name gets the first certificate listed. Built once per certificate set, so a
 * handshake costs two map lookups.
 *
 * @module
 */
import type { ServedCertificate } from "./certificate.ts";

/**
 * An immutable name → certificate lookup.
 *
 * @example
 * ```ts
 * const index = new CertificateIndex([a, wildcard]);
 * index.resolve("www.example.com")?.cert;
 * ```
 */
export class CertificateIndex {
  readonly certificates: readonly ServedCertificate[];
  readonly #exact = new Map<string, ServedCertificate>();
  /** Parent domain (`example.com`) → best `*.example.com` certificate. */
  readonly #wildcard = new Map<string, ServedCertificate>();

  constructor(certificates: readonly ServedCertificate[]) {
    this.certificates = certificates;
    for (const cert of certificates) {
      for (const name of cert.names) {
        const [map, key] = name.startsWith("*.")
          ? [this.#wildcard, name.slice(2)]
          : [this.#exact, name];
        const current = map.get(key);
        if (current === undefined || cert.notAfter.getTime() > current.notAfter.getTime()) {
          map.set(key, cert);
        }
      }
    }
  }

  /** The certificate for `serverName` (SNI; empty when the client sent none). */
  resolve(serverName: string): ServedCertificate | undefined {
    if (serverName !== "") {
      const name = serverName.toLowerCase().replace(/\.$/, "");
      const exact = this.#exact.get(name);
      if (exact !== undefined) return exact;
      const dot = name.indexOf(".");
      if (dot > 0) {
        const wildcard = this.#wildcard.get(name.slice(dot + 1));
        if (wildcard !== undefined) return wildcard;
      }
    }
    return this.certificates[0];
  }

  /** Whether a certificate other than the default covers `name` exactly or by wildcard. */
  covers(name: string): boolean {
    const lower = name.toLowerCase();
    if (this.#exact.has(lower)) return true;
    const dot = lower.indexOf(".");
    return dot > 0 && this.#wildcard.has(lower.slice(dot + 1));
  }
}
