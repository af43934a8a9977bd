/**
 * Network addresses as text: the one place that knows an IPv6 address needs brackets before a
 * port.
 *
 * @module
 */

/**
 * A host for a URL or `host:port`: IPv6 addresses in brackets, others as they are.
 *
 * @example
 * ```ts
 * bracketHost("::1"); // "[::1]"
 * bracketHost("10.0.0.1"); // "10.0.0.1"
 * ```
 */
export function bracketHost(host: string): string {
  return host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
}

/**
 * `host:port`, or `[v6]:port`.
 *
 * @example
 * ```ts
 * formatHostPort("::1", 8080); // "[::1]:8080"
 * formatHostPort("127.0.0.1", 80); // "127.0.0.1:80"
 * ```
 */
export function formatHostPort(host: string, port: number): string {
  return `${bracketHost(host)}:${port}`;
}
