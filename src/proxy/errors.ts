/**
 * The proxy's own answers: short plain-text bodies that say what happened, with an
 * `x-dynlb-error` code for scripts. Nothing here ever carries a stack trace.
 *
 * @module
 */
import { replyToResponse } from "./reply.ts";
import type { UpstreamReply } from "./transport.ts";

/** Machine-readable reason of an answer the proxy made itself. */
export type ProxyErrorCode =
  | "unknown-host"
  | "no-server"
  | "upstream-unreachable"
  | "upstream-timeout"
  | "internal"
  | "bad-request"
  | "method-not-allowed"
  | "request-timeout"
  | "target-too-long"
  | "head-too-large"
  | "not-implemented"
  | "version-not-supported"
  | "upgrade-not-supported";

const STATUS: Record<ProxyErrorCode, number> = {
  "unknown-host": 404,
  "no-server": 503,
  "upstream-unreachable": 502,
  "upstream-timeout": 504,
  "internal": 500,
  "bad-request": 400,
  "method-not-allowed": 405,
  "request-timeout": 408,
  "target-too-long": 414,
  "head-too-large": 431,
  "not-implemented": 501,
  "version-not-supported": 505,
  "upgrade-not-supported": 501,
};

const REASONS: Record<number, string> = {
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  414: "URI Too Long",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

/** The error code for a status the request parser refuses with. */
const CODE_OF_STATUS: Record<number, ProxyErrorCode> = {
  400: "bad-request",
  405: "method-not-allowed",
  408: "request-timeout",
  414: "target-too-long",
  431: "head-too-large",
  501: "not-implemented",
  505: "version-not-supported",
};

/**
 * The code of a status the h1 listener answers a refused request with.
 *
 * @example
 * ```ts
 * codeOfStatus(431); // "head-too-large"
 * ```
 */
export function codeOfStatus(status: number): ProxyErrorCode {
  return CODE_OF_STATUS[status] ?? "bad-request";
}

const encoder = new TextEncoder();

/**
 * Builds an error answer as a reply (what the h1 listener writes): `status`, `text/plain`, the
 * message and the code header.
 *
 * @example
 * ```ts
 * errorReply("no-server", 'no server available for backend "b"').status; // 503
 * ```
 */
export function errorReply(code: ProxyErrorCode, message: string): UpstreamReply {
  const status = STATUS[code];
  const body = encoder.encode(`dynlb: ${message}\n`);
  return {
    status,
    reason: REASONS[status] ?? "",
    headers: [
      ["content-type", "text/plain; charset=utf-8"],
      ["x-dynlb-error", code],
      ["cache-control", "no-store"],
    ],
    contentLength: body.length,
    body,
  };
}

/**
 * Builds an error response (for `Deno.serve`).
 *
 * @example
 * ```ts
 * proxyError("unknown-host", 'no backend for host "example.org"').status; // 404
 * ```
 */
export function proxyError(code: ProxyErrorCode, message: string): Response {
  return replyToResponse(errorReply(code, message));
}
