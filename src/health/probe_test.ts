import { assert, assertEquals, assertMatch } from "../../tests/_assert.ts";
import { closedPort, httpResponse, rawServer } from "../../tests/_raw_server.ts";
import { httpProbe, tcpProbe } from "./probe.ts";

Deno.test("tcpProbe: passes when a connection opens", async () => {
  const server = rawServer(null);
  try {
    assertEquals(await tcpProbe("127.0.0.1", server.port, 2000), { ok: true });
    await server.waitConnections(1);
  } finally {
    await server.close();
  }
});

Deno.test("tcpProbe: IPv6 with and without brackets", async () => {
  const server = rawServer(null, { hostname: "::1" });
  try {
    assertEquals(await tcpProbe("::1", server.port, 2000), { ok: true });
    assertEquals(await tcpProbe("[::1]", server.port, 2000), { ok: true });
  } finally {
    await server.close();
  }
});

Deno.test("tcpProbe: fails on a refused connection", async () => {
  assertEquals(await tcpProbe("127.0.0.1", closedPort(), 2000), {
    ok: false,
    error: "connection refused",
  });
});

Deno.test("tcpProbe: an aborted signal fails at once", async () => {
  const ac = new AbortController();
  ac.abort();
  assertEquals(await tcpProbe("127.0.0.1", closedPort(), 2000, ac.signal), {
    ok: false,
    error: "aborted",
  });
});

Deno.test("httpProbe: 200 passes and the request is what the docs say", async () => {
  let request = "";
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const serving = (async () => {
    const conn = await listener.accept();
    const buf = new Uint8Array(4096);
    const n = await conn.read(buf);
    request = new TextDecoder().decode(buf.subarray(0, n ?? 0));
    await conn.write(new TextEncoder().encode(httpResponse("200 OK")));
    conn.close();
  })();
  try {
    assertEquals(await httpProbe("127.0.0.1", port, "/ping?x=1", 2000), { ok: true });
    await serving;
    assertEquals(
      request,
      `GET /ping?x=1 HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
        "User-Agent: dynlb-health-check/0.1\r\nAccept: */*\r\nConnection: close\r\n\r\n",
    );
  } finally {
    listener.close();
  }
});

Deno.test("httpProbe: 302 passes, 500 and 404 fail with the status", async () => {
  const server = rawServer(httpResponse("302 Found"));
  try {
    assertEquals(await httpProbe("127.0.0.1", server.port, "/", 2000), { ok: true });
    server.response = httpResponse("500 Internal Server Error");
    assertEquals(await httpProbe("127.0.0.1", server.port, "/", 2000), {
      ok: false,
      error: "status 500",
    });
    server.response = "HTTP/1.0 404\r\n\r\n";
    assertEquals(await httpProbe("127.0.0.1", server.port, "/", 2000), {
      ok: false,
      error: "status 404",
    });
  } finally {
    await server.close();
  }
});

Deno.test("httpProbe: reads only the status line of a large body", async () => {
  const body = "x".repeat(1 << 20);
  const server = rawServer(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
  try {
    assertEquals(await httpProbe("127.0.0.1", server.port, "/", 2000), { ok: true });
  } finally {
    await server.close();
  }
});

Deno.test("httpProbe: a hanging server fails at the timeout", async () => {
  const server = rawServer(null);
  try {
    const r = await httpProbe("127.0.0.1", server.port, "/", 100);
    assertEquals(r, { ok: false, error: "timeout after 100 ms" });
  } finally {
    await server.close();
  }
});

Deno.test("httpProbe: garbage, empty answers and refused connections fail", async () => {
  const server = rawServer("SSH-2.0-OpenSSH_9.2\r\n");
  try {
    assertEquals(await httpProbe("127.0.0.1", server.port, "/", 2000), {
      ok: false,
      error: "not an HTTP response",
    });
    server.response = "";
    const empty = await httpProbe("127.0.0.1", server.port, "/", 2000);
    assert(!empty.ok);
    server.response = "y".repeat(5000);
    assertEquals(await httpProbe("127.0.0.1", server.port, "/", 2000), {
      ok: false,
      error: "not an HTTP response",
    });
  } finally {
    await server.close();
  }
  const refused = await httpProbe("127.0.0.1", closedPort(), "/", 2000);
  assert(!refused.ok);
  assertMatch(refused.error, /refused/);
});

Deno.test("httpProbe: an abort mid-request fails with aborted", async () => {
  const server = rawServer(null);
  const ac = new AbortController();
  try {
    const pending = httpProbe("127.0.0.1", server.port, "/", 5000, ac.signal);
    await server.waitConnections(1);
    ac.abort();
    assertEquals(await pending, { ok: false, error: "aborted" });
  } finally {
    await server.close();
  }
});
