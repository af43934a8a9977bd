/**
 * Loads the certificates a config lists (`tls.certificates`): reads the files, parses the PEM,
 * checks each key against its certificate and the expiry. Every problem comes back with the JSON
 * path of the entry it is about, as config validation reports them. Synchronous: it runs in the
 * control plane, on a config change or a file change, never on the request path.
 *
 * @module
 */
import type { ConfigIssue, TlsCertificateConfig } from "../config/types.ts";
import {
  CertificateError,
  expiresSoon,
  inspectPair,
  type ServedCertificate,
} from "./certificate.ts";

/** Where a served certificate came from. */
export type CertificateSource = "file" | "inline" | "acme";

/** A configured certificate, loaded. */
export interface LoadedCertificate extends ServedCertificate {
  readonly source: CertificateSource;
  /** Files it was read from (`source: "file"`). */
  readonly certFile?: string;
  readonly keyFile?: string;
}

/**
 * What an expired certificate is: `refuse` (a config posted through the admin API, a renewed
 * file) or `warn` (a config already stored: an unrelated certificate's expiry must not stop a
 * restart or split the fleet; the expired one keeps its names failing until it is replaced).
 */
export type ExpiredCertificates = "refuse" | "warn";

/** The outcome of loading every configured certificate. */
export interface LoadResult {
  /** In the order listed; only those without problems. */
  readonly certificates: readonly LoadedCertificate[];
  readonly issues: readonly ConfigIssue[];
  readonly warnings: readonly ConfigIssue[];
}

/**
 * Loads `entries` (the config's `tls.certificates`); `path` prefixes issue paths.
 *
 * @example
 * ```ts
 * const { certificates, issues } = loadCertificates(config.tls?.certificates ?? []);
 * if (issues.length > 0) console.error(issues);
 * ```
 */
export function loadCertificates(
  entries: readonly TlsCertificateConfig[],
  path = "tls.certificates",
  now = new Date(),
  expired: ExpiredCertificates = "refuse",
): LoadResult {
  const certificates: LoadedCertificate[] = [];
  const issues: ConfigIssue[] = [];
  const warnings: ConfigIssue[] = [];
  entries.forEach((entry, i) => {
    const at = `${path}[${i}]`;
    let cert: string | undefined;
    let key: string | undefined;
    if (entry.cert_file !== undefined && entry.key_file !== undefined) {
      cert = readConfigFile(entry.cert_file, `${at}.cert_file`, issues);
      key = readConfigFile(entry.key_file, `${at}.key_file`, issues);
      if (cert === undefined || key === undefined) return;
    } else {
      cert = entry.cert!;
      key = entry.key!;
    }
    const fromFile = entry.cert_file !== undefined;
    try {
      const info = inspectPair(cert, key, now, expired === "warn");
      certificates.push({
        ...info,
        cert,
        key,
        source: fromFile ? "file" : "inline",
        certFile: entry.cert_file,
        keyFile: entry.key_file,
      });
      const names = info.names.join(", ");
      if (info.notAfter.getTime() <= now.getTime()) {
        warnings.push({
          path: at,
          message: `the certificate for ${names} expired on ${info.notAfter.toISOString()}: ` +
            "clients of these names get errors until it is replaced",
        });
      } else if (expiresSoon(info, now)) {
        warnings.push({
          path: at,
          message: `the certificate for ${names} expires on ${info.notAfter.toISOString()}`,
        });
      }
    } catch (err) {
      if (!(err instanceof CertificateError)) throw err;
      const field = err.problem === "bad-key"
        ? (fromFile ? "key_file" : "key")
        : err.problem === "mismatch"
        ? (fromFile ? "key_file" : "key")
        : (fromFile ? "cert_file" : "cert");
      issues.push({ path: `${at}.${field}`, message: err.message });
    }
  });
  return { certificates, issues, warnings };
}

/**
 * Reads a file a config names; on failure records an issue at `path` and returns `undefined`.
 *
 * @example
 * ```ts
 * const text = readConfigFile("/etc/dynlb/ca.pem", "tls.acme.ca_cert_file", issues);
 * ```
 */
export function readConfigFile(
  file: string,
  path: string,
  issues: ConfigIssue[],
): string | undefined {
  try {
    return Deno.readTextFileSync(file);
  } catch (err) {
    const reason = err instanceof Deno.errors.NotFound
      ? "no such file"
      : err instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : err instanceof Deno.errors.IsADirectory
      ? "is a directory"
      : (err as Error).message;
    issues.push({ path, message: `cannot read ${file}: ${reason}` });
    return undefined;
  }
}
