/**
 * `--proxy-protocol`, end to end: dynlb (h1 listener) as a subprocess, a client that writes real
 * PROXY v1 and v2 headers before its HTTP, and a backend that records what it was told.
 */
import { assertEquals, assertMatch } from "./_assert.ts";
import { configFile, configOf, startBackend } from "./_backend.ts";
import { eventually, startDynlb } from "./_dynlb.ts";
import { concat, PROXY_V2_LOCAL, proxyV2Tcp6 } from "./_proxy_header.ts";

const encoder = new TextEncoder();

/** Writes `bytes` on a fresh connection to `origin` and reads until the server closes. */
async function exchange(origin: string, bytes: Uint8Array): Promise<string> {
  const { hostname, port } = new URL(origin);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  try {
    await conn.write(bytes);
    return await new Response(conn.readable).text();
  } catch (err) {
    try {
      conn.close();
    } catch { /* closed */ }
    // A connection reset is a refusal too.
    if (err instanceof Deno.errors.ConnectionReset) return "";
    throw err;
  }
}

function request(extra = "", close = true): Uint8Array {
  return encoder.encode(
    `GET / HTTP/1.1\r\nHost: pp.test\r\n${extra}${close ? "Connection: close\r\n" : ""}\r\n`,
  );
}

/** A v2 PROXY header for TCP over IPv6 from `source` (16 bytes) to [::1]:8080. */
function v2Tcp6(source: number[]): Uint8Array {
  return proxyV2Tcp6(source, [...new Array(15).fill(0), 1], 40000, 8080);
}

/** dynlb with `--proxy-protocol`, trusting `trusted`, routing `pp.test` to `port`. */
async function startBehind(port: number, trusted: string, ...more: string[]) {
  const path = await configFile(configOf({ "pp.test": [{ port }] }));
  return await startDynlb([
    "--config-file",
    path,
    "--trusted-proxies",
    trusted,
    "--proxy-protocol",
    ...more,
  ]);
}

Deno.test("proxy protocol: the address a v1 or v2 header carries is forwarded and logged", async () => {
  await using backend = await startBackend("pp");
  const log = `${await Deno.makeTempDir({ prefix: "dynlb-pp-" })}/access.log`;
  await using lb = await startBehind(backend.port, "127.0.0.0/8", "--access-log", log);
  const v1 = encoder.encode("PROXY TCP4 203.0.113.9 127.0.0.1 40000 8080\r\n");
  // The PROXY source is the HTTP client: it is no trusted proxy, so its X-Forwarded-For goes.
  const answer = await exchange(lb.proxy, concat(v1, request("X-Forwarded-For: 6.6.6.6\r\n")));
  assertMatch(answer, /^HTTP\/1\.1 200/);
  let seen = backend.seen.at(-1)!.headers;
  assertEquals(seen.get("x-forwarded-for"), "203.0.113.9");
  assertEquals(seen.get("x-real-ip"), "203.0.113.9");

  const source = [0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 7];
  assertMatch(await exchange(lb.proxy, concat(v2Tcp6(source), request())), /^HTTP\/1\.1 200/);
  seen = backend.seen.at(-1)!.headers;
  assertEquals(seen.get("x-forwarded-for"), "2001:db8::7");

  // A PROXY source inside the trusted ranges is a trusted proxy: its header is appended to.
  const trustedSource = encoder.encode("PROXY TCP4 127.0.0.5 127.0.0.1 40000 8080\r\n");
  await exchange(lb.proxy, concat(trustedSource, request("X-Forwarded-For: 6.6.6.6\r\n")));
  assertEquals(backend.seen.at(-1)!.headers.get("x-forwarded-for"), "6.6.6.6, 127.0.0.5");

  // One header per connection: every keep-alive request on it is from that client.
  const before = backend.seen.length;
  const two = await exchange(lb.proxy, concat(v1, request("", false), request()));
  assertEquals(two.match(/HTTP\/1\.1 200/g)?.length, 2);
  assertEquals(
    backend.seen.slice(before).map((s) => s.headers.get("x-real-ip")),
    ["203.0.113.9", "203.0.113.9"],
  );
  // The access log names the client the header carried, not the balancer.
  let clients: unknown[] = [];
  await eventually(
    async () => {
      const text = await Deno.readTextFile(log).catch(() => "");
      clients = text.split("\n").filter((l) => l !== "").map((l) => JSON.parse(l).client);
      return clients.length === 5;
    },
    5000,
    "five access log lines",
  );
  // Each worker isolate batches its own lines, so the file's order is not the requests' order.
  assertEquals(clients.toSorted(), [
    "127.0.0.5",
    "2001:db8::7",
    "203.0.113.9",
    "203.0.113.9",
    "203.0.113.9",
  ]);
  await Deno.remove(log.slice(0, log.lastIndexOf("/")), { recursive: true });
});

Deno.test("proxy protocol: a trusted peer without a header is refused, LOCAL is served", async () => {
  await using backend = await startBackend("pp");
  await using lb = await startBehind(backend.port, "127.0.0.1");
  assertEquals(await exchange(lb.proxy, request()), "");
  assertEquals(
    await exchange(lb.proxy, concat(encoder.encode("PROXY TCP4 1.2.3.4\r\n"), request())),
    "",
  );
  assertEquals(backend.seen.length, 0, "nothing reached the backend");
  // LOCAL: the balancer's own health check, from its own address.
  assertMatch(await exchange(lb.proxy, concat(PROXY_V2_LOCAL, request())), /^HTTP\/1\.1 200/);
  assertEquals(backend.seen.at(-1)!.headers.get("x-real-ip"), "127.0.0.1");
});

Deno.test("proxy protocol: an untrusted peer is plain HTTP, and refused if it sends a header", async () => {
  await using backend = await startBackend("pp");
  const path = await configFile(configOf({ "pp.test": [{ port: backend.port }] }));
  // The test client (127.0.0.1) is not in the trusted range.
  await using lb = await startDynlb([
    "--config-file",
    path,
    "--trusted-proxies",
    "::1",
    "--proxy-protocol",
  ]);
  assertMatch(await exchange(lb.proxy, request()), /^HTTP\/1\.1 200/);
  assertEquals(backend.seen.at(-1)!.headers.get("x-real-ip"), "127.0.0.1");
  const spoof = encoder.encode("PROXY TCP4 10.9.9.9 127.0.0.1 40000 8080\r\n");
  assertEquals(await exchange(lb.proxy, concat(spoof, request())), "");
  assertEquals(backend.seen.length, 1, "the spoofing connection reached nothing");
});

Deno.test("proxy protocol: not available with the serve listener (start-up error)", async () => {
  const path = await configFile(configOf({}));
  const error = await startDynlb([
    "--config-file",
    path,
    "--listener",
    "serve",
    "--trusted-proxies",
    "127.0.0.1",
    "--proxy-protocol",
  ]).then(() => "started", (err: Error) => err.message);
  assertMatch(error, /exited \(1\)/);
  assertMatch(error, /--proxy-protocol needs the h1 listener/);
});
