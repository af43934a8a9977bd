/**
 * What a certificate says about itself, read with `node:crypto`: the names it serves, its issuer
 * and validity, and whether a private key belongs to it. Used by config validation, the
 * certificate index and `GET /certificates`.
 *
 * @module
 */
import { createPrivateKey, X509Certificate } from "node:crypto";

/** Why a certificate/key pair cannot be served. */
export type CertificateProblem =
  | "bad-certificate"
  | "bad-key"
  | "mismatch"
  | "expired"
  | "no-names";

/**
 * A certificate/key pair that cannot be served; `problem` classifies it, the message says it
 * in words (never with key material).
 *
 * @example
 * ```ts
 * try {
 *   inspectPair(certPem, keyPem);
 * } catch (err) {
 *   if (err instanceof CertificateError && err.problem === "expired") console.error(err.message);
 * }
 * ```
 */
export class CertificateError extends Error {
  override name = "CertificateError";
  readonly problem: CertificateProblem;

  constructor(problem: CertificateProblem, message: string) {
    super(message);
    this.problem = problem;
  }
}

/** Facts about a servable certificate. */
export interface CertificateInfo {
  /** Lower-case DNS names (subjectAltName, else CN); `*.example.com` for wildcards. */
  readonly names: readonly string[];
  /** The issuer's distinguished name, one `key=value` per line as node:crypto gives it. */
  readonly issuer: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** SHA-256 fingerprint of the leaf, `AB:CD:…`. */
  readonly fingerprint: string;
}

/** A pair ready to hand to a TLS listener: PEM text plus what it serves. */
export interface ServedCertificate extends CertificateInfo {
  /** The certificate chain, PEM (leaf first). */
  readonly cert: string;
  /** The private key, PEM. Never logged, never shown. */
  readonly key: string;
}

/** Days before expiry from which a certificate draws a warning. */
export const EXPIRY_WARNING_DAYS = 7;

/**
 * Parses a PEM chain and key, checks that the key belongs to the leaf and (unless
 * `allowExpired`) that the certificate has not expired at `now`; throws {@link CertificateError}
 * otherwise.
 *
 * @example
 * ```ts
 * const info = inspectPair(await Deno.readTextFile("a.pem"), await Deno.readTextFile("a.key"));
 * info.names; // ["a.test"]
 * ```
 */
export function inspectPair(
  cert: string,
  key: string,
  now = new Date(),
  allowExpired = false,
): CertificateInfo {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch {
    throw new CertificateError("bad-certificate", "is not a PEM certificate");
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key);
  } catch {
    throw new CertificateError("bad-key", "is not a PEM private key");
  }
  if (!x509.checkPrivateKey(privateKey)) {
    throw new CertificateError("mismatch", "the private key does not belong to the certificate");
  }
  const info = infoOf(x509);
  if (!allowExpired && info.notAfter.getTime() <= now.getTime()) {
    throw new CertificateError(
      "expired",
      `the certificate expired on ${info.notAfter.toISOString()}`,
    );
  }
  if (info.names.length === 0) {
    throw new CertificateError("no-names", "the certificate names no DNS name (SAN or CN)");
  }
  return info;
}

/**
 * Reads the facts of a PEM certificate (the first of a chain) without a key.
 *
 * @example
 * ```ts
 * describeCertificate(pem).notAfter;
 * ```
 */
export function describeCertificate(cert: string): CertificateInfo {
  try {
    return infoOf(new X509Certificate(cert));
  } catch {
    throw new CertificateError("bad-certificate", "is not a PEM certificate");
  }
}

/**
 * Whether the certificate expires within {@link EXPIRY_WARNING_DAYS} of `now`.
 *
 * @example
 * ```ts
 * if (expiresSoon(info)) log("warn", "certificate expires soon", { names: info.names.join() });
 * ```
 */
export function expiresSoon(info: CertificateInfo, now = new Date()): boolean {
  return info.notAfter.getTime() - now.getTime() < EXPIRY_WARNING_DAYS * 86_400_000;
}

/**
 * Whether `pattern` (a certificate name, maybe `*.example.com`) covers `name`: a wildcard
 * covers exactly one label.
 *
 * @example
 * ```ts
 * nameMatches("*.example.com", "www.example.com"); // true
 * nameMatches("*.example.com", "a.b.example.com"); // false
 * ```
 */
export function nameMatches(pattern: string, name: string): boolean {
  if (!pattern.startsWith("*.")) return pattern === name;
  const dot = name.indexOf(".");
  return dot > 0 && name.slice(dot + 1) === pattern.slice(2);
}

function infoOf(x509: X509Certificate): CertificateInfo {
  return {
    names: namesOf(x509),
    issuer: x509.issuer,
    notBefore: new Date(x509.validFrom),
    notAfter: new Date(x509.validTo),
    fingerprint: x509.fingerprint256,
  };
}

function namesOf(x509: X509Certificate): string[] {
  const san = x509.subjectAltName;
  if (san !== undefined && san !== "") {
    const names = san.split(/,\s*/).filter((entry) => entry.startsWith("DNS:"))
      .map((entry) => entry.slice(4).toLowerCase().replace(/\.$/, ""));
    if (names.length > 0) return [...new Set(names)];
  }
  const cn = /(?:^|\n)CN=([^\n]+)/.exec(x509.subject)?.[1];
  return cn === undefined ? [] : [cn.trim().toLowerCase().replace(/\.$/, "")];
}
