/**
 * Retries end to end (README "Retries"): which failed attempts move to another server, how many
 * times, and which request bodies can be sent again. The failing servers are real loopback
 * servers that read the request and close the connection without answering (a broken exchange).
 */
import { assertEquals } from "./_assert.ts";
import { type Backend, configFile, deadPort, startBackend } from "./_backend.ts";
import { get, modeTest, startDynlb } from "./_dynlb.ts";

/** Body bytes a breaker reads before it hangs up: a large body is cut in the middle. */
const PARTIAL_BODY = 16 * 1024;

/**
 * A running server that reads each request (the head and at most `PARTIAL_BODY` bytes of its
 * body) and hangs up without answering.
 */
interface Breaker extends AsyncDisposable {
  readonly port: number;
  /** Requests received. */
  readonly requests: number;
  close(): Promise<void>;
}

/** Starts a {@link Breaker} on a free loopback port. */
function breaker(): Breaker {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let requests = 0;
  const handlers = new Set<Promise<void>>();
  const serve = async (conn: Deno.Conn) => {
    try {
      let text = "";
      const buf = new Uint8Array(65536);
      const decoder = new TextDecoder("latin1");
      for (;;) {
        const end = text.indexOf("\r\n\r\n");
        if (end >= 0) {
          const length = Number(/\r\ncontent-length: *(\d+)/i.exec(text)?.[1] ?? 0);
          if (text.length >= end + 4 + Math.min(length, PARTIAL_BODY)) break;
        }
        const n = await conn.read(buf);
        if (n === null) return;
        text += decoder.decode(buf.subarray(0, n));
      }
      requests++;
    } catch {
      // The proxy went away first.
    } finally {
      conn.close();
    }
  };
  const accepting = (async () => {
    try {
      for await (const conn of listener) {
        const p = serve(conn);
        handlers.add(p);
        p.finally(() => handlers.delete(p));
      }
    } catch {
      // Closed.
    }
  })();
  const close = async () => {
    try {
      listener.close();
    } catch {
      // Already closed.
    }
    await accepting;
    await Promise.all(handlers);
  };
  return {
    port: (listener.addr as Deno.NetAddr).port,
    get requests() {
      return requests;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/** One backend `r` on `r.test` whose servers are `ports` (weights in order), no passive check. */
function backendOf(servers: Array<{ port: number; weight: number }>) {
  return {
    backends: [{
      backend_name: "r",
      passive_check: { max_fails: 0 },
      servers: servers.map((s) => ({ addr: "127.0.0.1", port: s.port, weight: s.weight })),
    }],
    hosts: [{ host: "r.test", backend_name: "r" }],
  };
}

/** A backend that answers with the method and the length of the body it received. */
function counter(): Promise<Backend> {
  return startBackend("ok", async (request) => {
    const body = new Uint8Array(await request.arrayBuffer());
    return new Response(`${request.method} ${body.length}`);
  });
}

modeTest("--retries bounds the servers tried for one request", "pair", async (mode) => {
  await using b1 = breaker(), b2 = breaker(), b3 = breaker(), b4 = breaker();
  const servers = [b1, b2, b3, b4];
  {
    const path = await configFile(backendOf(servers.map((s) => ({ port: s.port, weight: 1 }))));
    await using lb = await startDynlb(["--config-file", path, "--retries", "1"], { mode });
    const r = await get(lb, "r.test");
    assertEquals(r.status, 502);
    assertEquals(r.headers.get("x-dynlb-error"), "upstream-unreachable");
    // One attempt plus one retry, on two different servers.
    assertEquals(servers.map((s) => s.requests).sort(), [0, 0, 1, 1]);
  }
});

modeTest("a broken exchange is replayed for idempotent methods only", "pair", async (mode) => {
  await using broken = breaker();
  await using ok = await counter();
  {
    // The heavy server is always picked first (smooth WRR), the light one is the retry.
    const path = await configFile(backendOf([
      { port: broken.port, weight: 100 },
      { port: ok.port, weight: 1 },
    ]));
    await using lb = await startDynlb(["--config-file", path], { mode });

    const replayed = await get(lb, "r.test");
    assertEquals([replayed.status, replayed.body], [200, "GET 0"]);
    assertEquals(broken.requests, 1);

    // The first server may have acted on a POST: it is not sent again.
    const post = await get(lb, "r.test", "/", { method: "POST", body: "pay once" });
    assertEquals(post.status, 502);
    assertEquals(broken.requests, 2);
    assertEquals(ok.seen.length, 1);
  }
});

modeTest("a non-idempotent request moves on when no connection was made", "pair", async (mode) => {
  await using ok = await counter();
  const path = await configFile(backendOf([
    { port: deadPort(), weight: 100 },
    { port: ok.port, weight: 1 },
  ]));
  await using lb = await startDynlb(["--config-file", path], { mode });
  const small = await get(lb, "r.test", "/", { method: "POST", body: "x".repeat(100) });
  assertEquals([small.status, small.body], [200, "POST 100"]);
  // `fetch` takes a streamed body before it connects, so only `h1` can hand it on.
  if (mode.transport !== "h1") return;
  const large = await get(lb, "r.test", "/", {
    method: "POST",
    body: new Uint8Array(200 * 1024),
  });
  assertEquals([large.status, large.body], [200, `POST ${200 * 1024}`]);
});

modeTest(
  "bodies up to 64 KiB are buffered and replayed; larger ones never",
  "pair",
  async (mode) => {
    const broken = breaker();
    await using ok = await counter();
    try {
      const path = await configFile(backendOf([
        { port: broken.port, weight: 100 },
        { port: ok.port, weight: 1 },
      ]));
      await using lb = await startDynlb(["--config-file", path], { mode });

      const small = await get(lb, "r.test", "/", {
        method: "PUT",
        body: new Uint8Array(64 * 1024),
      });
      assertEquals([small.status, small.body], [200, `PUT ${64 * 1024}`]);
      assertEquals(broken.requests, 1);

      // Streamed to the first server, which took part of it: it cannot be sent again.
      const large = await get(lb, "r.test", "/", {
        method: "PUT",
        body: new Uint8Array(64 * 1024 + 1),
      });
      assertEquals(large.status, 502);
      assertEquals(broken.requests, 2);
      assertEquals(ok.seen.length, 1);
    } finally {
      await broken.close();
    }
  },
);
