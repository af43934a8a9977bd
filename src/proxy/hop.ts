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
 * Whether a listener's header pair stays behind when forwarded: only the forwarding headers the
 * proxy replaces (the h1 parser already dropped hop-by-hop fields).
 *
 * @example
 * ```ts
 * isReplacedForwardingHeader("x-real-ip"); // true
 * ```
 */
export function isReplacedForwardingHeader(name: string): boolean {
  return REPLACED.has(name);
}

/**
 * Request headers as a listener hands them over: a `Headers` from `Deno.serve` (hop-by-hop fields
 * and `Content-Length` still in it), or `[lower-case name, value]` pairs from the h1 listener's
 * parser, which already left out hop-by-hop fields, those named by `Connection`,
 * `Content-Length`, `Transfer-Encoding` and `Expect`.
 *
 * @example
 * ```ts
 * const list: HeaderList = [["host", "a.test"], ["accept", "*\/*"]];
 * ```
 */
export type HeaderList = Headers | readonly (readonly [string, string])[];

/**
 * The value of a field of a {@link HeaderList} (`name` lower case); the first one for pairs.
 *
 * @example
 * ```ts
 * headerValue([["host", "a.test"]], "host"); // "a.test"
 * ```
 */
export function headerValue(list: HeaderList, name: string): string | null {
  if (list instanceof Headers) return list.get(name);
  for (let i = 0; i < list.length; i++) if (list[i][0] === name) return list[i][1];
  return null;
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
export function upstreamHeaders(source: HeaderList, forwarded?: Forwarded): Headers {
  const named = source instanceof Headers ? connectionNamed(source) : undefined;
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
