/**
 * The h1 listener in process, over loopback sockets: a raw client on one side, scripted raw
 * upstream servers on the other, the real request path and h1 transport in between.
 */
import { assert, assertEquals, assertMatch } from "../../../tests/_assert.ts";
import { startBackend } from "../../../tests/_backend.ts";
import { rawServer } from "../../../tests/_scripted_server.ts";
import { validateConfig } from "../../config/schema.ts";
import type { Config } from "../../config/types.ts";
import { RequestPath } from "../request_path.ts";
import { Router } from "../router.ts";
import { bodyReader, framingOf } from "./body.ts";
import { parkedBuffersOut, readResponseHead, Wire } from "./connection.ts";
import { DEFAULT_LIMITS } from "./parser.ts";
import { type ClientTimeouts, H1Server } from "./server.ts";
import { H1Transport } from "./transport.ts";

const TIMEOUTS: ClientTimeouts = {
  headerMs: 10_000,
  idleMs: 60_000,
  bodyMs: 60_000,
  tunnelIdleMs: 600_000,
};
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A raw HTTP/1.1 client reading answers with the codec's own response parser. */
class Client {
  readonly conn: Deno.TcpConn;
  readonly wire: Wire;

  constructor(conn: Deno.TcpConn) {
    this.conn = conn;
    this.wire = new Wire(conn);
  }

  async send(text: string | Uint8Array): Promise<void> {
    const bytes = typeof text === "string" ? encoder.encode(text) : text;
    let off = 0;
    while (off < bytes.length) off += await this.conn.write(bytes.subarray(off));
  }

  /** The next response; its body read whole. */
  async response(method = "GET") {
    const head = await readResponseHead(this.wire, DEFAULT_LIMITS);
    const reader = bodyReader(
      this.wire,
      framingOf(head, method),
      head.contentLength,
      DEFAULT_LIMITS,
    );
    let body = "";
    for (let c = await reader.next(); c !== null; c = await reader.next()) {
      body += decoder.decode(c);
    }
    return {
      status: head.status,
      headers: new Headers(head.headers),
      keepAlive: head.keepAlive,
      body,
      complete: reader.complete,
    };
  }

  /** Raw bytes as they come, until `pattern` shows up. */
  async until(pattern: RegExp): Promise<string> {
    let text = "";
    while (!pattern.test(text)) {
      if (this.wire.buffered === 0 && !await this.wire.fill()) break;
      text += decoder.decode(this.wire.buf.subarray(this.wire.start, this.wire.end));
      this.wire.start = this.wire.end;
    }
    return text;
  }

  /** Resolves true once the server closed the connection (after any bytes left). */
  async closed(): Promise<boolean> {
    try {
      while (await this.wire.fill()) this.wire.start = this.wire.end;
    } catch {
      // reset counts as closed
    }
    return true;
  }

  close(): void {
    try {
      this.conn.close();
    } catch { /* closed */ }
  }
}

/** An h1 listener on a free loopback port routing `hosts` to upstream ports. */
async function listenerFor(
  hosts: Record<string, number[]>,
  options: { timeouts?: Partial<ClientTimeouts>; maxConnections?: number; retries?: number } = {},
) {
  const router = new Router();
  const result = validateConfig({
    backends: Object.entries(hosts).map(([host, ports]) => ({
      backend_name: `b-${host}`,
      servers: ports.map((port) => ({ addr: "127.0.0.1", port })),
    })),
    hosts: Object.keys(hosts).map((host) => ({ host, backend_name: `b-${host}` })),
  });
  if (!result.ok) throw new Error(JSON.stringify(result.issues));
  await router.applyConfig(result.config as Config, 1, []);
  const transport = new H1Transport({ connectMs: 1000, responseMs: 5000 });
  const server = new H1Server({
    path: new RequestPath({ router, transport, retries: options.retries ?? 1 }),
    timeouts: { ...TIMEOUTS, ...options.timeouts },
    maxConnections: options.maxConnections ?? 100,
  });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  server.serve(listener, { proto: "http" });
  const port = (listener.addr as Deno.NetAddr).port;
  const clients: Client[] = [];
  return {
    server,
    transport,
    port,
    connect: async () => {
      const c = new Client(await Deno.connect({ hostname: "127.0.0.1", port }));
      clients.push(c);
      return c;
    },
    async [Symbol.asyncDispose]() {
      for (const c of clients) c.close();
      server.close();
      transport.close();
      await server.shutdown();
    },
  };
}

/** A backend answering `name METHOD /path` (and ` +N` for a body of N bytes). */
async function echoUpstream(name = "up") {
  const backend = await startBackend(name, async (request) => {
    const body = await request.bytes();
    const path = request.url.slice(request.url.indexOf("/", 7));
    return new Response(
      `${name} ${request.method} ${path}${body.length ? ` +${body.length}` : ""}`,
    );
  });
  return backend;
}

Deno.test("keep-alive: pipelined requests are answered in order on one connection", async () => {
  await using up = await echoUpstream();
  await using lb = await listenerFor({ "a.test": [up.port] });
  const c = await lb.connect();
  await c.send(
    "GET /1 HTTP/1.1\r\nHost: a.test\r\n\r\nGET /2 HTTP/1.1\r\nHost: a.test\r\n\r\n" +
      "GET /3 HTTP/1.1\r\nHost: a.test\r\n\r\n",
  );
  for (const n of [1, 2, 3]) {
    const r = await c.response();
    assertEquals([r.status, r.body, r.keepAlive], [200, `up GET /${n}`, true]);
  }
  await c.send("GET /4 HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n");
  const last = await c.response();
  assertEquals([last.body, last.keepAlive], ["up GET /4", false]);
  assert(await c.closed());
});

Deno.test("keep-alive after short requests (a small parked buffer): long heads, split heads, pipelined requests and bodies", async () => {
  await using up = await echoUpstream();
  await using lb = await listenerFor({ "a.test": [up.port] });
  const c = await lb.connect();
  const ask = async (text: string, body: string) => {
    await c.send(text);
    const r = await c.response();
    assertEquals([r.status, r.body, r.keepAlive], [200, body, true]);
  };
  // Short heads: the connection then waits with the smallest parked buffer.
  for (const n of [1, 2]) await ask(`GET /${n} HTTP/1.1\r\nHost: a.test\r\n\r\n`, `up GET /${n}`);
  // A head eight times as long as that buffer, and one three times PARKED_BUFFER.
  for (const n of [1000, 3000]) {
    const path = `/long-${"x".repeat(n)}`;
    await ask(
      `GET ${path} HTTP/1.1\r\nHost: a.test\r\nX-Pad: ${"p".repeat(n)}\r\n\r\n`,
      `up GET ${path}`,
    );
  }
  // A head in many pieces, each sent once the one before was written.
  const head = `GET /split HTTP/1.1\r\nHost: a.test\r\nX-Pad: ${"q".repeat(300)}\r\n\r\n`;
  for (let i = 0; i < head.length; i += 37) await c.send(head.slice(i, i + 37));
  const split = await c.response();
  assertEquals([split.status, split.body], [200, "up GET /split"]);
  // Pipelined: short and long heads and a body longer than the parked buffer, in one write.
  const body = "b".repeat(700);
  await c.send(
    "GET /p1 HTTP/1.1\r\nHost: a.test\r\n\r\n" +
      `POST /p2 HTTP/1.1\r\nHost: a.test\r\nContent-Length: ${body.length}\r\n\r\n${body}` +
      `GET /p3 HTTP/1.1\r\nHost: a.test\r\nX-Pad: ${"r".repeat(2000)}\r\n\r\n`,
  );
  for (const expected of ["up GET /p1", "up POST /p2 +700", "up GET /p3"]) {
    const r = await c.response();
    assertEquals([r.status, r.body, r.keepAlive], [200, expected, true]);
  }
  // After all that, a short request on the same connection.
  await ask("GET /last HTTP/1.1\r\nHost: a.test\r\n\r\n", "up GET /last");
});

Deno.test("idle connections each hold one parked buffer of the shared slabs, given back when they close", async () => {
  await using up = await echoUpstream();
  await using lb = await listenerFor({ "a.test": [up.port] }, { maxConnections: 300 });
  /** Waits (a bounded poll) until `ready` holds. */
  const until = async (ready: () => boolean) => {
    for (let i = 0; i < 500 && !ready(); i++) await new Promise((r) => setTimeout(r, 10));
    return ready();
  };
  const before = parkedBuffersOut();
  const clients = await Promise.all(Array.from({ length: 200 }, () => lb.connect()));
  await Promise.all(clients.map(async (c, i) => {
    await c.send(`GET /${i} HTTP/1.1\r\nHost: a.test\r\n\r\n`);
    assertEquals((await c.response()).body, `up GET /${i}`);
  }));
  assertEquals(parkedBuffersOut(), before + 200);
  for (const c of clients.slice(0, 100)) c.close();
  assert(await until(() => parkedBuffersOut() === before + 100), `${parkedBuffersOut()} out`);
  // A connection closed by the server (refused request) gives its buffer back too.
  const refused = clients[100];
  await refused.send("GET / HTTP/1.1\r\nHost: a.test\r\nContent-Length: x\r\n\r\n");
  assertEquals((await refused.response()).status, 400);
  assert(await until(() => parkedBuffersOut() === before + 99), `${parkedBuffersOut()} out`);
  for (const c of clients.slice(101)) c.close();
  assert(await until(() => parkedBuffersOut() === before), `${parkedBuffersOut()} out`);
  assertEquals(lb.server.connections, 0);
});

Deno.test("HTTP/1.0 closes unless it asks for keep-alive", async () => {
  await using up = await echoUpstream();
  await using lb = await listenerFor({ "a.test": [up.port] });
  const keep = await lb.connect();
  await keep.send("GET /k HTTP/1.0\r\nHost: a.test\r\nConnection: keep-alive\r\n\r\n");
  const r = await keep.response();
  assertEquals(r.keepAlive, true);
  await keep.send("GET /k2 HTTP/1.0\r\nHost: a.test\r\n\r\n");
  assertEquals((await keep.response()).body, "up GET /k2");
  assert(await keep.closed());
});

Deno.test("absolute-form targets are routed by their authority", async () => {
  await using a = await echoUpstream("a");
  await using b = await echoUpstream("b");
  await using lb = await listenerFor({ "a.test": [a.port], "b.test": [b.port] });
  const c = await lb.connect();
  await c.send("GET http://b.test/x?y HTTP/1.1\r\nHost: a.test\r\n\r\n");
  const r = await c.response();
  assertEquals(r.body, "b GET /x?y");
  assertEquals(b.seen[0].headers.get("host"), "b.test");
  assertEquals(a.seen.length, 0);
});

Deno.test("a refused request never reaches a server and closes the connection", async () => {
  await using up = await echoUpstream();
  await using lb = await listenerFor({ "a.test": [up.port] });
  for (
    const [text, status] of [
      [
        "POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
      ],
      ["GET / HTTP/1.1\r\nHost: a.test\r\nX : y\r\n\r\n", 400],
      ["GET / HTTP/2.0\r\nHost: a.test\r\n\r\n", 505],
      ["CONNECT a.test:443 HTTP/1.1\r\nHost: a.test\r\n\r\n", 405],
      ["GET / HTTP/1.1\r\nHost: a.test\r\nX: " + "a".repeat(70_000) + "\r\n\r\n", 431],
      ["GET /" + "a".repeat(9000) + " HTTP/1.1\r\nHost: a.test\r\n\r\n", 414],
      ["POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: foo, chunked\r\n\r\n", 501],
      ["POST / HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400],
    ] as const
  ) {
    const c = await lb.connect();
    await c.send(text);
    const r = await c.response();
    assertEquals(r.status, status, text.slice(0, 60));
    assertEquals(r.keepAlive, false, "Connection: close");
    assert(r.headers.get("x-dynlb-error") !== null);
    assert(await c.closed());
  }
  assertEquals(up.seen.length, 0, "nothing reached the server");
});

Deno.test("two identical Content-Length lines are one; the body is forwarded", async () => {
  await using up = await echoUpstream();
  await using lb = await listenerFor({ "a.test": [up.port] });
  const c = await lb.connect();
  await c.send(
    "POST /p HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
  );
  const r = await c.response();
  assertEquals([r.status, r.body], [200, "up POST /p +5"]);
});

Deno.test("Expect: 100-continue gets a 100 before the body is sent", async () => {
  await using up = await echoUpstream();
  await using lb = await listenerFor({ "a.test": [up.port] });
  const c = await lb.connect();
  await c.send(
    "PUT /e HTTP/1.1\r\nHost: a.test\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
  );
  assertMatch(await c.until(/\r\n\r\n/), /^HTTP\/1\.1 100 Continue\r\n\r\n$/);
  await c.send("abc");
  const r = await c.response();
  assertEquals(r.body, "up PUT /e +3");
  assertEquals(up.seen[0].headers.get("expect"), null, "Expect is answered here");
});

Deno.test("a head that does not arrive in time gets 408 and is closed", async () => {
  await using up = await echoUpstream();
  await using lb = await listenerFor({ "a.test": [up.port] }, { timeouts: { headerMs: 150 } });
  const c = await lb.connect();
  await c.send("GET / HTTP/1.1\r\nHost: a.te");
  const r = await c.response();
  assertEquals([r.status, r.headers.get("x-dynlb-error")], [408, "request-timeout"]);
  assert(await c.closed());
});

Deno.test("idle keep-alive connections are closed after the idle timeout", async () => {
  await using up = await echoUpstream();
  await using lb = await listenerFor({ "a.test": [up.port] }, { timeouts: { idleMs: 150 } });
  const c = await lb.connect();
  await c.send("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
  assertEquals((await c.response()).status, 200);
  assert(await c.closed());
  assertEquals(lb.server.connections, 0);
});

Deno.test("a request body that stops arriving aborts the exchange (408, closed)", async () => {
  await using up = await echoUpstream();
  await using lb = await listenerFor({ "a.test": [up.port] }, { timeouts: { bodyMs: 150 } });
  const c = await lb.connect();
  await c.send("POST / HTTP/1.1\r\nHost: a.test\r\nContent-Length: 10\r\n\r\nabc");
  const r = await c.response();
  assertEquals(r.status, 408);
  assert(await c.closed());
  assertEquals(up.seen.length, 0, "a small body is buffered whole before the server sees it");
});

Deno.test("beyond --max-connections new connections are closed at once", async () => {
  await using up = await echoUpstream();
  await using lb = await listenerFor({ "a.test": [up.port] }, { maxConnections: 2 });
  const a = await lb.connect();
  const b = await lb.connect();
  await a.send("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
  await b.send("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
  await a.response();
  await b.response();
  const c = await lb.connect();
  assert(await c.closed());
  a.close();
  await lb.connect().then(async (d) => {
    // A slot frees up once a connection ends (the close may take a moment to be seen).
    for (let i = 0; i < 50 && lb.server.connections > 1; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    void d;
  });
});

Deno.test("shutdown: idle connections close, a busy one is answered with Connection: close", async () => {
  const release = Promise.withResolvers<void>();
  await using up = rawServer(async (c) => {
    const request = await c.readRequest();
    if (request === null) return;
    await release.promise;
    await c.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
  });
  await using lb = await listenerFor({ "a.test": [up.port] });
  const idle = await lb.connect();
  const busy = await lb.connect();
  await busy.send("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
  // The busy request has reached the server before shutdown starts.
  while (up.accepted === 0) await new Promise((r) => setTimeout(r, 5));
  const done = lb.server.shutdown();
  assert(await idle.closed());
  const late = await Deno.connect({ hostname: "127.0.0.1", port: lb.port }).then(
    (conn) => (conn.close(), "accepted"),
    () => "refused",
  );
  assertEquals(late, "refused");
  release.resolve();
  const r = await busy.response();
  assertEquals([r.status, r.body, r.keepAlive], [200, "ok", false]);
  assert(await busy.closed());
  await done;
});

Deno.test("Upgrade: after a 101 the connection is a byte tunnel both ways", async () => {
  let upstreamConns = 0;
  await using up = rawServer(async (c) => {
    upstreamConns++;
    const request = await c.readRequest();
    if (request === null) return;
    assertMatch(request.head, /\r\nconnection: upgrade\r\nupgrade: x-echo\r\n/);
    await c.write(
      "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: x-echo\r\n\r\nhi",
    );
    const buf = new Uint8Array(1024);
    for (;;) {
      const n = await c.conn.read(buf);
      if (n === null) return;
      await c.write(buf.slice(0, n).map((b) => b >= 97 && b <= 122 ? b - 32 : b));
    }
  });
  await using lb = await listenerFor({ "a.test": [up.port] });
  const c = await lb.connect();
  await c.send("GET /t HTTP/1.1\r\nHost: a.test\r\nConnection: Upgrade\r\nUpgrade: x-echo\r\n\r\n");
  const head = await c.until(/\r\n\r\nhi/);
  assertMatch(head, /^HTTP\/1\.1 101 /);
  assertMatch(head, /\r\nconnection: upgrade\r\nupgrade: x-echo\r\n/i);
  await c.send("abc");
  assertEquals(await c.until(/ABC/), "ABC");
  await c.send("more bytes");
  assertEquals(await c.until(/MORE BYTES/), "MORE BYTES");
  c.close();
  assertEquals(upstreamConns, 1);
});

Deno.test("Upgrade: any other answer is an ordinary response and stays HTTP", async () => {
  await using up = await echoUpstream();
  await using lb = await listenerFor({ "a.test": [up.port] });
  const c = await lb.connect();
  await c.send(
    "GET /n HTTP/1.1\r\nHost: a.test\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
  );
  assertEquals((await c.response()).body, "up GET /n");
  await c.send("GET /after HTTP/1.1\r\nHost: a.test\r\n\r\n");
  assertEquals((await c.response()).body, "up GET /after");
});

Deno.test("a tunnel without traffic is closed after --tunnel-idle-timeout", async () => {
  await using up = rawServer(async (c) => {
    if (await c.readRequest() === null) return;
    await c.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n");
    await c.waitClosed();
  });
  await using lb = await listenerFor({ "a.test": [up.port] }, { timeouts: { tunnelIdleMs: 150 } });
  const c = await lb.connect();
  await c.send("GET / HTTP/1.1\r\nHost: a.test\r\nConnection: upgrade\r\nUpgrade: x\r\n\r\n");
  assertMatch(await c.until(/\r\n\r\n/), /^HTTP\/1\.1 101/);
  assert(await c.closed());
});

Deno.test("chunked upstream bodies reach an HTTP/1.1 client as sent, HTTP/1.0 decoded", async () => {
  await using up = rawServer(async (c) => {
    for (;;) {
      if (await c.readRequest() === null) return;
      await c.write(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
      );
    }
  });
  await using lb = await listenerFor({ "a.test": [up.port] });
  const c = await lb.connect();
  await c.send("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
  assertMatch(await c.until(/0\r\n\r\n$/), /\r\n\r\n3;x=1\r\nabc\r\n2\r\nde\r\n0\r\n\r\n$/);
  const old = await lb.connect();
  await old.send("GET / HTTP/1.0\r\nHost: a.test\r\n\r\n");
  const r = await old.response();
  assertEquals([r.body, r.headers.get("transfer-encoding")], ["abcde", null]);
  assert(await old.closed());
});

Deno.test("a chunked upload reaches the server with the client's chunks, not re-chunked; extensions and trailers dropped", async () => {
  const body = "3;name=x\r\nabc\r\n5\r\nhello\r\n00A\r\n0123456789\r\n0\r\nX-Sum: 1\r\n\r\n";
  const relayed = "3\r\nabc\r\n5\r\nhello\r\n00A\r\n0123456789\r\n0\r\n\r\n";
  const seen: string[] = [];
  await using up = rawServer(async (c) => {
    for (;;) {
      const request = await c.readRequest(relayed.length);
      if (request === null) return;
      seen.push(request.head.toLowerCase(), decoder.decode(request.body));
      await c.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    }
  });
  await using lb = await listenerFor({ "a.test": [up.port] });
  const c = await lb.connect();
  for (let i = 0; i < 2; i++) {
    // The whole body in one write, then split byte by byte: the same bytes reach the server.
    const head = "POST /u HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n";
    if (i === 0) await c.send(head + body);
    else {
      await c.send(head);
      for (const byte of encoder.encode(body)) await c.send(new Uint8Array([byte]));
    }
    const r = await c.response("POST");
    assertEquals([r.status, r.body, r.keepAlive], [200, "ok", true]);
  }
  assertEquals(seen.length, 4);
  for (let i = 0; i < 4; i += 2) {
    assertMatch(seen[i], /\r\ntransfer-encoding: chunked(\r\n|$)/);
    assert(!seen[i].includes("content-length"), seen[i]);
    assertEquals(seen[i + 1], relayed);
  }
});

Deno.test("a malformed chunk mid-body is refused: the server never gets the end of the body", async () => {
  const received = Promise.withResolvers<string>();
  const first = Promise.withResolvers<void>();
  await using up = rawServer(async (c, index) => {
    if (index > 0) return await c.waitClosed(); // the later cases: what the client sees counts
    const request = await c.readRequest("3\r\nabc\r\n".length);
    if (request === null) return received.resolve("");
    first.resolve();
    // Everything else the server is sent on this connection, until dynlb closes it.
    let rest = decoder.decode(request.body);
    const chunk = new Uint8Array(4096);
    for (;;) {
      let n: number | null;
      try {
        n = await c.conn.read(chunk);
      } catch {
        n = null;
      }
      if (n === null) break;
      rest += decoder.decode(chunk.subarray(0, n));
    }
    received.resolve(rest);
  });
  await using lb = await listenerFor({ "a.test": [up.port] });
  for (const bad of ["zz\r\n", "5\r\nhelloXX0\r\n\r\n", "1;\u0001\r\nx\r\n0\r\n\r\n"]) {
    const c = await lb.connect();
    await c.send(
      "POST /u HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
    );
    if (bad === "zz\r\n") await first.promise;
    await c.send(bad + "0\r\n\r\n");
    const r = await c.response("POST");
    assertEquals([r.status, r.keepAlive], [400, false], bad);
    assertMatch(r.body, /invalid request body/);
    assert(await c.closed());
  }
  // The first bad request's connection: the valid first chunk, then closed without a last chunk.
  const rest = await received.promise;
  assertEquals(rest, "3\r\nabc\r\n");
});

Deno.test("an upstream gone mid-body ends the client connection: no complete-looking body", async () => {
  await using up = rawServer(async (c) => {
    if (await c.readRequest() === null) return;
    await c.write("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + "x".repeat(70_000));
  });
  await using lb = await listenerFor({ "a.test": [up.port] });
  const c = await lb.connect();
  await c.send("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
  // Everything until the connection ends: the declared length, fewer bytes, then the end.
  const text = await c.until(/(?!)/);
  assertMatch(text, /content-length: 100000/i);
  assertEquals(text.length - text.indexOf("\r\n\r\n") - 4, 70_000);
});

Deno.test("a client gone mid-response closes the upstream connection (not pooled)", async () => {
  const closed = Promise.withResolvers<void>();
  await using up = rawServer(async (c) => {
    if (await c.readRequest() === null) return;
    await c.write("HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n");
    const chunk = "y".repeat(65536);
    try {
      for (let i = 0; i < 150; i++) {
        let off = 0;
        const bytes = encoder.encode(chunk);
        while (off < bytes.length) off += await c.conn.write(bytes.subarray(off));
      }
    } catch {
      closed.resolve();
      return;
    }
    await c.waitClosed();
    closed.resolve();
  });
  await using lb = await listenerFor({ "a.test": [up.port] });
  const c = await lb.connect();
  await c.send("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
  await c.until(/yyyy/);
  c.close();
  await closed.promise;
  assertEquals(lb.transport.pool("127.0.0.1:" + up.port)?.idleCount ?? 0, 0);
});

Deno.test("shutdown: a connection accepted before it gets its first request answered, with Connection: close", async () => {
  await using up = rawServer(async (c) => {
    while ((await c.readRequest()) !== null) {
      await c.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    }
  });
  await using lb = await listenerFor({ "a.test": [up.port] });
  // Connected, its request still on the way when the drain starts.
  const fresh = await lb.connect();
  while (lb.server.connections === 0) await new Promise((r) => setTimeout(r, 5));
  const done = lb.server.shutdown();
  // The drain has begun once no listener accepts (then the fresh connection gets its grace).
  while (!lb.server.draining) await new Promise((r) => setTimeout(r, 5));
  await fresh.send("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
  const r = await fresh.response();
  assertEquals([r.status, r.body, r.keepAlive], [200, "ok", false]);
  assert(await fresh.closed());
  await done;
});
