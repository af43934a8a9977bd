/**
 * Documented forwarding rules end to end that the main proxy suite does not cover: hop-by-hop
 * headers both ways, error codes, upstream addresses of every kind, the connect timeout.
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { configFile, startBackend } from "./_backend.ts";
import { get, modeTest, startDynlb } from "./_dynlb.ts";
import { rawRequest } from "./_raw.ts";
import { rawServer } from "./_raw_server.ts";

/** One backend per host, each with the given servers. */
function routes(table: Record<string, Array<{ addr: string; port: number }>>) {
  return {
    backends: Object.entries(table).map(([host, servers]) => ({
      backend_name: host,
      servers: servers.map((s) => ({ addr: s.addr, port: s.port })),
    })),
    hosts: Object.keys(table).map((host) => ({ host, backend_name: host })),
  };
}

modeTest("Upgrade, Trailer and Proxy-* headers are removed both ways", "pair", async (mode) => {
  await using echo = await startBackend("echo");
  await using answer = rawServer(
    "HTTP/1.1 200 OK\r\nUpgrade: foo/1\r\nTrailer: x-t\r\nProxy-Authenticate: Basic\r\n" +
      "Proxy-Connection: keep-alive\r\nX-Kept: 1\r\nContent-Length: 2\r\nConnection: close\r\n" +
      "\r\nok",
  );
  const path = await configFile(routes({
    "in.test": [{ addr: "127.0.0.1", port: echo.port }],
    "out.test": [{ addr: "127.0.0.1", port: answer.port }],
  }));
  await using lb = await startDynlb(["--config-file", path], { mode });

  const request = await rawRequest(lb.proxy, [
    "GET / HTTP/1.1",
    "Host: in.test",
    "Upgrade: foo/1",
    "Trailer: x-t",
    "Proxy-Authorization: Basic c2VjcmV0",
    "Proxy-Connection: keep-alive",
    "X-Kept: 1",
  ]);
  assertMatch(request, /^HTTP\/1\.1 200/);
  const seen = echo.seen[0].headers;
  assertEquals(seen.get("x-kept"), "1");
  for (const hop of ["upgrade", "trailer", "proxy-authorization", "proxy-connection"]) {
    assertEquals(seen.get(hop), null, `${hop} reached the server`);
  }

  const response = await rawRequest(lb.proxy, ["GET / HTTP/1.1", "Host: out.test"]);
  const [head, body] = response.split("\r\n\r\n");
  assertMatch(head, /^HTTP\/1\.1 200/);
  assertEquals(body, "ok");
  assertMatch(head, /\r\nx-kept: 1/i);
  assert(
    !/\r\n(upgrade|trailer|proxy-authenticate|proxy-connection):/i.test(head),
    `hop-by-hop response headers reached the client:\n${head}`,
  );
});

modeTest(
  "error answers carry x-dynlb-error; a request without Host is 404",
  "pair",
  async (mode) => {
    const hang = Promise.withResolvers<void>();
    await using slow = await startBackend("slow", async () => {
      await hang.promise;
      return new Response("late");
    });
    const path = await configFile({
      backends: [
        { backend_name: "empty", servers: [] },
        { backend_name: "slow", servers: [{ addr: "127.0.0.1", port: slow.port }] },
      ],
      hosts: [
        { host: "empty.test", backend_name: "empty" },
        { host: "slow.test", backend_name: "slow" },
      ],
    });
    await using lb = await startDynlb([
      "--config-file",
      path,
      "--response-timeout",
      "0.3",
      "--connect-timeout",
      "0.2",
    ], {
      mode,
    });
    try {
      const unknown = await get(lb, "nowhere.test");
      assertEquals([unknown.status, unknown.headers.get("x-dynlb-error")], [404, "unknown-host"]);
      const empty = await get(lb, "empty.test");
      assertEquals([empty.status, empty.headers.get("x-dynlb-error")], [503, "no-server"]);
      const timeout = await get(lb, "slow.test");
      assertEquals([timeout.status, timeout.headers.get("x-dynlb-error")], [
        504,
        "upstream-timeout",
      ]);

      // HTTP/1.0 allows a request without Host; it matches no backend.
      const noHost = await rawRequest(lb.proxy, ["GET / HTTP/1.0"]);
      assertMatch(noHost, /^HTTP\/1\.[01] 404/);
      assertMatch(noHost, /\r\nx-dynlb-error: unknown-host\r\n/i);
      assertMatch(noHost, /request has no Host header/);
    } finally {
      hang.resolve();
    }
  },
);

modeTest(
  "upstreams by IPv6 address (bare and bracketed) and by host name",
  "pair",
  async (mode) => {
    await using v6 = await startBackend("v6", undefined, 0, "::1");
    await using named = await startBackend("named");
    const path = await configFile(routes({
      "v6.test": [{ addr: "::1", port: v6.port }],
      "v6b.test": [{ addr: "[::1]", port: v6.port }],
      "named.test": [{ addr: "localhost", port: named.port }],
    }));
    await using lb = await startDynlb(["--config-file", path], { mode });
    assertEquals((await get(lb, "v6.test")).body, "v6");
    assertEquals((await get(lb, "v6b.test")).body, "v6");
    assertEquals((await get(lb, "named.test")).body, "named");
  },
);

modeTest(
  "--connect-timeout gives up on a server that never accepts (full backlog)",
  // `fetch` has one deadline for connect and response head together (README, Forwarding).
  (mode) => mode.transport === "h1",
  async (mode) => {
    await using stuck = await fullBacklog();
    const path = await configFile(
      routes({ "stuck.test": [{ addr: "127.0.0.1", port: stuck.port }] }),
    );
    await using lb = await startDynlb([
      "--config-file",
      path,
      "--connect-timeout",
      "0.3",
      "--response-timeout",
      "60",
    ], { mode });
    // Without a connect timeout the kernel keeps retrying the SYN for minutes: the guard fails.
    const r = await get(lb, "stuck.test", "/", { signal: AbortSignal.timeout(15_000) });
    assertEquals([r.status, r.headers.get("x-dynlb-error")], [502, "upstream-unreachable"]);
  },
);

/**
 * A loopback listener that never accepts, its accept queue filled by the test's own connections:
 * the kernel drops further SYNs, so a connect hangs as it does to a host that does not answer.
 */
async function fullBacklog(): Promise<{ port: number } & AsyncDisposable> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const fillers: Deno.Conn[] = [];
  let pending: Promise<Deno.Conn> | undefined;
  // Connect until one connect stays pending: then the queue is full (its size is the kernel's
  // and Deno's business; it is 512 here).
  while (pending === undefined && fillers.length < 10_000) {
    const attempt = Deno.connect({ hostname: "127.0.0.1", port });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const settled = await Promise.race([
      attempt,
      new Promise<null>((resolve) => timer = setTimeout(() => resolve(null), 200)),
    ]);
    clearTimeout(timer);
    if (settled !== null) fillers.push(settled);
    // A starved process can run the timer before it sees a connect that went through: the
    // kernel's count of the queue tells (one more than the fillers if this one got in).
    else if (acceptQueue(port) > fillers.length) fillers.push(await attempt);
    else pending = attempt;
  }
  assert(pending !== undefined, "the backlog never filled");
  return {
    port,
    async [Symbol.asyncDispose]() {
      listener.close();
      for (const conn of fillers) conn.close();
      await pending!.then((conn) => conn.close(), () => {});
    },
  };
}

/** Connections waiting in the accept queue of the listener on 127.0.0.1:`port` (Linux `/proc`). */
function acceptQueue(port: number): number {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  for (const line of Deno.readTextFileSync("/proc/net/tcp").split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    // st 0A is LISTEN; for a listener, rx_queue is its accept queue.
    if (fields[1] === local && fields[3] === "0A") return parseInt(fields[4].split(":")[1], 16);
  }
  throw new Error(`no listener on 127.0.0.1:${port}`);
}

modeTest(
  "an absolute-form target routes by its authority, which replaces Host (both listeners)",
  (mode) => mode.transport === "h1",
  async (mode) => {
    await using a = await startBackend("a");
    await using other = await startBackend("other");
    const path = await configFile(routes({
      "a.test": [{ addr: "127.0.0.1", port: a.port }],
      "other.test": [{ addr: "127.0.0.1", port: other.port }],
    }));
    await using lb = await startDynlb(["--config-file", path], { mode });
    const absolute = await rawRequest(lb.proxy, [
      "GET http://other.test/x?y=1 HTTP/1.1",
      "Host: a.test",
    ]);
    assertMatch(absolute, /^HTTP\/1\.1 200[^]*\r\n\r\nother$/);
    const queryOnly = await rawRequest(lb.proxy, [
      "GET http://Other.test?q=1 HTTP/1.1",
      "Host: a.test",
    ]);
    assertMatch(queryOnly, /\r\n\r\nother$/);
    assertEquals(a.seen.length, 0, "the Host header did not route");
    // Deno.serve builds the backend's URL from Host verbatim: path, query and Host as forwarded.
    assertEquals(other.seen.map((s) => [s.url, s.headers.get("host")]), [
      ["http://other.test/x?y=1", "other.test"],
      ["http://Other.test/?q=1", "Other.test"],
    ]);
    const userInfo = await rawRequest(lb.proxy, [
      "GET http://u@other.test/ HTTP/1.1",
      "Host: a.test",
    ]);
    assertMatch(userInfo, /^HTTP\/1\.1 400/);
    // Origin form still routes by Host, verbatim.
    const origin = await rawRequest(lb.proxy, ["GET /o HTTP/1.1", "Host: A.test:80"]);
    assertMatch(origin, /\r\n\r\na$/);
    assertEquals(a.seen[0].headers.get("host"), "A.test:80");
  },
);

modeTest(
  "a chunked upload arrives whole at the server, still chunked (no length added)",
  "every",
  async (mode) => {
    const hex = (bytes: ArrayBuffer) =>
      Array.from(new Uint8Array(bytes), (b) => b.toString(16).padStart(2, "0")).join("");
    await using up = await startBackend("up", async (request) => {
      const digest = hex(await crypto.subtle.digest("SHA-256", await request.arrayBuffer()));
      const framing = `${request.headers.get("transfer-encoding")} ${
        request.headers.get("content-length")
      }`;
      return new Response(`${framing} ${digest}`);
    });
    const path = await configFile(routes({ "up.test": [{ addr: "127.0.0.1", port: up.port }] }));
    await using lb = await startDynlb(["--config-file", path], { mode });
    // 3 MiB in pieces of odd sizes, as a stream: fetch sends it chunked.
    const data = new Uint8Array(3 * 1024 * 1024);
    for (let at = 0; at < data.length; at += 65536) {
      crypto.getRandomValues(data.subarray(at, at + 65536));
    }
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let at = 0, size = 1; at < data.length; at += size, size = (size * 7 + 13) % 40_000) {
          controller.enqueue(data.slice(at, at + size));
        }
        controller.close();
      },
    });
    using client = Deno.createHttpClient({ allowHost: true });
    const response = await fetch(`${lb.proxy}/upload`, {
      method: "POST",
      headers: { host: "up.test" },
      body: stream,
      client,
    });
    const expected = hex(await crypto.subtle.digest("SHA-256", data));
    assertEquals([response.status, await response.text()], [200, `chunked null ${expected}`]);
  },
);
