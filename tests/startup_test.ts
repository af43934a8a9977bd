/**
 * Start-up: no connection is accepted before the first config is in force on every worker, so a
 * client that hammers the port from before the process exists sees refused connections, then
 * correct answers — never a 404 for a configured host.
 */
import { assert, assertEquals } from "./_assert.ts";
import { configFile, configOf, deadPort, startBackend } from "./_backend.ts";
import { startDynlb } from "./_dynlb.ts";
import { redisArgs, startRedis } from "./_redis.ts";

/** What a client connecting again and again saw. */
interface Outcomes {
  refused: number;
  /**
   * Connections reset before any byte, before the first right answer: with several workers
   * dynlb probes the port with a listener of an instant (see `WorkerPool.listen`).
   */
  resetEarly: number;
  ok: number;
  /** Anything else: a status or body that is not the backend's answer, a reset, a bad read. */
  wrong: string[];
}

/**
 * Connects to `port` on fresh connections, one request each, from `clients` loops at once,
 * until `stop` resolves and every loop has had `okAfterStop` more correct answers.
 */
async function hammer(
  port: number,
  host: string,
  expected: string,
  stop: Promise<unknown>,
  clients = 4,
  okAfterStop = 25,
): Promise<Outcomes> {
  const outcomes: Outcomes = { refused: 0, resetEarly: 0, ok: 0, wrong: [] };
  let stopped = false;
  stop.then(() => stopped = true, () => stopped = true);
  const request = new TextEncoder().encode(
    `GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`,
  );
  const loop = async () => {
    let after = 0;
    while (after < okAfterStop) {
      if (stopped) after++;
      let conn: Deno.TcpConn;
      try {
        conn = await Deno.connect({ hostname: "127.0.0.1", port });
      } catch (err) {
        if (!(err instanceof Deno.errors.ConnectionRefused)) {
          outcomes.wrong.push(`connect: ${(err as Error).name}: ${(err as Error).message}`);
          continue;
        }
        outcomes.refused++;
        // Pacing, not waiting for anything: keeps the loop from starving the process starting.
        await new Promise((resolve) => setTimeout(resolve, 1));
        continue;
      }
      let text: string;
      try {
        await conn.write(request);
        text = await new Response(conn.readable).text();
      } catch (err) {
        if (outcomes.ok === 0 && err instanceof Deno.errors.ConnectionReset) outcomes.resetEarly++;
        else outcomes.wrong.push(`${(err as Error).name}: ${(err as Error).message}`);
        continue;
      }
      if (text === "" && outcomes.ok === 0) {
        outcomes.resetEarly++;
        continue;
      }
      const status = text.slice(9, 12);
      const body = text.slice(text.indexOf("\r\n\r\n") + 4);
      if (status === "200" && body === expected) outcomes.ok++;
      else outcomes.wrong.push(text.length > 200 ? text.slice(0, 200) + "…" : text);
    }
  };
  await Promise.all(Array.from({ length: clients }, loop));
  return outcomes;
}

for (const workers of [1, 2]) {
  Deno.test(`start-up (file store, ${workers} worker(s)): refused, then right answers, never 404`, async () => {
    await using c = await startBackend("c");
    const path = await configFile(configOf({ "c.test": [{ port: c.port }] }));
    const port = deadPort();
    const ready = Promise.withResolvers<void>();
    const seen = hammer(port, "c.test", "c", ready.promise);
    try {
      await using _lb = await startDynlb([
        "--listen",
        `127.0.0.1:${port}`,
        "--workers",
        String(workers),
        "--config-file",
        path,
      ]);
      ready.resolve();
      const outcomes = await seen;
      assertEquals(outcomes.wrong, []);
      assert(outcomes.refused > 0, "the client was connecting before the listener opened");
      assert(outcomes.ok >= 100, `${outcomes.ok} right answers`);
    } finally {
      ready.resolve();
    }
  });
}

Deno.test("start-up (Redis store answering slowly): refused until the stored config is in force", async () => {
  await using redis = await startRedis();
  await using c = await startBackend("c");
  await redis.command(
    "SET",
    "balancer",
    JSON.stringify(configOf({ "c.test": [{ port: c.port }] })),
  );
  const dir = await Deno.makeTempDir({ prefix: "dynlb-startup-" });
  const port = deadPort();
  const ready = Promise.withResolvers<void>();
  // Redis accepts connections but holds every command for 1.2 s (within dynlb's 2 s timeout).
  assertEquals((await redis.command("CLIENT", "PAUSE", "1200", "ALL")).trim(), "+OK");
  const paused = performance.now();
  const seen = hammer(port, "c.test", "c", ready.promise);
  try {
    await using lb = await startDynlb(
      redisArgs(redis.port, dir, "--listen", `127.0.0.1:${port}`, "--workers", "2"),
    );
    const readyAfter = performance.now() - paused;
    ready.resolve();
    const outcomes = await seen;
    assertEquals(outcomes.wrong, []);
    assert(outcomes.refused > 0, "the client was connecting before the listener opened");
    assert(outcomes.ok >= 100, `${outcomes.ok} right answers`);
    assert(!lb.logs().includes("unreachable"), "the store answered (slowly), no fallback");
    console.log(
      `ready ${readyAfter.toFixed(0)} ms after Redis paused; ${outcomes.refused} refused connects`,
    );
  } finally {
    ready.resolve();
    await Deno.remove(dir, { recursive: true });
  }
});
