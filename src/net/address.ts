/**
 * Facts about listening and connecting addresses that the admin guard, the start-up checks and
 * the config's self-reference check share: which names are this machine, and how an address is
 * written with its port.
 *
 * @module
 */

/** Strips the brackets of an IPv6 literal and lower-cases; `[::1]` → `::1`. */
function bare(hostname: string): string {
  return hostname.trim().toLowerCase().replace(/^\[(.*)\]$/, "$1").replace(/\.$/, "");
}

/**
 * Whether `hostname` is a loopback name or address: `localhost`, `127.0.0.0/8`, `::1` (also
 * as `::ffff:127.x.x.x`).
 *
 * @example
 * ```ts
 * isLoopback("127.0.0.1"); // true
 * isLoopback("[::1]"); // true
 * isLoopback("0.0.0.0"); // false
 * ```
 */
export function isLoopback(hostname: string): boolean {
  const h = bare(hostname);
  return h === "localhost" || h === "::1" || h === "0:0:0:0:0:0:0:1" ||
    /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Whether listening on `hostname` means every local address (`0.0.0.0`, `::`).
 *
 * @example
 * ```ts
 * isWildcard("0.0.0.0"); // true
 * ```
 */
export function isWildcard(hostname: string): boolean {
  const h = bare(hostname);
  return h === "0.0.0.0" || h === "::" || h === "" || h === "0:0:0:0:0:0:0:0";
}

/**
 * Whether connecting to `addr` reaches a listener bound to `listening` (same port assumed):
 * the same address; any loopback name for a loopback listener (127.0.0.1, localhost and ::1 are
 * treated as one, erring on the side of a match); any local address — loopback, an interface's
 * address or `0.0.0.0` — for a wildcard listener.
 *
 * @example
 * ```ts
 * reachesListener("localhost", "127.0.0.1"); // true
 * reachesListener("10.0.0.5", "0.0.0.0", ["10.0.0.5"]); // true
 * ```
 */
export function reachesListener(
  addr: string,
  listening: string,
  localAddresses: readonly string[] = [],
): boolean {
  const target = bare(addr);
  const bound = bare(listening);
  if (target === bound) return true;
  // Connecting to 0.0.0.0 or :: reaches this machine (Linux treats it as a local address).
  const targetLocal = isLoopback(target) || isWildcard(target);
  if (isWildcard(bound)) {
    return targetLocal || localAddresses.some((a) => bare(a) === target);
  }
  if (isLoopback(bound)) return targetLocal;
  return isWildcard(target) && localAddresses.some((a) => bare(a) === bound);
}

/**
 * This machine's interface addresses (empty when they cannot be listed).
 *
 * @example
 * ```ts
 * localAddresses(); // ["127.0.0.1", "10.0.0.5", "::1", …]
 * ```
 */
export function localAddresses(): string[] {
  try {
    return Deno.networkInterfaces().map((i) => i.address.replace(/%.*$/, ""));
  } catch {
    return [];
  }
}
