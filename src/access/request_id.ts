/**
 * Request ids: the client's `X-Request-Id` is kept when it is a sane token (1–128 visible
 * ASCII characters, so it cannot break a log line or a header), otherwise a new UUID is made.
 *
 * @module
 */
import { type HeaderList, headerValue } from "../proxy/hop.ts";

/** Longest client id kept. */
export const MAX_REQUEST_ID = 128;

/**
 * Whether a client-supplied id can be passed on as it is.
 *
 * @example
 * ```ts
 * saneRequestId("abc-123"); // true
 * saneRequestId("a b"); // false
 * ```
 */
export function saneRequestId(value: string): boolean {
  const n = value.length;
  if (n === 0 || n > MAX_REQUEST_ID) return false;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

/**
 * The client's request id when it sent a sane one, else `null` (then the proxy makes one with
 * `crypto.randomUUID()` and sends it upstream in place of the client's).
 *
 * @example
 * ```ts
 * clientRequestId(new Headers({ "x-request-id": "abc" }), "x-request-id"); // "abc"
 * clientRequestId(new Headers(), "x-request-id"); // null
 * ```
 */
export function clientRequestId(headers: HeaderList, name: string): string | null {
  const given = headerValue(headers, name);
  return given !== null && saneRequestId(given) ? given : null;
}
