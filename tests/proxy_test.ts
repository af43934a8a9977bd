/**
 * Forwarding, routing and error answers of the proxy, end to end: `main.ts` as a subprocess in
 * front of real loopback backends. Runs in every data-plane mode (see `MODES` in `_dynlb.ts`).
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { configFile, configOf, deadPort, startBackend } from "./_backend.ts";
import { get, type Mode, modeTest, startDynlb } from "./_dynlb.ts";
import { rawRequest } from "./_raw.ts";
import { rawServer } from "./_raw_server.ts";

/** Starts dynlb in `mode` on the config file `path`, with `more` flags. */
function proxyIn(mode: Mode, path: string, ...more: string[]) {
  return startDynlb(["--config-file", path, ...more], { mode });
}

modeTest(
  "routes by Host, case-insensitively, ignoring port and trailing dot",
  "every",
  async (mode) => {
    await using a = await startBackend("a");
    await using b = await startBackend("b");
    const path = await configFile(configOf({
      "a.test": [{ port: a.port }],
      "b.test": [{ port: b.port }],
    }));
    await using lb = await proxyIn(mode, path);
    assertEquals((await get(lb, "a.test")).body, "a");
    assertEquals((await get(lb, "B.Test")).body, "b");
    assertEquals((await get(lb, "a.test:8080")).body, "a");
    assertEquals((await get(lb, "b.test.")).body, "b");
    const unknown = await get(lb, "c.test");
    assertEquals(unknown.status, 404);
    assertMatch(unknown.body, /no backend for host "c\.test"/);
  },
);

modeTest("weights 10:1 give 10:1 in every 11 requests, spread out", "every", async (mode) => {
  await using a = await startBackend("a");
  await using b = await startBackend("b");
  const path = await configFile(configOf({
    "w.test": [{ port: a.port, weight: 10 }, { port: b.port, weight: 1 }],
  }));
  await using lb = await proxyIn(mode, path);
  let order = "";
  for (let i = 0; i < 33; i++) order += (await get(lb, "w.test")).body;
  // nginx's smooth weighted round-robin puts the light server in the middle of each cycle.
  assertEquals(order, "aaaaabaaaaa".repeat(3));
});

modeTest(
  "503 without servers, 502 when every server is dead, 504 on timeout",
  "every",
  async (mode) => {
    const hang = Promise.withResolvers<void>();
    await using slow = await startBackend("slow", async () => {
      await hang.promise;
      return new Response("late");
    });
    const path = await configFile({
      backends: [
        { backend_name: "empty", servers: [] },
        { backend_name: "dead", servers: [{ addr: "127.0.0.1", port: deadPort() }] },
        { backend_name: "slow", servers: [{ addr: "127.0.0.1", port: slow.port }] },
      ],
      hosts: [
        { host: "empty.test", backend_name: "empty" },
        { host: "dead.test", backend_name: "dead" },
        { host: "slow.test", backend_name: "slow" },
      ],
    });
    await using lb = await proxyIn(
      mode,
      path,
      "--response-timeout",
      "0.3",
      "--connect-timeout",
      "0.5",
    );
    const empty = await get(lb, "empty.test");
    assertEquals(empty.status, 503);
    assertMatch(empty.body, /no server available for backend "empty"/);
    const dead = await get(lb, "dead.test");
    assertEquals(dead.status, 502);
    assertEquals(dead.headers.get("x-dynlb-error"), "upstream-unreachable");
    const timeout = await get(lb, "slow.test");
    assertEquals(timeout.status, 504);
    assertMatch(timeout.body, /did not answer in time/);
    assert(!timeout.body.includes("127.0.0.1"), "no internal address in the body");
    hang.resolve();
    for (const r of [empty, dead, timeout]) assert(!/\bat \S+:\d+/.test(r.body), "no stack trace");
  },
);

modeTest("a dead server is skipped by retrying the next one", "every", async (mode) => {
  await using a = await startBackend("a");
  const path = await configFile(configOf({
    "r.test": [{ port: deadPort() }, { port: a.port }],
  }));
  await using lb = await proxyIn(mode, path);
  for (let i = 0; i < 6; i++) {
    const r = await get(lb, "r.test", "/", {
      method: i % 2 ? "POST" : "GET",
      body: i % 2 ? "x" : undefined,
    });
    assertEquals([r.status, r.body], [200, "a"]);
  }
});

modeTest(
  "passes method, raw target, Host and bodies; sets X-Forwarded-*",
  "every",
  async (mode) => {
    await using echo = await startBackend("echo", async (request) => {
      const body = await request.text();
      return new Response(`${request.method} ${body}`, {
        status: 201,
        headers: {
          "x-reply": "1",
          "connection": "x-secret",
          "x-secret": "s",
          "keep-alive": "timeout=5",
        },
      });
    });
    const path = await configFile(configOf({ "e.test": [{ port: echo.port }] }));
    await using lb = await proxyIn(mode, path);

    const text = await rawRequest(lb.proxy, [
      "PATCH /a/../b%2Fc?x=1&y=%20 HTTP/1.1",
      "Host: E.test:80",
      "Content-Length: 5",
      "X-Forwarded-For: 10.0.0.1",
      "Connection: x-hop",
      "X-Hop: drop me",
      "Keep-Alive: timeout=1",
      "TE: trailers",
      "X-Keep: kept",
    ], "hello");
    const [head, body] = text.split("\r\n\r\n");
    assertMatch(head, /^HTTP\/1\.1 201/);
    assertEquals(body, "PATCH hello");
    assertMatch(head, /\r\nx-reply: 1/i);
    assert(!/\r\n(x-secret|keep-alive):/i.test(head), `hop-by-hop response headers: ${head}`);

    const seen = echo.seen[0];
    // fetch parses the upstream URL and resolves dot segments; h1 sends the target as received.
    const target = mode.transport === "fetch" ? "/b%2Fc?x=1&y=%20" : "/a/../b%2Fc?x=1&y=%20";
    assertEquals(seen.url.slice(seen.url.indexOf("/", 7)), target);
    assertEquals(seen.headers.get("host"), "E.test:80");
    assertEquals(seen.headers.get("x-keep"), "kept");
    for (const hop of ["x-hop", "keep-alive", "te"]) assertEquals(seen.headers.get(hop), null);
    // The client is no trusted proxy: its X-Forwarded-For is replaced, not appended to.
    assertEquals(seen.headers.get("x-forwarded-for"), "127.0.0.1");
    assertEquals(seen.headers.get("x-real-ip"), "127.0.0.1");
    assertEquals(seen.headers.get("x-forwarded-proto"), "http");
    assertEquals(seen.headers.get("x-forwarded-host"), "E.test:80");
    // What the client did not send is not invented (fetch would add these defaults).
    assert(!seen.headers.get("user-agent"), "no user-agent added");
    assertEquals(seen.headers.get("accept-encoding") ?? "identity", "identity");
  },
);

modeTest(
  "a malformed upstream response is a 502, and the proxy keeps serving",
  "every",
  async (mode) => {
    await using garbage = rawServer("HTTP/1.1 2OO OK\r\nbad header line\r\n\r\n");
    await using good = await startBackend("good");
    const path = await configFile(configOf({
      "bad.test": [{ port: garbage.port }],
      "good.test": [{ port: good.port }],
    }));
    await using lb = await proxyIn(mode, path);
    const r = await get(lb, "bad.test", "/", { method: "POST", body: "x" });
    assertEquals(r.status, 502);
    assertEquals((await get(lb, "good.test")).body, "good");
  },
);

modeTest("redirects are passed on, not followed", "every", async (mode) => {
  await using redirect = await startBackend("r", () =>
    new Response(null, {
      status: 302,
      headers: { location: "/elsewhere", "set-cookie": "a=1" },
    }));
  const path = await configFile(configOf({ "r.test": [{ port: redirect.port }] }));
  await using lb = await proxyIn(mode, path);
  const r = await get(lb, "r.test", "/", { redirect: "manual" });
  assertEquals(r.status, 302);
  assertEquals(r.headers.get("location"), "/elsewhere");
  assertEquals(r.headers.get("set-cookie"), "a=1");
  assertEquals(redirect.seen.length, 1);
});

modeTest("compressed bodies reach the client intact", "every", async (mode) => {
  const original = "hello ".repeat(1000);
  const gzipped = new Uint8Array(
    await new Response(
      new Blob([original]).stream().pipeThrough(new CompressionStream("gzip")),
    ).arrayBuffer(),
  );
  await using gz = await startBackend("gz", () =>
    new Response(gzipped, {
      headers: { "content-encoding": "gzip", "content-type": "text/plain" },
    }));
  const path = await configFile(configOf({ "gz.test": [{ port: gz.port }] }));
  await using lb = await proxyIn(mode, path);
  // fetch (the test client) decodes what it is told is gzip: a body decoded twice or with a
  // stale content-length would fail here.
  const r = await get(lb, "gz.test", "/", { headers: { "accept-encoding": "gzip" } });
  assertEquals(r.status, 200);
  assertEquals(r.body, original);
  // A client that asked for no coding gets none.
  const plain = await rawRequest(lb.proxy, ["GET / HTTP/1.1", "Host: gz.test"]);
  assertMatch(plain, /^HTTP\/1\.1 200/);
  assertEquals(gz.seen[1].headers.get("accept-encoding") ?? "identity", "identity");
});

modeTest("streams large request and response bodies", "every", async (mode) => {
  const SIZE = 64 * 1024 * 1024;
  await using sink = await startBackend("sink", async (request) => {
    if (request.method === "POST") {
      let n = 0;
      for await (const chunk of request.body!) n += chunk.length;
      return new Response(String(n));
    }
    return new Response(zeros(SIZE), { headers: { "content-length": String(SIZE) } });
  });
  const path = await configFile(configOf({ "big.test": [{ port: sink.port }] }));
  await using lb = await proxyIn(mode, path);
  const client = Deno.createHttpClient({ allowHost: true, http2: false });
  try {
    const up = await fetch(lb.proxy + "/", {
      method: "POST",
      headers: { host: "big.test" },
      body: zeros(SIZE),
      client,
    });
    assertEquals(await up.text(), String(SIZE));
    const down = await fetch(lb.proxy + "/", { headers: { host: "big.test" }, client });
    let n = 0;
    for await (const chunk of down.body!) n += chunk.length;
    assertEquals(n, SIZE);
  } finally {
    client.close();
  }
});

/** A stream of `size` zero bytes in 64 KiB chunks, never held whole. */
function zeros(size: number): ReadableStream<Uint8Array> {
  const chunk = new Uint8Array(65536);
  let left = size;
  return new ReadableStream({
    pull(controller) {
      const n = Math.min(left, chunk.length);
      controller.enqueue(chunk.slice(0, n));
      left -= n;
      if (left === 0) controller.close();
    },
  });
}
