/**
 * `hash`: consistent hashing of a request key (`hash_on`: the client IP, a header, a cookie or
 * the URI) onto a ring of server points, as nginx's `hash … consistent` (Ketama) and Pingora's
 * `KetamaHashing`. Each server owns points in proportion to its weight, ~{@link POINTS} per
 * server on average, placed by hashing its `addr:port` — not its position — so every isolate and
 * every config listing the server puts them in the same places. A key goes to the owner of the
 * first point at or after the key's hash.
 *
 * When a server leaves (removed, or down: the ring is rebuilt over the servers up), only the keys
 * on its points move, each to the next point's owner: ~1/N of the keys. When it comes back they
 * return. A request without the key (no such header or cookie) is balanced round-robin, as nginx
 * does with an empty key. A pick is a binary search: O(log points).
 *
 * @module
 */
import { keyHash } from "./key_hash.ts";
import { RoundRobinSelector } from "./round_robin.ts";
import { isToken, type RequestContext, type Selector, type SelectorInput } from "./selector.ts";
import type { Upstream } from "./upstream.ts";

/** Average ring points per server (Ketama's 160). */
export const POINTS = 160;

/** What the key of a request is, parsed from `hash_on`. */
export type HashOn =
  | { readonly kind: "client_ip" }
  | { readonly kind: "uri" }
  | { readonly kind: "header"; readonly name: string }
  | { readonly kind: "cookie"; readonly name: string };

/**
 * Parses a `hash_on` value: `client_ip`, `uri`, `header:NAME` or `cookie:NAME`; `undefined` when
 * it is none of those.
 *
 * @example
 * ```ts
 * parseHashOn("header:X-User"); // { kind: "header", name: "x-user" }
 * ```
 */
export function parseHashOn(text: string): HashOn | undefined {
  if (text === "client_ip" || text === "uri") return { kind: text };
  const colon = text.indexOf(":");
  if (colon === -1) return undefined;
  const kind = text.slice(0, colon);
  const name = text.slice(colon + 1);
  if (!isToken(name)) return undefined;
  if (kind === "header") return { kind, name: name.toLowerCase() };
  if (kind === "cookie") return { kind, name };
  return undefined;
}

/** The request's key, or `null` when the request has none. */
function keyOf(on: HashOn, context: RequestContext): string | null {
  switch (on.kind) {
    case "client_ip":
      return context.clientIp();
    case "uri":
      return context.uri();
    case "header":
      return context.header(on.name);
    case "cookie":
      return context.cookie(on.name);
  }
}

/**
 * Consistent hashing over the servers up.
 *
 * @example
 * ```ts
 * const selector = new HashSelector({ servers, all: servers, memory }, { kind: "client_ip" });
 * selector.pick(context); // the same server for the same client, while it is up
 * ```
 */
export class HashSelector implements Selector {
  readonly #on: HashOn;
  /** Point positions, ascending. */
  readonly #points: Uint32Array;
  /** Owner of each point. */
  readonly #owners: Upstream[];
  /** For requests without a key. */
  readonly #fallback: RoundRobinSelector;

  constructor(input: SelectorInput, on: HashOn) {
    this.#on = on;
    this.#fallback = new RoundRobinSelector(input);
    // Shares come from every configured server, so a server going down moves no other points.
    const total = input.all.reduce((sum, s) => sum + s.weight, 0);
    const placed: Array<[number, Upstream]> = [];
    for (const server of input.servers) {
      const count = Math.max(1, Math.round(POINTS * input.all.length * server.weight / total));
      for (let i = 0; i < count; i++) placed.push([keyHash(`${server.key}-${i}`), server]);
    }
    // Ties (a 32-bit collision) are broken by key, so every isolate builds the same ring.
    placed.sort((x, y) => x[0] - y[0] || (x[1].key < y[1].key ? -1 : x[1].key > y[1].key ? 1 : 0));
    this.#points = Uint32Array.from(placed, (p) => p[0]);
    this.#owners = placed.map((p) => p[1]);
  }

  pick(context: RequestContext, exclude?: readonly Upstream[]): Upstream | undefined {
    const key = keyOf(this.#on, context);
    if (key === null) return this.#fallback.pick(context, exclude);
    return this.serverFor(key, exclude);
  }

  /** The server owning `key`, skipping `exclude`. */
  serverFor(key: string, exclude?: readonly Upstream[]): Upstream | undefined {
    const points = this.#points;
    const n = points.length;
    if (n === 0) return undefined;
    const h = keyHash(key);
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (points[mid] < h) lo = mid + 1;
      else hi = mid;
    }
    const owners = this.#owners;
    if (exclude === undefined || exclude.length === 0) return owners[lo === n ? 0 : lo];
    for (let k = 0; k < n; k++) {
      const owner = owners[(lo + k) % n];
      if (!exclude.includes(owner)) return owner;
    }
    return undefined;
  }

  begin(_server: Upstream): void {}

  end(_server: Upstream, _ms: number, _ok: boolean): void {}
}
