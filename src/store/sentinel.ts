/**
 * Asking Redis Sentinels which address the master of a name has. One short connection per
 * question, over plain RESP: it is asked once a second, and a long-lived client per Sentinel
 * would need its own reconnection and failover logic for no gain.
 *
 * @module
 */
import type { RedisNode } from "./redis_options.ts";
import { formatHostPort } from "../address.ts";

/**
 * The master's address from the first Sentinel that knows it, or `null` when none answers
 * within `timeoutMs` each.
 *
 * @example
 * ```ts
 * await askSentinels([{ host: "127.0.0.1", port: 26379 }], "mymaster", 1000);
 * // { host: "127.0.0.1", port: 6379 }
 * ```
 */
export async function askSentinels(
  sentinels: readonly RedisNode[],
  name: string,
  timeoutMs: number,
): Promise<RedisNode | null> {
  for (const sentinel of sentinels) {
    try {
      const reply = await command(
        sentinel,
        ["SENTINEL", "get-master-addr-by-name", name],
        timeoutMs,
      );
      const master = parseAddress(reply);
      if (master !== null) return master;
    } catch {
      // Down or slow: ask the next one.
    }
  }
  return null;
}

/**
 * Parses the reply `*2\r\n$N\r\nHOST\r\n$N\r\nPORT\r\n` (`*-1` when the name is unknown).
 *
 * @example
 * ```ts
 * parseAddress("*2\r\n$9\r\n127.0.0.1\r\n$4\r\n6380\r\n"); // { host: "127.0.0.1", port: 6380 }
 * ```
 */
export function parseAddress(reply: string): RedisNode | null {
  const match = /^\*2\r\n\$\d+\r\n([^\r\n]+)\r\n\$\d+\r\n(\d+)\r\n/.exec(reply);
  if (match === null) return null;
  const port = Number(match[2]);
  return port >= 1 && port <= 65535 ? { host: match[1], port } : null;
}

async function command(node: RedisNode, args: string[], timeoutMs: number): Promise<string> {
  const encoder = new TextEncoder();
  let payload = `*${args.length}\r\n`;
  for (const arg of args) payload += `$${encoder.encode(arg).length}\r\n${arg}\r\n`;
  let conn: Deno.TcpConn | undefined;
  let timedOut = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      timedOut = true;
      try {
        conn?.close(); // ends a pending read
      } catch {
        // Already closed.
      }
      reject(new Error(`sentinel ${formatHostPort(node.host, node.port)} timed out`));
    }, timeoutMs);
  });
  deadline.catch(() => {});
  try {
    const connecting = Deno.connect({ hostname: node.host, port: node.port });
    // A connection that opens after the deadline is closed at once.
    connecting.then((c) => timedOut && c.close(), () => {});
    conn = await Promise.race([connecting, deadline]);
    await conn.write(encoder.encode(payload));
    let text = "";
    const buf = new Uint8Array(1024);
    // The reply is small; read until it is complete (or the connection ends).
    while (parseAddress(text) === null && !text.startsWith("*-1") && !text.startsWith("-")) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
      if (text.length > 4096) break;
    }
    return text;
  } finally {
    clearTimeout(timer);
    try {
      conn?.close();
    } catch {
      // Closed by the timer.
    }
  }
}
