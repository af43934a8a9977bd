import { assert, assertEquals, assertRejects } from "../../tests/_assert.ts";
import { directIo } from "./direct_io.ts";

async function pair(): Promise<[Deno.TcpConn, Deno.TcpConn, Deno.TcpListener]> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const dialed = Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const accepted = await listener.accept();
  return [await dialed, accepted, listener];
}

Deno.test("directIo takes effect on the pinned Deno (its internals are there)", async () => {
  const [a, b, listener] = await pair();
  try {
    // Fails when a Deno upgrade removes `core.read`/`core.write` or the rid symbol: the data
    // plane would silently fall back to the slower public methods.
    assert(Object.hasOwn(directIo(a), "read"), "read not shadowed");
    assert(Object.hasOwn(a, "write"), "write not shadowed");
    assert(!Object.hasOwn(b, "read"));
  } finally {
    a.close();
    b.close();
    listener.close();
  }
});

Deno.test("directIo: bytes both ways, end of stream as null, like the public methods", async () => {
  const [a, b, listener] = await pair();
  directIo(a);
  directIo(b);
  try {
    assertEquals(await a.write(new TextEncoder().encode("ping")), 4);
    const buf = new Uint8Array(16);
    assertEquals(await b.read(buf), 4);
    assertEquals(new TextDecoder().decode(buf.subarray(0, 4)), "ping");
    assertEquals(await b.read(new Uint8Array(0)), 0);
    await b.write(new TextEncoder().encode("pong"));
    assertEquals(await a.read(buf), 4);
    a.closeWrite();
    assertEquals(await b.read(buf), null);
  } finally {
    a.close();
    b.close();
    listener.close();
  }
});

Deno.test("directIo: a read pending when the connection closes rejects, a closed one throws", async () => {
  const [a, b, listener] = await pair();
  directIo(a);
  try {
    const pending = a.read(new Uint8Array(8));
    a.close();
    await assertRejects(() => pending);
    const err = await assertRejects(() => a.write(new Uint8Array(1)));
    assert(err instanceof Deno.errors.BadResource, `${err}`);
  } finally {
    b.close();
    listener.close();
  }
});
