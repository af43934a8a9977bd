/**
 * Sticky sessions (`backends[].sticky`): the first response sets a cookie naming the server that
 * answered, and later requests carrying it go to that server while it is up, whatever the
 * balancer. The cookie holds an opaque token, not an address: a hash of the backend's name and
 * the server's `addr:port`, so it stays valid across config changes that keep the server, and
 * across dynlb instances and worker isolates.
 *
 * @module
 */
import { keyHash } from "./key_hash.ts";
import type { Upstream } from "./upstream.ts";

/** `backends[].sticky` as validated. */
export interface StickyConfig {
  /** Cookie name. */
  readonly cookie: string;
  /** Cookie lifetime in seconds; absent: a session cookie. */
  readonly max_age?: number;
}

/**
 * The token of `server` in `backend`'s sticky cookie (16 hex digits).
 *
 * @example
 * ```ts
 * stickyToken("web", upstreamOf("10.0.0.1", 80, 1)); // e.g. "9c1e07a2b35d4f10"
 * ```
 */
export function stickyToken(backend: string, server: Upstream): string {
  const text = `${backend}\n${server.key}`;
  return hex8(keyHash(text, 0x5bd1e995)) + hex8(keyHash(text, 0x27d4eb2f));
}

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

/**
 * The server tokens of one backend and the `Set-Cookie` values naming them, computed once per
 * config.
 *
 * @example
 * ```ts
 * const sticky = new StickyTable("web", servers, { cookie: "srv", max_age: 3600 });
 * sticky.setCookie(servers[0]); // "srv=…; Path=/; Max-Age=3600; HttpOnly; SameSite=Lax"
 * ```
 */
export class StickyTable {
  /** Cookie name. */
  readonly cookie: string;
  readonly #byToken = new Map<string, Upstream>();
  readonly #tokenOf = new Map<Upstream, string>();
  readonly #setCookieOf = new Map<Upstream, string>();
  readonly #secureSetCookieOf = new Map<Upstream, string>();

  constructor(backend: string, servers: readonly Upstream[], config: StickyConfig) {
    this.cookie = config.cookie;
    const maxAge = config.max_age === undefined ? "" : `; Max-Age=${config.max_age}`;
    for (const server of servers) {
      const token = stickyToken(backend, server);
      this.#byToken.set(token, server);
      this.#tokenOf.set(server, token);
      const value = `${config.cookie}=${token}; Path=/${maxAge}; HttpOnly; SameSite=Lax`;
      this.#setCookieOf.set(server, value);
      this.#secureSetCookieOf.set(server, `${value}; Secure`);
    }
  }

  /** The server a cookie value names, if any. */
  serverOf(token: string): Upstream | undefined {
    return this.#byToken.get(token);
  }

  /** The token naming `server`. */
  tokenOf(server: Upstream): string | undefined {
    return this.#tokenOf.get(server);
  }

  /** The `Set-Cookie` value naming `server`; `secure` (over HTTPS) adds `Secure`. */
  setCookie(server: Upstream, secure = false): string | undefined {
    return (secure ? this.#secureSetCookieOf : this.#setCookieOf).get(server);
  }
}
