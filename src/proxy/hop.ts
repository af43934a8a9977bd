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
  const named = connectionNamed(source);
  const out = new Headers();
  for (const [name, value] of source) {
    // Headers iterates lower-cased names; set-cookie comes as separate entries.
    if (!dropOnForward(name, named, false)) out.append(name, value);
  }
  return out;
}

/** The forwarding headers the proxy sets on every request, replacing any the client sent. */
export interface Forwarded {
  /** `X-Forwarded-For`: the client's value with the client's address appended. */
  readonly for: string;
  /** `X-Forwarded-Host`: the `Host` the client sent. */
  readonly host: string;
  /** `X-Forwarded-Proto`. */
  readonly proto: string;
  /** `X-Real-IP`: the client's address. */
  readonly realIp: string;
  /** A request id the proxy made: sent under `name` in place of any the client sent. */
  readonly requestId?: { readonly name: string; readonly value: string };
}

const REPLACED: ReadonlySet<string> = new Set([
  "x-forwarded-for",
  "x-forwarded-host",
  "x-forwarded-proto",
  "x-real-ip",
]);

/**
 * The header names a `Connection` field lists (lower case), or `undefined` when there is none.
 *
 * @example
 * ```ts
 * connectionNamed(new Headers({ connection: "X-A, close" })); // Set {"x-a", "close"}
 * ```
 */
export function connectionNamed(headers: Headers): Set<string> | undefined {
  const connection = headers.get("connection");
  if (connection === null) return undefined;
  return new Set(
    connection.toLowerCase().split(",").map((s) => s.trim()).filter((s) => s !== ""),
  );
}

/**
 * Whether a client header stays behind when a request is forwarded: hop-by-hop fields, those
 * `named` by `Connection`, and (with `forwarded`) the forwarding headers the proxy replaces.
 *
 * @example
 * ```ts
 * dropOnForward("keep-alive", undefined, true); // true
 * ```
 */
export function dropOnForward(
  name: string,
  named: ReadonlySet<string> | undefined,
  forwarded: boolean,
): boolean {
  return HOP_BY_HOP.has(name) || (named !== undefined && named.has(name)) ||
    (forwarded && REPLACED.has(name));
}

/**
 * The request headers to send upstream, as one `Headers` (for clients that take one, like
 * `fetch`): the client's without hop-by-hop fields, with the forwarding headers set.
 *
 * @example
 * ```ts
 * upstreamHeaders(request.headers, { for: "10.0.0.1", host: "a.test", proto: "http", realIp: "10.0.0.1" });
 * ```
 */
export function upstreamHeaders(source: Headers, forwarded?: Forwarded): Headers {
  const named = connectionNamed(source);
  const out = new Headers();
  for (const [name, value] of source) {
    if (!dropOnForward(name, named, forwarded !== undefined)) out.append(name, value);
  }
  if (forwarded !== undefined) {
    out.set("x-forwarded-for", forwarded.for);
    out.set("x-forwarded-host", forwarded.host);
    out.set("x-forwarded-proto", forwarded.proto);
    out.set("x-real-ip", forwarded.realIp);
    if (forwarded.requestId !== undefined) {
      out.set(forwarded.requestId.name, forwarded.requestId.value);
    }
  }
  return out;
}
