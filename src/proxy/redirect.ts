/**
 * `hosts[].redirect_https`: a plain-HTTP request for such a host is answered with a permanent
 * redirect (308, which keeps the method and body) to the same path on `https://`.
 *
 * @module
 */
import { normalizeHost } from "../config/host.ts";

/**
 * The 308 response sending `host` + `target` to HTTPS on `httpsPort` (left out when 443).
 *
 * @example
 * ```ts
 * httpsRedirect("www.example.com:8080", "/a?b=1", 443).headers.get("location");
 * // "https://www.example.com/a?b=1"
 * ```
 */
export function httpsRedirect(host: string, target: string, httpsPort: number): Response {
  const port = httpsPort === 443 ? "" : `:${httpsPort}`;
  return new Response(null, {
    status: 308,
    headers: { location: `https://${normalizeHost(host)}${port}${target}` },
  });
}
