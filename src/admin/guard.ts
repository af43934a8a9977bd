/**
 * What stands between the admin API and whoever reaches its port:
 *
 * - `Host` must name the admin listener itself (`localhost`, `127.0.0.1`, `[::1]`, its own
 *   address, or a local interface address when it listens on all of them) with its port, else
 *   421 — a web page in a local browser cannot drive the API through DNS rebinding;
 * - a state-changing request with an `Origin` from anywhere else: 403 (a browser form or script
 *   on another site);
 * - with a token, `Authorization: Bearer TOKEN` on every route but `GET /healthz` and the
 *   dashboard page `GET /` (markup and script only: it asks for the token and sends it with
 *   every request for data), else 401 with `WWW-Authenticate`; compared in constant time and
 *   never logged.
 *
 * No CORS header is ever sent, so browsers keep other sites from reading any answer.
 *
 * @module
 */
import { createHash, timingSafeEqual } from "node:crypto";
import type { Context, MiddlewareHandler } from "hono";
import { isLoopback, isWildcard, localAddresses } from "../net/address.ts";

/** How the admin API is protected. */
export interface AdminGuardOptions {
  /** Required bearer token; none means no authentication (loopback only, or --admin-insecure). */
  readonly token?: string;
  /**
   * Where the admin API listens (read per request: the port is known once it listens). Without
   * it, `Host` is not checked (an app called in-process, as unit tests do).
   */
  readonly address?: () => { readonly hostname: string; readonly port: number };
}

/** Methods that never change anything. */
const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * The admin API's guard middleware.
 *
 * @example
 * ```ts
 * app.use(adminGuard({ token: "s3cret", address: () => ({ hostname: "127.0.0.1", port: 9001 }) }));
 * ```
 */
export function adminGuard(options: AdminGuardOptions): MiddlewareHandler {
  const expected = options.token === undefined ? undefined : digest(options.token);
  const interfaces = localAddresses();
  return async (c, next) => {
    const open = c.req.method === "GET" && c.req.path === "/healthz";
    const listening = options.address?.();
    const ownHost = (value: string) =>
      listening === undefined ||
      isOwnHost(value, listening.hostname, listening.port, interfaces);
    if (!open && !ownHost(c.req.header("host") ?? "")) {
      return c.json({
        error: "Host does not name this admin API (use localhost or its address and port)",
      }, 421);
    }
    const origin = c.req.header("origin");
    if (!SAFE_METHODS.has(c.req.method) && origin !== undefined && !sameOrigin(origin, ownHost)) {
      return c.json({ error: "cross-origin request refused" }, 403);
    }
    const page = c.req.method === "GET" && c.req.path === "/";
    if (expected !== undefined && !open && !page && !authorized(c, expected)) {
      const error = c.req.header("authorization") === undefined ? "" : ', error="invalid_token"';
      c.header("WWW-Authenticate", `Bearer realm="dynlb admin"${error}`);
      return c.json({ error: "missing or wrong bearer token" }, 401);
    }
    await next();
  };
}

function authorized(c: Context, expected: Buffer): boolean {
  const match = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(c.req.header("authorization") ?? "");
  // Hashing first makes the comparison's time independent of where the texts differ and of
  // their lengths.
  return match !== null && timingSafeEqual(digest(match[1]), expected);
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

/** Whether a `Host` value names the admin listener `hostname:port`. */
function isOwnHost(
  value: string,
  hostname: string,
  port: number,
  interfaces: readonly string[],
): boolean {
  const match = /^(\[[0-9a-fA-F:.]+\]|[^:\[\]]+)(?::(\d{1,5}))?$/.exec(value.trim());
  if (match === null) return false;
  const name = match[1].toLowerCase().replace(/^\[(.*)\]$/, "$1");
  if ((match[2] === undefined ? 80 : Number(match[2])) !== port) return false;
  // Only names that cannot be re-pointed by a foreign DNS server: loopback, the listener's own
  // address, and this machine's interface addresses when it listens on all of them.
  if (name === "localhost" || name === "127.0.0.1" || name === "::1") return true;
  if (name === hostname.toLowerCase().replace(/^\[(.*)\]$/, "$1")) return true;
  if (isLoopback(hostname) && isLoopback(name)) return true;
  return isWildcard(hostname) && interfaces.includes(name);
}

function sameOrigin(origin: string, ownHost: (host: string) => boolean): boolean {
  let url: URL;
  try {
    url = new URL(origin);
  } catch {
    return false; // "null" (sandboxed frames, file: pages) or garbage
  }
  // The admin API speaks plain HTTP: an https: origin is another origin.
  return url.protocol === "http:" && ownHost(url.port === "" ? `${url.hostname}:80` : url.host);
}
