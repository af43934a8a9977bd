import { tempDir } from "../../tests/_temp.ts";
import { assertEquals } from "../../tests/_assert.ts";
import { startBackend } from "../../tests/_backend.ts";
import { eventually, get } from "../../tests/_dynlb.ts";
import { setLogLevel } from "../log.ts";
import type { ProxySettings } from "./server.ts";
import { WorkerPool } from "./workers.ts";

const CRASHING_WORKER = new URL("../../tests/_crashing_worker.ts", import.meta.url).href;
const SLOW_WORKER = new URL("../../tests/_slow_worker.ts", import.meta.url).href;

/** What both tests start their workers with: a shared port, the h1 listener and transport. */
const SETTINGS: ProxySettings = {
  listen: { hostname: "127.0.0.1", port: 0 },
  reusePort: true,
  listener: "h1",
  transport: "h1",
  timeouts: { connectMs: 1000, responseMs: 5000 },
  client: { headerMs: 10_000, idleMs: 60_000, bodyMs: 60_000, tunnelIdleMs: 600_000 },
  maxConnections: 1024,
  retries: 1,
  trustedProxies: [],
};

Deno.test("a worker that dies is replaced, with the running config, before it listens", async () => {
  await using backend = await startBackend("ok");
  const dir = await tempDir();
  const flag = `${dir}/crash`;
  await Deno.writeTextFile(flag, "");
  Deno.env.set("DYNLB_TEST_CRASH_FLAG", flag);
  setLogLevel("error");
  const pool = await WorkerPool.start(
    2,
    SETTINGS,
    "error",
    () => {},
    CRASHING_WORKER,
  );
  try {
    await pool.applyConfig(
      {
        backends: [{
          backend_name: "b",
          servers: [{ addr: "127.0.0.1", port: backend.port, weight: 1 }],
        }],
        hosts: [{ host: "w.test", backend_name: "b" }],
      },
      1,
      [],
    );
    await pool.listen();
    const lb = { proxy: `http://127.0.0.1:${pool.addr.port}` };
    assertEquals((await get(lb, "w.test")).body, "ok");

    pool.setHealth("b", "127.0.0.1:1", true); // kills one worker
    await eventually(() => pool.restarts === 1, 10_000, "worker restarted");
    // Every new connection lands on one of the two workers; none answers from an empty table.
    for (let i = 0; i < 40; i++) {
      const r = await get(lb, "w.test");
      assertEquals([r.status, r.body], [200, "ok"]);
    }
  } finally {
    await pool.shutdown();
    Deno.env.delete("DYNLB_TEST_CRASH_FLAG");
    setLogLevel("info");
  }
});

Deno.test("applyConfig resolves only once every worker routes by the config", async () => {
  await using backend = await startBackend("ok");
  setLogLevel("error");
  const pool = await WorkerPool.start(
    2,
    SETTINGS,
    "error",
    () => {},
    SLOW_WORKER,
  );
  const configFor = (host: string) => ({
    backends: [{
      backend_name: "b",
      servers: [{ addr: "127.0.0.1", port: backend.port, weight: 1 }],
    }],
    hosts: [{ host, backend_name: "b" }],
  });
  try {
    await pool.applyConfig(configFor("one.test"), 1, []);
    await pool.listen();
    const lb = { proxy: `http://127.0.0.1:${pool.addr.port}` };
    // The workers apply each config 300 ms late; the pool's answer waits for them.
    await pool.applyConfig(configFor("two.test"), 2, []);
    // Fresh connections, spread by the kernel over both workers' listeners.
    const answers = await Promise.all(
      Array.from({ length: 16 }, () => get(lb, "two.test").then((r) => r.status)),
    );
    assertEquals(answers, Array(16).fill(200));
  } finally {
    await pool.shutdown();
    setLogLevel("info");
  }
});
