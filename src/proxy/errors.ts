/**
 * The proxy's own answers: short plain-text bodies that say what happened, with an
 * `x-dynlb-error` code for scripts. Nothing here ever carries a stack trace.
 *
 * @module
 */

/** Machine-readable reason of an answer the proxy made itself. */
export type ProxyErrorCode =
  | "unknown-host"
  | "no-server"
  | "upstream-unreachable"
  | "upstream-timeout"
  | "internal"
  | "bad-request"
  | "upgrade-not-supported";

const STATUS: Record<ProxyErrorCode, number> = {
  "unknown-host": 404,
  "no-server": 503,
  "upstream-unreachable": 502,
  "upstream-timeout": 504,
  "internal": 500,
  "bad-request": 400,
  "upgrade-not-supported": 501,
};

/**
 * Builds an error response: `status`, `text/plain`, the message and the code header.
 *
 * @example
 * ```ts
 * proxyError("unknown-host", 'no backend for host "example.org"').status; // 404
 * ```
 */
export function proxyError(code: ProxyErrorCode, message: string): Response {
  return new Response(`dynlb: ${message}\n`, {
    status: STATUS[code],
    headers: {
      "content-type": "text/plain; charset=utf-8",
      "x-dynlb-error": code,
      "cache-control": "no-store",
    },
  });
}
