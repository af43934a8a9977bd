/** The per-server pool's bookkeeping over real loopback connections. */
import { assertEquals } from "../../../tests/_assert.ts";
import { rawServer } from "../../../tests/_scripted_server.ts";
import { H1Connection } from "./connection.ts";
import { ServerPool } from "./pool.ts";

Deno.test("pool: size limit, LIFO reuse, idle timeout, close", async () => {
  const server = rawServer((c) => c.waitClosed());
  const connect = async () =>
    new H1Connection(await Deno.connect({ hostname: "127.0.0.1", port: server.port }));
  const pool = new ServerPool(2, 1000);
  try {
    const [a, b, c] = [await connect(), await connect(), await connect()];
    assertEquals([pool.admit(a), pool.admit(b), pool.admit(c)], [true, true, false]);
    pool.release(c, 0); // not a member: closed, not kept
    assertEquals(c.closed, true);
    pool.release(a, 0);
    pool.release(b, 10);
    assertEquals(pool.idleCount, 2);
    assertEquals(pool.take(20), b); // most recently used first
    pool.release(b, 30);
    assertEquals(pool.sweep(1005), 1); // a idled since 0: expired
    assertEquals(a.closed, true);
    assertEquals(pool.take(2000), null); // b expired too
    assertEquals([b.closed, pool.size], [true, 0]);

    const d = await connect();
    pool.admit(d);
    pool.release(d, 0);
    pool.close();
    assertEquals([d.closed, pool.idleCount, pool.size], [true, 0, 0]);
  } finally {
    pool.close();
    await server.close();
  }
});
