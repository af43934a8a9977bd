/**
 * The h1 transport against real servers on 127.0.0.1: a `Deno.serve` backend and raw TCP
 * servers writing hand-crafted bytes.
 */
import { assert, assertEquals, assertRejects } from "../../../tests/_assert.ts";
import { closedPort, type RawConn, rawServer } from "../../../tests/_scripted_server.ts";
import { upstreamOf } from "../../balance/upstream.ts";
import { UpstreamError, type UpstreamRequest } from "../transport.ts";
import { H1Transport } from "./transport.ts";
import { eventually } from "../../../tests/_dynlb.ts";

const encoder = new TextEncoder();
const TIMEOUTS = { connectMs: 2000, responseMs: 5000 };

function request(
  method: string,
  target: string,
  init: {
    headers?: Record<string, string>;
    body?: ReadableStream<Uint8Array> | null;
    signal?: AbortSignal;
  } = {},
): UpstreamRequest {
  return {
    method,
    target,
    headers: new Headers({ host: "example.test", ...init.headers }),
    body: init.body ?? null,
    signal: init.signal ?? new AbortController().signal,
  };
}

function streamOf(...parts: string[]): ReadableStream<Uint8Array> {
  const chunks = parts.map((p) => encoder.encode(p));
  return new ReadableStream({
    pull(controller) {
      const next = chunks.shift();
      if (next === undefined) controller.close();
      else controller.enqueue(next);
    },
  });
}

/** A `Deno.serve` backend that records which client ports it saw. */
function backend() {
  const ports = new Set<number>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (req, info) => {
      ports.add(info.remoteAddr.port);
      const path = new URL(req.url).pathname;
      if (path === "/big") {
        const size = 64 * 1024 * 1024;
        let left = size;
        const block = new Uint8Array(1024 * 1024).fill(0x61);
        const body = new ReadableStream<Uint8Array>({
          pull(controller) {
            if (left === 0) return controller.close();
            const n = Math.min(left, block.length);
            left -= n;
            controller.enqueue(block.subarray(0, n));
          },
        });
        return new Response(body, { headers: { "content-length": String(size) } });
      }
      let length = 0;
      let text = "";
      if (req.body !== null) {
        for await (const chunk of req.body) {
          if (length < 100) text += new TextDecoder().decode(chunk.subarray(0, 100));
          length += chunk.length;
        }
      }
      return Response.json({
        method: req.method,
        host: req.headers.get("host"),
        contentLength: req.headers.get("content-length"),
        transferEncoding: req.headers.get("transfer-encoding"),
        length,
        text: text.slice(0, 100),
      }, { headers: { "x-path": path } });
    },
  );
  return { server, ports, upstream: upstreamOf("127.0.0.1", server.addr.port, 1) };
}

Deno.test("GET and POST round trips through a Deno.serve backend", async () => {
  const { server, ports, upstream } = backend();
  const transport = new H1Transport(TIMEOUTS);
  try {
    const get = await transport.send(request("GET", "/a?b=1"), upstream);
    assertEquals(get.status, 200);
    assertEquals(get.headers.get("x-path"), "/a");
    const got = await get.json();
    assertEquals(got.method, "GET");
    assertEquals(got.host, "example.test");

    const post = await transport.send(
      request("POST", "/p", {
        headers: { "content-length": "11" },
        body: streamOf("hello", " world"),
      }),
      upstream,
    );
    assertEquals(await post.json(), {
      method: "POST",
      host: "example.test",
      contentLength: "11",
      transferEncoding: null,
      length: 11,
      text: "hello world",
    });

    const chunked = await transport.send(
      request("PUT", "/c", { body: streamOf("a", "bc", "", "def") }),
      upstream,
    );
    const echoed = await chunked.json();
    assertEquals(echoed.transferEncoding, "chunked");
    assertEquals(echoed.contentLength, null);
    assertEquals(echoed.text, "abcdef");

    // Sequential requests share one connection.
    for (let i = 0; i < 5; i++) await (await transport.send(request("GET", "/"), upstream)).text();
    assertEquals(ports.size, 1);
    assertEquals(transport.pool(upstream.key)?.idleCount, 1);
  } finally {
    transport.close();
    await server.shutdown();
  }
});

Deno.test("Host falls back to the upstream key", async () => {
  const { server, upstream } = backend();
  const transport = new H1Transport(TIMEOUTS);
  try {
    const r = request("GET", "/");
    (r.headers as Headers).delete("host");
    const res = await transport.send(r, upstream);
    assertEquals((await res.json()).host, upstream.key);
  } finally {
    transport.close();
    await server.shutdown();
  }
});

Deno.test("large bodies stream both ways", async () => {
  const { server, upstream } = backend();
  const transport = new H1Transport(TIMEOUTS);
  try {
    const res = await transport.send(request("GET", "/big"), upstream);
    assertEquals(res.headers.get("content-length"), String(64 * 1024 * 1024));
    let total = 0;
    let sample = 0;
    for await (const chunk of res.body!) {
      total += chunk.length;
      sample = chunk[chunk.length - 1];
    }
    assertEquals(total, 64 * 1024 * 1024);
    assertEquals(sample, 0x61);

    const size = 16 * 1024 * 1024;
    let left = size;
    const upload = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (left === 0) return controller.close();
        const n = Math.min(left, 256 * 1024);
        left -= n;
        controller.enqueue(new Uint8Array(n).fill(0x62));
      },
    });
    const up = await transport.send(
      request("POST", "/up", { headers: { "content-length": String(size) }, body: upload }),
      upstream,
    );
    const echoed = await up.json();
    assertEquals(echoed.length, size);
    assertEquals(echoed.contentLength, String(size));
  } finally {
    transport.close();
    await server.shutdown();
  }
});

Deno.test("hop-by-hop fields are removed, Content-Length kept, interim responses skipped", async () => {
  const server = rawServer(async (c) => {
    while (await c.readRequest()) {
      await c.write(
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 Fine\r\nConnection: keep-alive, X-Hop\r\n" +
          "X-Hop: 1\r\nKeep-Alive: timeout=5\r\nX-Keep: 2\r\nContent-Length: 2\r\n\r\nok",
      );
    }
  });
  const transport = new H1Transport(TIMEOUTS);
  try {
    const res = await transport.send(request("GET", "/"), upstreamOf("127.0.0.1", server.port, 1));
    assertEquals(res.status, 200);
    assertEquals(res.statusText, "Fine");
    assertEquals([...res.headers], [["content-length", "2"], ["x-keep", "2"]]);
    assertEquals(await res.text(), "ok");
  } finally {
    transport.close();
    await server.close();
  }
});

Deno.test("Connection: close from the upstream is honoured", async () => {
  const closedByClient: Promise<void>[] = [];
  const server = rawServer(async (c) => {
    await c.readRequest();
    await c.write("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nx");
    // The server keeps its side open: the client must close.
    const closed = c.waitClosed();
    closedByClient.push(closed);
    await closed;
  });
  const transport = new H1Transport(TIMEOUTS);
  const upstream = upstreamOf("127.0.0.1", server.port, 1);
  try {
    for (let i = 0; i < 2; i++) {
      assertEquals(await (await transport.send(request("GET", "/"), upstream)).text(), "x");
    }
    await Promise.all(closedByClient);
    assertEquals(server.accepted, 2);
    assertEquals(transport.pool(upstream.key)?.idleCount, 0);
  } finally {
    transport.close();
    await server.close();
  }
});

Deno.test("an idle connection the upstream closed is replaced", async () => {
  const server = rawServer(async (c, index) => {
    await c.readRequest();
    await c.write(`HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n${index}`);
    // Closing right after the answer: the pooled connection dies while idle.
  });
  const transport = new H1Transport(TIMEOUTS);
  const upstream = upstreamOf("127.0.0.1", server.port, 1);
  try {
    assertEquals(await (await transport.send(request("GET", "/"), upstream)).text(), "0");
    assertEquals(await (await transport.send(request("GET", "/"), upstream)).text(), "1");
    assertEquals(server.accepted, 2);
  } finally {
    transport.close();
    await server.close();
  }
});

/** Answers the first request of the first connection, then drops the second unanswered. */
function droppingServer() {
  return rawServer(async (c, index) => {
    await c.readRequest();
    await c.write(`HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n${index}`);
    if (index === 0) await c.readRequest(); // then close without answering
  });
}

Deno.test("a request on a dropped pooled connection is retried once when it has no body", async () => {
  const server = droppingServer();
  const transport = new H1Transport(TIMEOUTS);
  const upstream = upstreamOf("127.0.0.1", server.port, 1);
  try {
    assertEquals(await (await transport.send(request("GET", "/"), upstream)).text(), "0");
    assertEquals(await (await transport.send(request("GET", "/"), upstream)).text(), "1");
    assertEquals(server.accepted, 2);
  } finally {
    transport.close();
    await server.close();
  }
});

Deno.test("a request with a body on a dropped pooled connection is not retried", async () => {
  const server = droppingServer();
  const transport = new H1Transport(TIMEOUTS);
  const upstream = upstreamOf("127.0.0.1", server.port, 1);
  try {
    assertEquals(await (await transport.send(request("GET", "/"), upstream)).text(), "0");
    const err = await assertRejects(() =>
      transport.send(
        request("POST", "/", { headers: { "content-length": "2" }, body: streamOf("hi") }),
        upstream,
      )
    );
    assert(err instanceof UpstreamError, String(err));
    assertEquals(err.failure, "broken");
    assertEquals(err.bodyConsumed, true);
    assertEquals(server.accepted, 1);
  } finally {
    transport.close();
    await server.close();
  }
});

Deno.test("connection refused is a connect failure that leaves the body untouched", async () => {
  const transport = new H1Transport(TIMEOUTS);
  try {
    const body = streamOf("data");
    const err = await assertRejects(() =>
      transport.send(
        request("POST", "/", { body }),
        upstreamOf("127.0.0.1", closedPort(), 1),
      )
    );
    assert(err instanceof UpstreamError, String(err));
    assertEquals(err.failure, "connect");
    assertEquals(err.bodyConsumed, false);
    assertEquals(body.locked, false);
    await body.cancel();
  } finally {
    transport.close();
  }
});

Deno.test("no response head within responseMs is a timeout", async () => {
  const server = rawServer(async (c) => {
    await c.readRequest();
    await c.waitClosed();
  });
  const transport = new H1Transport({ connectMs: 2000, responseMs: 100 });
  try {
    const err = await assertRejects(() =>
      transport.send(request("GET", "/"), upstreamOf("127.0.0.1", server.port, 1))
    );
    assert(err instanceof UpstreamError, String(err));
    assertEquals(err.failure, "timeout");
    assertEquals(err.bodyConsumed, false);
  } finally {
    transport.close();
    await server.close();
  }
});

Deno.test("malformed responses are broken failures", async () => {
  const answers = [
    "HTTP/1.1 200 OK\r\nBad Header\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "HTTP/1.1 200 OK\r\nX: " + "a".repeat(2000) + "\r\n\r\n",
    "HTTP/1.1 200 OK\r\n" + "X: y\r\n".repeat(50) + "\r\n",
    "SSH-2.0-OpenSSH\r\n\r\n",
    "HTTP/1.1 200 OK\r\nContent-Le",
  ];
  const server = rawServer(async (c, index) => {
    await c.readRequest();
    await c.write(answers[index]);
  });
  const transport = new H1Transport(TIMEOUTS, { maxHeadBytes: 1024, maxHeaders: 20 });
  const upstream = upstreamOf("127.0.0.1", server.port, 1);
  try {
    for (const answer of answers) {
      const err = await assertRejects(() => transport.send(request("GET", "/"), upstream));
      assert(err instanceof UpstreamError, String(err));
      assertEquals(err.failure, "broken", answer.slice(0, 40));
    }
    assertEquals(transport.pool(upstream.key)?.size, 0);
  } finally {
    transport.close();
    await server.close();
  }
});

Deno.test("a small body cut short is a broken failure before any response", async () => {
  const server = rawServer(async (c) => {
    await c.readRequest();
    await c.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
  });
  const transport = new H1Transport(TIMEOUTS);
  try {
    const err = await assertRejects(() =>
      transport.send(request("GET", "/"), upstreamOf("127.0.0.1", server.port, 1))
    );
    assert(err instanceof UpstreamError, String(err));
    assertEquals(err.failure, "broken");
  } finally {
    transport.close();
    await server.close();
  }
});

Deno.test("a streamed body cut short errors the stream with a broken failure", async () => {
  const server = rawServer(async (c) => {
    await c.readRequest();
    await c.write("HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\nabc");
  });
  const transport = new H1Transport(TIMEOUTS);
  try {
    const res = await transport.send(request("GET", "/"), upstreamOf("127.0.0.1", server.port, 1));
    const err = await assertRejects(() => res.text());
    assert(err instanceof UpstreamError, String(err));
    assertEquals(err.failure, "broken");
  } finally {
    transport.close();
    await server.close();
  }
});

Deno.test("cancelling the body closes the connection", async () => {
  let conn: RawConn | undefined;
  const server = rawServer(async (c) => {
    conn = c;
    await c.readRequest();
    await c.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
    await c.waitClosed();
  });
  const transport = new H1Transport(TIMEOUTS);
  const upstream = upstreamOf("127.0.0.1", server.port, 1);
  try {
    const res = await transport.send(request("GET", "/"), upstream);
    const reader = res.body!.getReader();
    assertEquals(new TextDecoder().decode((await reader.read()).value), "abc");
    await reader.cancel();
    await conn!.waitClosed();
    assertEquals(transport.pool(upstream.key)?.size, 0);
  } finally {
    transport.close();
    await server.close();
  }
});

Deno.test("the client going away aborts the wait for the head", async () => {
  const requested = Promise.withResolvers<void>();
  const server = rawServer(async (c) => {
    await c.readRequest();
    requested.resolve();
    await c.waitClosed();
  });
  const transport = new H1Transport(TIMEOUTS);
  try {
    const abort = new AbortController();
    const sent = transport.send(
      request("GET", "/", { signal: abort.signal }),
      upstreamOf("127.0.0.1", server.port, 1),
    );
    await requested.promise;
    abort.abort();
    const err = await assertRejects(() => sent);
    assert(err instanceof UpstreamError, String(err));
    assertEquals(err.failure, "broken");
  } finally {
    transport.close();
    await server.close();
  }
});

Deno.test("Deno.serve forwards the upstream Content-Length with a streamed body", async () => {
  const upstreamServer = rawServer(async (c) => {
    await c.readRequest();
    await c.write("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nabc");
    await c.write("def");
  });
  const transport = new H1Transport(TIMEOUTS);
  const upstream = upstreamOf("127.0.0.1", upstreamServer.port, 1);
  const proxy = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => transport.send(request(req.method, "/", { signal: req.signal }), upstream),
  );
  try {
    const client = await Deno.connect({ hostname: "127.0.0.1", port: proxy.addr.port });
    await client.write(encoder.encode("GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n"));
    let raw = "";
    const buf = new Uint8Array(4096);
    for (let n = await client.read(buf); n !== null; n = await client.read(buf)) {
      raw += new TextDecoder().decode(buf.subarray(0, n));
    }
    client.close();
    const lower = raw.toLowerCase();
    assert(lower.includes("content-length: 6\r\n"), raw);
    assert(!lower.includes("transfer-encoding"), raw);
    assert(raw.endsWith("\r\n\r\nabcdef"), raw);
  } finally {
    await proxy.shutdown();
    transport.close();
    await upstreamServer.close();
  }
});

Deno.test("chunked, HEAD, 204 and until-close responses; keep-alive across them", async () => {
  const answers: Record<string, string> = {
    "/chunked": "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
      "4;ext=1\r\nabcd\r\n2\r\nef\r\n0\r\nX-Trailer: 1\r\n\r\n",
    "/head": "HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
    "/204": "HTTP/1.1 204 No Content\r\n\r\n",
    "/reason": "HTTP/1.1 200 Gr\xfc\xdfe\r\nContent-Length: 0\r\n\r\n",
    "/old": "HTTP/1.0 200 OK\r\n\r\nuntil close",
  };
  const server = rawServer(async (c) => {
    for (let r = await c.readRequest(); r !== null; r = await c.readRequest()) {
      const target = r.head.split(" ")[1];
      const answer = answers[target];
      const bytes = Uint8Array.from(answer, (ch) => ch.charCodeAt(0));
      await c.write(bytes);
      if (target === "/old") return;
    }
  });
  const transport = new H1Transport(TIMEOUTS);
  const upstream = upstreamOf("127.0.0.1", server.port, 1);
  try {
    const chunked = await transport.send(request("GET", "/chunked"), upstream);
    assertEquals(chunked.headers.get("content-length"), null);
    assertEquals(await chunked.text(), "abcdef");
    const head = await transport.send(request("HEAD", "/head"), upstream);
    assertEquals([head.body, head.headers.get("content-length")], [null, "1234"]);
    const empty = await transport.send(request("GET", "/204"), upstream);
    assertEquals([empty.status, empty.body], [204, null]);
    const reason = await transport.send(request("GET", "/reason"), upstream);
    assertEquals(reason.status, 200);
    await reason.body?.cancel();
    assertEquals(server.accepted, 1);
    const old = await transport.send(request("GET", "/old"), upstream);
    assertEquals(await old.text(), "until close");
    assertEquals(transport.pool(upstream.key)?.size, 0);
  } finally {
    transport.close();
    await server.close();
  }
});

Deno.test("a server that left the config: idle connections close now, a busy one after its exchange", async () => {
  const release = Promise.withResolvers<void>();
  const closed: number[] = [];
  const server = rawServer(async (c, index) => {
    for (;;) {
      const r = await c.readRequest();
      if (r === null) break;
      if (r.head.startsWith("GET /slow")) await release.promise;
      await c.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    }
    closed.push(index);
  });
  const upstream = upstreamOf("127.0.0.1", server.port, 1);
  const transport = new H1Transport(TIMEOUTS);
  try {
    // Two pooled connections: one goes idle, the other carries a slow request.
    const first = transport.send(request("GET", "/"), upstream);
    const second = transport.send(request("GET", "/"), upstream);
    await (await first).text();
    await (await second).text();
    assertEquals(transport.pool(upstream.key)?.idleCount, 2);
    const slow = transport.send(request("GET", "/slow"), upstream);
    await eventually(() => transport.pool(upstream.key)?.idleCount === 1);

    transport.retain(new Set());
    await eventually(() => closed.length === 1); // the idle one, at once
    release.resolve();
    const response = await slow;
    assertEquals([response.status, await response.text()], [200, "ok"]);
    await eventually(() => closed.length === 2); // the busy one, after its answer
    assertEquals(transport.pool(upstream.key), undefined);
  } finally {
    release.resolve();
    transport.close();
    await server.close();
  }
});
