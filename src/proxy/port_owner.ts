/**
 * Whether some process already listens on a TCP port, asked of the kernel's socket table
 * (`/proc/net/tcp`, `/proc/net/tcp6`) instead of by binding: proxy workers share their port with
 * `SO_REUSEPORT`, so their own bind cannot tell "free" from "held by another dynlb that also set
 * it"; and a probe listener would, for an instant, accept connections it then resets.
 *
 * @module
 */

const LISTEN = "0A";

/**
 * `true` when a listening socket on this machine conflicts with binding `hostname:port`;
 * `undefined` when the socket table cannot be read (not Linux).
 *
 * @example
 * ```ts
 * if (await portHeld("0.0.0.0", 8080)) console.error("8080 is in use");
 * ```
 */
export async function portHeld(hostname: string, port: number): Promise<boolean | undefined> {
  const ipv6 = hostname.includes(":");
  const wanted = ipv6 ? null : ipv4Hex(hostname);
  let readable = false;
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = await Deno.readTextFile(file);
    } catch {
      continue;
    }
    readable = true;
    const v6File = file.endsWith("6");
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 4 || fields[3] !== LISTEN) continue;
      const [addr, portHex] = fields[1].split(":");
      if (parseInt(portHex, 16) !== port) continue;
      const wildcard = /^0+$/.test(addr);
      if (v6File) {
        // A dual-stack `::` listener holds the port for every address; others only for IPv6.
        if (wildcard || ipv6) return true;
      } else if (ipv6 || wildcard || wanted === null || wanted === "00000000" || addr === wanted) {
        return true;
      }
    }
  }
  return readable ? false : undefined;
}

/** An IPv4 address as the kernel table writes it (host byte order, little-endian), or null. */
function ipv4Hex(hostname: string): string | null {
  const parts = hostname.split(".").map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) {
    return null;
  }
  return parts.reverse().map((p) => p.toString(16).padStart(2, "0")).join("").toUpperCase();
}
