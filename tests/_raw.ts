/**
 * A raw HTTP/1.1 exchange over TCP, for what `fetch` would normalise away (`/a/../b`, odd
 * header casing, hop-by-hop headers).
 *
 * @module
 */

/**
 * Sends `head` (CRLF lines, without the final blank line) plus `Connection: close` and `body`
 * to `http://host:port` and returns everything the server wrote until it closed.
 *
 * @example
 * ```ts
 * const text = await rawRequest(lb.proxy, ["GET /a/../b HTTP/1.1", "Host: x"]);
 * ```
 */
export async function rawRequest(
  origin: string,
  head: readonly string[],
  body = "",
): Promise<string> {
  const { hostname, port } = new URL(origin);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  try {
    await conn.write(
      new TextEncoder().encode([...head, "Connection: close", "", body].join("\r\n")),
    );
    return await new Response(conn.readable).text();
  } catch (err) {
    conn.close();
    throw err;
  }
}
