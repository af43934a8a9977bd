/**
 * WebSocket through dynlb, end to end, under each listener: dynlb as a subprocess in front of a
 * real WebSocket server (`Deno.upgradeWebSocket`), with the standard `WebSocket` client and a
 * raw-frame client for what that API hides.
 */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { configFile, configOf } from "./_backend.ts";
import { eventually, postConfig, startDynlb } from "./_dynlb.ts";
import { parseMetrics, scrape, sum } from "./_metrics.ts";

/** `dynlb_open_tunnels` as `/metrics` says. */
async function tunnels(lb: { admin: string }): Promise<number> {
  return sum(parseMetrics(await scrape(lb)), "dynlb_open_tunnels");
}
import {
  closeEvent,
  nextMessage,
  OP,
  openWebSocket,
  rawWebSocket,
  stallingWsServer,
  startWsBackend,
} from "./_websocket.ts";

type Listener = "serve" | "h1";
const LISTENERS: readonly Listener[] = ["serve", "h1"];
const listenerArgs = (listener: Listener): string[] => ["--listener", listener];

const decoder = new TextDecoder();

/** Whether a connection to `url`'s port is refused (nothing listens there). */
async function refuses(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  try {
    (await Deno.connect({ hostname, port: Number(port) })).close();
    return false;
  } catch (err) {
    if (err instanceof Deno.errors.ConnectionRefused) return true;
    throw err;
  }
}

for (const listener of LISTENERS) {
  const t = (name: string) => `[listener=${listener}] websocket: ${name}`;
  const start = async (routes: Parameters<typeof configOf>[0], ...more: string[]) => {
    const path = await configFile(configOf(routes));
    return await startDynlb(["--config-file", path, ...listenerArgs(listener), ...more]);
  };

  Deno.test(t("text and binary echo, subprotocol, Host and forwarding headers"), async () => {
    await using echo = await startWsBackend("a");
    await using lb = await start({ "ws.test": [{ port: echo.port }] });
    await using ws = await openWebSocket(lb.proxy, "ws.test", "/chat?room=1", ["x", "chat"]);
    assertEquals(ws.protocol, "chat");
    ws.send("hello");
    assertEquals(await nextMessage(ws), "hello");
    ws.send(new Uint8Array([0, 1, 2, 255]));
    assertEquals([...new Uint8Array(await nextMessage(ws) as ArrayBuffer)], [0, 1, 2, 255]);
    ws.send("");
    assertEquals(await nextMessage(ws), "");
    const seen = echo.seen[0];
    assertEquals(seen.target, "/chat?room=1");
    assertEquals(seen.headers.get("host"), "ws.test");
    assertEquals(seen.headers.get("x-forwarded-for"), "127.0.0.1");
    assertEquals(seen.headers.get("sec-websocket-protocol"), "x, chat");
  });

  Deno.test(t("a 1 MiB message each way"), async () => {
    await using echo = await startWsBackend("a");
    await using lb = await start({ "ws.test": [{ port: echo.port }] });
    await using ws = await openWebSocket(lb.proxy, "ws.test");
    const big = new Uint8Array(1024 * 1024).map((_, i) => (i * 7) & 0xff);
    ws.send(big);
    const back = new Uint8Array(await nextMessage(ws) as ArrayBuffer);
    assertEquals(back.length, big.length);
    assert(back.every((b, i) => b === big[i]), "the same bytes came back");
    const text = "é".repeat(512 * 1024);
    ws.send(text);
    assertEquals(await nextMessage(ws), text);
  });

  Deno.test(t("ping gets pong; fragmented messages arrive whole"), async () => {
    await using echo = await startWsBackend("a");
    await using lb = await start({ "ws.test": [{ port: echo.port }] });
    await using raw = await rawWebSocket(lb.proxy, "ws.test");
    assertEquals(raw.status, 101);
    await raw.send(OP.ping, "are you there");
    const pong = await raw.frame();
    assertEquals([pong.opcode, decoder.decode(pong.payload)], [OP.pong, "are you there"]);
    await raw.send(OP.text, "frag", false);
    await raw.send(OP.continuation, "ment", false);
    await raw.send(OP.continuation, "ed", true);
    const whole = await raw.frame();
    assertEquals([whole.opcode, whole.fin, decoder.decode(whole.payload)], [
      OP.text,
      true,
      "fragmented",
    ]);
  });

  Deno.test(t("close codes and reasons pass both ways"), async () => {
    await using echo = await startWsBackend("a");
    await using lb = await start({ "ws.test": [{ port: echo.port }] });
    // The server closes: the client sees its code and reason.
    for (const [code, reason] of [[4001, "bye"], [1011, "server trouble"], [1000, ""]] as const) {
      await using ws = await openWebSocket(lb.proxy, "ws.test");
      ws.send(`close ${code} ${reason}`);
      const event = await closeEvent(ws);
      assertEquals([event.code, event.reason], [code, reason]);
    }
    // The client closes: the server sees its code and reason.
    const ws = await openWebSocket(lb.proxy, "ws.test");
    ws.send("x");
    await nextMessage(ws);
    ws.close(4321, "client leaves");
    await closeEvent(ws);
    const index = echo.seen.length - 1;
    assertEquals(await echo.closedAt(index), { code: 4321, reason: "client leaves" });
  });

  Deno.test(t("100 concurrent sockets each get their own answers"), async () => {
    await using a = await startWsBackend("a");
    await using b = await startWsBackend("b");
    await using lb = await start({ "ws.test": [{ port: a.port }, { port: b.port }] });
    const sockets = await Promise.all(
      Array.from({ length: 100 }, () => openWebSocket(lb.proxy, "ws.test")),
    );
    try {
      await eventually(() => a.open + b.open === 100, 10_000, "100 sockets open at the servers");
      assert(a.open > 0 && b.open > 0, "balanced over both servers");
      assertEquals(await tunnels(lb), 100);
      await Promise.all(sockets.map(async (ws, i) => {
        for (let round = 0; round < 5; round++) {
          ws.send(`${i}:${round}`);
          assertEquals(await nextMessage(ws), `${i}:${round}`);
        }
      }));
    } finally {
      await Promise.all(sockets.map((ws) => ws[Symbol.asyncDispose]()));
    }
    await eventually(async () => await tunnels(lb) === 0, 5_000, "no tunnel left in /metrics");
  });

  Deno.test(t("an open socket survives a config change; new ones follow it"), async () => {
    await using a = await startWsBackend("a");
    await using b = await startWsBackend("b");
    await using lb = await start({ "ws.test": [{ port: a.port }] });
    await using old = await openWebSocket(lb.proxy, "ws.test");
    old.send("name");
    assertEquals(await nextMessage(old), "a");
    const posted = await postConfig(lb, configOf({ "ws.test": [{ port: b.port }] }));
    assertEquals(posted.status, 200);
    await using fresh = await openWebSocket(lb.proxy, "ws.test");
    fresh.send("name");
    assertEquals(await nextMessage(fresh), "b");
    for (let i = 0; i < 3; i++) {
      old.send(`still ${i}`);
      assertEquals(await nextMessage(old), `still ${i}`);
    }
  });

  Deno.test(t("SIGTERM ends open sockets (h1: after the drain), and dynlb exits 0"), async () => {
    await using echo = await startWsBackend("a");
    await using lb = await start({ "ws.test": [{ port: echo.port }] }, "--shutdown-timeout", "2");
    await using ws = await openWebSocket(lb.proxy, "ws.test");
    ws.send("x");
    await nextMessage(ws);
    const exited = lb.stop("SIGTERM");
    if (listener === "h1") {
      // The h1 listener lets tunnels run during the drain (next test), then cuts them at the
      // timeout.
      assertEquals((await closeEvent(ws)).wasClean, false, "cut, not closed with a code");
      assertEquals(await exited, 0);
      return;
    }
    const event = await closeEvent(ws);
    // Deno.serve closes upgraded sockets itself when it shuts down: "going away".
    assertEquals(event.code, 1001);
    assertEquals(await exited, 0);
    await echo.closedAt(0);
  });

  if (listener === "h1") {
    Deno.test(t("a tunnel runs on during the drain, which ends when the tunnel does"), async () => {
      await using echo = await startWsBackend("a");
      // The timeout is only a bound: the drain must end because the socket did.
      await using lb = await start(
        { "ws.test": [{ port: echo.port }] },
        "--shutdown-timeout",
        "60",
      );
      await using ws = await openWebSocket(lb.proxy, "ws.test");
      ws.send("x");
      await nextMessage(ws);
      const exited = lb.stop("SIGTERM");
      // The drain has begun once no worker accepts a connection any more.
      await eventually(() => refuses(lb.proxy), 10_000, "the proxy port closed");
      ws.send("during the drain");
      assertEquals(await nextMessage(ws), "during the drain");
      ws.close(1000, "done");
      assertEquals((await closeEvent(ws)).code, 1000);
      assertEquals(await exited, 0);
      assert(!lb.logs().includes("shutdown timeout"), "the drain ended with the tunnel");
    });

    Deno.test(t("a non-101 answer to an upgrade stays an ordinary HTTP exchange"), async () => {
      await using echo = await startWsBackend("a");
      await using lb = await start({ "ws.test": [{ port: echo.port }] });
      await using raw = await rawWebSocket(lb.proxy, "ws.test", "/plain");
      assertEquals(raw.status, 200);
      const length = Number(raw.head.match(/content-length: *(\d+)/i)?.[1]);
      assertEquals(length, "plain answer from a".length);
      // The connection is still HTTP: a second request on it gets its own answer.
      await raw.write("GET /next HTTP/1.1\r\nHost: ws.test\r\nConnection: close\r\n\r\n");
      const rest = await raw.rest();
      assertMatch(rest, /^plain answer from a/);
      assertMatch(rest, /HTTP\/1\.1 200[^]*http answer from a$/);
      await using refused = await rawWebSocket(lb.proxy, "ws.test", "/refuse");
      assertEquals(refused.status, 403);
    });
  }

  Deno.test(t("the server speaks first"), async () => {
    await using echo = await startWsBackend("a");
    await using lb = await start({ "ws.test": [{ port: echo.port }] });
    await using ws = await openWebSocket(lb.proxy, "ws.test", "/hello");
    assertEquals(await nextMessage(ws), "hello from a");
  });

  Deno.test(t("unknown host and dead server are ordinary error answers"), async () => {
    await using echo = await startWsBackend("a");
    await using lb = await start({ "ws.test": [{ port: echo.port }] });
    await using unknown = await rawWebSocket(lb.proxy, "nowhere.test");
    assertEquals(unknown.status, 404);
    await echo.close();
    await using dead = await rawWebSocket(lb.proxy, "ws.test");
    assertEquals(dead.status, 502);
    assertMatch(dead.head, /x-dynlb-error: upstream-unreachable/i);
  });
}

Deno.test("[listener=serve] websocket: a refused upgrade is a 502, other upgrades a 501", async () => {
  await using echo = await startWsBackend("a");
  const path = await configFile(configOf({ "ws.test": [{ port: echo.port }] }));
  await using lb = await startDynlb(["--config-file", path, ...listenerArgs("serve")]);
  // Deno's WebSocket client does not expose a refusal: the serve listener answers 502.
  for (const target of ["/plain", "/refuse"]) {
    await using raw = await rawWebSocket(lb.proxy, "ws.test", target);
    assertEquals(raw.status, 502);
  }
  const { hostname, port } = new URL(lb.proxy);
  const conn = await Deno.connect({ hostname, port: Number(port) });
  await conn.write(new TextEncoder().encode(
    "GET / HTTP/1.1\r\nHost: ws.test\r\nConnection: upgrade\r\nUpgrade: foo/1\r\n\r\n",
  ));
  const buffer = new Uint8Array(4096);
  const n = await conn.read(buffer);
  conn.close();
  const answer = decoder.decode(buffer.subarray(0, n ?? 0));
  assertMatch(answer, /^HTTP\/1\.1 501/);
  assertMatch(answer, /x-dynlb-error: upgrade-not-supported/i);
});

Deno.test("[listener=serve] websocket: a server that stops reading ends the relay, not dynlb", async () => {
  await using stuck = stallingWsServer();
  await using echo = await startWsBackend("a");
  const path = await configFile(configOf({
    "stuck.test": [{ port: stuck.port }],
    "ws.test": [{ port: echo.port }],
  }));
  await using lb = await startDynlb(["--config-file", path, ...listenerArgs("serve")]);
  await using raw = await rawWebSocket(lb.proxy, "stuck.test");
  assertEquals(raw.status, 101);
  // More than the relay may hold (32 MiB) for a server that reads nothing.
  const mib = new Uint8Array(1024 * 1024);
  const sending = (async () => {
    for (let i = 0; i < 48; i++) await raw.send(OP.binary, mib);
  })().catch(() => {});
  // The relay gives up: a close frame (1011) or, when the client is still sending as dynlb
  // closes, a reset that takes the frame with it. Without the bound it would buffer forever.
  let deadline: ReturnType<typeof setTimeout> | undefined;
  const ending = await Promise.race([
    (async () => {
      for (;;) {
        const frame = await raw.frame();
        if (frame.opcode === OP.close) return new DataView(frame.payload.buffer).getUint16(0);
      }
    })().catch(() => "connection ended"),
    new Promise((resolve) => deadline = setTimeout(() => resolve("still open after 30 s"), 30_000)),
  ]);
  clearTimeout(deadline);
  assert(ending === 1011 || ending === "connection ended", `ended with ${ending}`);
  raw.close();
  await sending;
  // dynlb itself is fine.
  await using ws = await openWebSocket(lb.proxy, "ws.test");
  ws.send("still here");
  assertEquals(await nextMessage(ws), "still here");
});
