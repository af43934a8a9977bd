/**
 * The `--proxy-protocol` prelude over a real loopback socket pair: what it makes of the client,
 * and which bytes it leaves for the HTTP parser.
 */
import { assertEquals } from "../../tests/_assert.ts";
import { CidrSet } from "./cidr.ts";
import type { ClientFacts } from "./forwarding.ts";
import { Wire } from "./h1/connection.ts";
import { proxyProtocolPrelude } from "./proxy_prelude.ts";
import { ascii, PROXY_V2_LOCAL, proxyV2Tcp4 } from "../../tests/_proxy_header.ts";

const PEER: ClientFacts = { address: "127.0.0.1", proto: "http" };
const HTTP = "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";
const TRUSTED = new CidrSet(["127.0.0.0/8"]);
const NOBODY = new CidrSet(["10.0.0.0/8"]);

/** Runs the prelude on the accepting side while the client writes `parts` (then waits). */
async function prelude(
  trusted: CidrSet,
  parts: Uint8Array[],
  timeoutMs = 5000,
): Promise<{ client: ClientFacts | null; rest: string }> {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const conn = await listener.accept();
  try {
    const writing = (async () => {
      for (const part of parts) {
        await client.write(part);
        // Each part its own segment, so the prelude sees the header arrive in pieces.
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const wire = new Wire(conn, 16);
    const seen = await proxyProtocolPrelude(trusted, timeoutMs)(conn, wire, PEER);
    await writing;
    const rest = new TextDecoder("latin1").decode(wire.buf.subarray(wire.start, wire.end));
    return { client: seen, rest };
  } finally {
    client.close();
    try {
      conn.close();
    } catch { /* closed by the prelude's timer */ }
  }
}

/** A v2 TCP-over-IPv4 header from `source` to 127.0.0.1:8080. */
function v2Tcp4(source: number[], port: number): Uint8Array {
  return proxyV2Tcp4(source, [127, 0, 0, 1], port, 8080);
}

Deno.test("prelude: a trusted peer's v1 header names the client; HTTP bytes stay", async () => {
  const header = "PROXY TCP4 203.0.113.9 127.0.0.1 40000 8080\r\n";
  // Split inside the header and across the header/HTTP boundary.
  const { client, rest } = await prelude(TRUSTED, [
    ascii(header.slice(0, 9)),
    ascii(header.slice(9) + HTTP.slice(0, 4)),
    ascii(HTTP.slice(4)),
  ]);
  assertEquals(client, { address: "203.0.113.9", proto: "http" });
  assertEquals(HTTP.startsWith(rest), true);
  assertEquals(rest.startsWith("GET "), true);
});

Deno.test("prelude: a trusted peer's v2 header, and LOCAL keeps the peer", async () => {
  const v2 = v2Tcp4([198, 51, 100, 7], 1234);
  const { client, rest } = await prelude(TRUSTED, [
    v2.subarray(0, 13),
    v2.subarray(13),
    ascii(HTTP),
  ]);
  assertEquals(client?.address, "198.51.100.7");
  assertEquals(HTTP.startsWith(rest), true, "no header byte left for the HTTP parser");
  assertEquals((await prelude(TRUSTED, [PROXY_V2_LOCAL, ascii(HTTP)])).client, PEER);
});

Deno.test("prelude: a trusted peer without a header is refused", async () => {
  assertEquals((await prelude(TRUSTED, [ascii(HTTP)])).client, null);
  assertEquals((await prelude(TRUSTED, [ascii("PROXY TCP4 1.2.3.4\r\n")])).client, null);
});

Deno.test("prelude: an untrusted peer is plain HTTP, and refused if it sends a header", async () => {
  const plain = await prelude(NOBODY, [ascii("G"), ascii(HTTP.slice(1))]);
  assertEquals(plain.client, PEER);
  assertEquals(plain.rest.startsWith("G"), true);
  const v1 = await prelude(NOBODY, [ascii("PRO"), ascii("XY TCP4 1.2.3.4 5.6.7.8 1 2\r\n" + HTTP)]);
  assertEquals(v1.client, null);
  assertEquals((await prelude(NOBODY, [v2Tcp4([1, 2, 3, 4], 1)])).client, null);
});

Deno.test("prelude: a header that never completes is cut off after the timeout", async () => {
  const started = performance.now();
  const { client } = await prelude(TRUSTED, [ascii("PROXY TCP4 1.2.3.4")], 200);
  assertEquals(client, null);
  assertEquals(performance.now() - started < 5000, true);
});
