/**
 * Where a `Deno.serve` request goes. Deno 2.9.6 builds `request.url` from the request target
 * verbatim when it is in absolute form (`GET http://other.test/x HTTP/1.1` gives
 * `http://other.test/x`, whatever `Host` says) and from `Host` verbatim otherwise (`Host: A.test:80`
 * gives `http://A.test:80/…`); for HTTP/2 from `:authority`. So the URL's authority differs from
 * `Host` exactly when the target was in absolute form (or HTTP/2 `:authority` differs from a
 * `Host` field), and then it routes, as RFC 9112 §3.2.2 says and the `h1` listener does: it
 * replaces `Host` for the server.
 *
 * Without any `Host` field Deno makes up `localhost:<port>` for an origin-form target, which cannot
 * be told from an absolute-form one naming that: such a request routes as having no `Host` (plain
 * HTTP/1.x), or by the URL's authority on HTTPS (HTTP/2 carries no `Host`).
 *
 * @module
 */
import { validAuthority } from "./h1/request_parser.ts";

/**
 * The routing facts of one `Deno.serve` request, or why it is refused.
 *
 * @example
 * ```ts
 * const t = serveTarget(request, "http");
 * if ("refused" in t) console.log(t.refused);
 * ```
 */
export type ServeTarget =
  | {
    /** What routes it: the absolute-form authority or `Host`; `null` when there is none. */
    readonly authority: string | null;
    /** Path and query as the client sent them (origin form). */
    readonly target: string;
    /** The request's headers, or a copy whose `Host` is the authority that routes. */
    readonly headers: Headers;
  }
  | { readonly refused: string };

/**
 * Reads the authority, origin-form target and headers to forward of a `Deno.serve` request.
 *
 * @example
 * ```ts
 * serveTarget(new Request("http://b.test/x", { headers: { host: "a.test" } }), "http");
 * // { authority: "b.test", target: "/x", headers: Headers { host: "b.test" } }
 * ```
 */
export function serveTarget(request: Request, proto: "http" | "https"): ServeTarget {
  const url = request.url;
  const from = url.indexOf("://") + 3;
  let end = from;
  while (end < url.length && url[end] !== "/" && url[end] !== "?") end++;
  const urlAuthority = url.slice(from, end);
  const target = end === url.length
    ? "/"
    : url[end] === "?"
    ? "/" + url.slice(end)
    : url.slice(end);
  let headers = request.headers;
  const host = headers.get("host");
  if (host === urlAuthority) return { authority: host, target, headers };
  if (host === null && proto === "http") return { authority: null, target, headers };
  // Absolute form (or HTTP/2 `:authority`): the authority routes and replaces Host.
  if (!validAuthority(urlAuthority)) return { refused: "invalid authority in request target" };
  headers = new Headers(headers);
  headers.set("host", urlAuthority);
  return { authority: urlAuthority, target, headers };
}
