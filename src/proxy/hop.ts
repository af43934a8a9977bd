/**
 * Hop-by-hop headers (RFC 9110 §7.6.1): they describe one connection, so a proxy must not pass
 * them on, nor any header a `Connection` field names.
 *
 * @module
 */

/** Header names that never cross the proxy (lower case). */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

/**
 * Copies `source` into a new `Headers` without hop-by-hop fields and without those named by its
 * `Connection` header.
 *
 * @example
 * ```ts
 * const h = withoutHopByHop(new Headers({ connection: "x-a", "x-a": "1", "x-b": "2" }));
 * h.has("x-a"); // false
 * ```
 */
export function withoutHopByHop(source: Headers): Headers {
  const connection = source.get("connection");
  const named = connection === null ? undefined : new Set(
    connection.toLowerCase().split(",").map((s) => s.trim()).filter((s) => s !== ""),
  );
  const out = new Headers();
  for (const [name, value] of source) {
    // Headers iterates lower-cased names; set-cookie comes as separate entries.
    if (HOP_BY_HOP.has(name) || (named !== undefined && named.has(name))) continue;
    out.append(name, value);
  }
  return out;
}
