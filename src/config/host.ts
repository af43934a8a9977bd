/**
 * Host normalisation shared by the config compiler and the request path, so that a configured
 * `WWW.Example.com.` and a request's `www.example.com:8080` meet on the same key.
 *
 * @module
 */

/**
 * Lower-cases a `Host` value and drops its port and trailing dot. IPv6 literals keep their
 * brackets (`[::1]:8080` → `[::1]`).
 *
 * @example
 * ```ts
 * normalizeHost("WWW.Test1.com.:8080"); // "www.test1.com"
 * ```
 */
export function normalizeHost(raw: string): string {
  let end = raw.length;
  if (raw.charCodeAt(0) === 91 /* [ */) {
    const close = raw.indexOf("]");
    if (close !== -1) end = close + 1;
  } else {
    const colon = raw.indexOf(":");
    if (colon !== -1) end = colon;
  }
  if (end > 0 && raw.charCodeAt(end - 1) === 46 /* . */) end--;
  const host = end === raw.length ? raw : raw.slice(0, end);
  return host.trim().toLowerCase();
}
