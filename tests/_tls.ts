/**
 * TLS clients for tests that check the chain: `openssl s_client` (which certificate a handshake
 * gets, for a given SNI name or none) and `curl --cacert --resolve` (a whole HTTPS request).
 *
 * @module
 */
import { X509Certificate } from "node:crypto";

/** What one handshake showed. */
export interface Handshake {
  /** The leaf the server sent. */
  readonly cert: X509Certificate;
  /** Whether the chain verified against the CA file (and the name, when SNI was sent). */
  readonly verified: boolean;
  readonly output: string;
}

/** The handshake ended with no certificate from the server (refused or reset). */
export class NoCertificateError extends Error {
  override name = "NoCertificateError";
}

/**
 * Handshakes with `127.0.0.1:port`, sending `serverName` as SNI (none when `null`), trusting
 * `caFile`; the name is verified against the certificate when given.
 *
 * @example
 * ```ts
 * const { cert, verified } = await handshake(8443, "a.test", ca.certFile);
 * ```
 */
export async function handshake(
  port: number,
  serverName: string | null,
  caFile: string,
): Promise<Handshake> {
  const args = ["s_client", "-connect", `127.0.0.1:${port}`, "-CAfile", caFile];
  args.push(...(serverName === null ? ["-noservername"] : ["-servername", serverName]));
  if (serverName !== null) args.push("-verify_hostname", serverName);
  const out = await new Deno.Command("openssl", {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const output = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(output);
  if (pem === null) throw new NoCertificateError(`no certificate in the handshake:\n${output}`);
  return {
    cert: new X509Certificate(pem[0]),
    verified: /Verify return code: 0 \(ok\)/.test(output),
    output,
  };
}

/**
 * An HTTPS request with curl to `https://NAME:port/path`, NAME resolved to 127.0.0.1, the chain
 * checked against `caFile`. Resolves with the status (0 when curl failed), HTTP version, body and
 * stderr.
 *
 * @example
 * ```ts
 * const { status, body } = await curlHttps(8443, "a.test", "/", ca.certFile);
 * ```
 */
export async function curlHttps(
  port: number,
  name: string,
  path: string,
  caFile: string,
  extra: string[] = [],
): Promise<{ status: number; body: string; error: string; version: string }> {
  const out = await new Deno.Command("curl", {
    args: [
      "-sS",
      "--max-time",
      "10",
      "--cacert",
      caFile,
      "--resolve",
      `${name}:${port}:127.0.0.1`,
      "-w",
      "\n%{http_version} %{http_code}",
      ...extra,
      `https://${name}:${port}${path}`,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const cut = text.lastIndexOf("\n");
  const [version, status] = text.slice(cut + 1).split(" ");
  return {
    status: Number(status) || 0,
    version,
    body: text.slice(0, cut),
    error: new TextDecoder().decode(out.stderr),
  };
}
