/**
 * Documented health rules end to end that the main health suite does not cover: the passive
 * counting window, the last-server-up rule, the spread of first checks and one check loop per
 * target per instance whatever `--workers` is.
 */
import { assert, assertEquals } from "./_assert.ts";
import { configFile, deadPort, startBackend } from "./_backend.ts";
import { type Dynlb, eventually, get, modeTest, startDynlb } from "./_dynlb.ts";
import { rawServer } from "./_raw_server.ts";

interface ServerStatus {
  server: string;
  state: string;
  failures: number;
}

async function serverStatus(lb: Dynlb, backend: string, port: number): Promise<ServerStatus> {
  const status = await (await fetch(lb.admin + "/status")).json();
  const b = status.backends.find((x: { backend: string }) => x.backend === backend);
  const s = b?.servers.find((x: { server: string }) => x.server === `127.0.0.1:${port}`);
  assert(s !== undefined, `no status for ${backend} 127.0.0.1:${port}`);
  return s;
}

/**
 * The status of `port` once the control plane has the failure of the request just made: a worker
 * reports it by message after the answer went out, so it can land after the answer (the count
 * moves from `before`, or the server goes down). A timeout says what the status and logs showed.
 */
async function afterReport(
  lb: Dynlb,
  backend: string,
  port: number,
  before: number,
): Promise<ServerStatus> {
  let status = await serverStatus(lb, backend, port);
  try {
    await eventually(
      async () => {
        status = await serverStatus(lb, backend, port);
        return status.state === "down" || status.failures !== before;
      },
      10_000,
      `the failure of 127.0.0.1:${port} reported`,
    );
  } catch (err) {
    throw new Error(
      `${(err as Error).message}; last status ${JSON.stringify(status)}; logs:\n${lb.logs()}`,
    );
  }
  return status;
}

modeTest(
  "passive failures older than fail_timeout do not count",
  // It waits out a window: two rows, which between them run every transport and listener.
  "pair",
  async (mode) => {
    await using good = await startBackend("good");
    // A server that closes every connection without an answer: each attempt is a failure, and
    // the test holds its port (a port merely left free could be taken by another listener).
    await using broken = rawServer("");
    const path = await configFile({
      backends: [{
        backend_name: "w",
        // The window is wide enough for a worker's report to arrive on a loaded machine.
        passive_check: { max_fails: 2, fail_timeout: 3 },
        // The heavy (broken) server is picked first; its failed attempts move to the good one.
        servers: [
          { addr: "127.0.0.1", port: broken.port, weight: 100 },
          { addr: "127.0.0.1", port: good.port, weight: 1 },
        ],
      }],
      hosts: [{ host: "w.test", backend_name: "w" }],
    });
    await using lb = await startDynlb(["--config-file", path], { mode });

    assertEquals((await get(lb, "w.test")).body, "good");
    assertEquals(broken.connections, 1);
    assertEquals((await afterReport(lb, "w", broken.port, 0)).failures, 1);
    // The window moves past the first failure (status counts failures in the current window).
    await eventually(
      async () => (await serverStatus(lb, "w", broken.port)).failures === 0,
      10_000,
      "first failure out of the window",
    );
    assertEquals((await get(lb, "w.test")).body, "good");
    assertEquals(broken.connections, 2, "the second request did not try the broken server");
    const second = await afterReport(lb, "w", broken.port, 0);
    assertEquals([second.state, second.failures], ["up", 1], "an old failure was counted");
    // Two within the window do take it down.
    assertEquals((await get(lb, "w.test")).body, "good");
    assertEquals((await afterReport(lb, "w", broken.port, 1)).state, "down");
  },
);

modeTest(
  "passive failures never take out the last server up of a backend",
  "pair",
  async (mode) => {
    const x = deadPort();
    const y = deadPort();
    const path = await configFile({
      backends: [{
        backend_name: "pair",
        passive_check: { max_fails: 1, fail_timeout: 60 },
        servers: [
          { addr: "127.0.0.1", port: x, weight: 100 },
          { addr: "127.0.0.1", port: y, weight: 1 },
        ],
      }],
      hosts: [{ host: "pair.test", backend_name: "pair" }],
    });
    await using lb = await startDynlb(["--config-file", path], { mode });

    // x fails and goes down; the retry on y fails too, but y is now the last server up.
    const first = await get(lb, "pair.test");
    assertEquals(first.status, 502);
    assertEquals((await serverStatus(lb, "pair", x)).state, "down");
    assertEquals((await serverStatus(lb, "pair", y)).state, "up");
    const again = await get(lb, "pair.test");
    assertEquals(again.headers.get("x-dynlb-error"), "upstream-unreachable");
    assertEquals((await serverStatus(lb, "pair", y)).state, "up");

    // So y answers as soon as it is back, not after fail_timeout.
    await using _back = await startBackend("y", undefined, y);
    assertEquals((await get(lb, "pair.test")).body, "y");
  },
);

modeTest("first checks of new servers are spread over the interval", "default", async (mode) => {
  const servers = Array.from({ length: 20 }, () => rawServer(null));
  try {
    const firstAt = servers.map((s) => s.waitConnections(1).then(() => performance.now()));
    const path = await configFile({
      backends: [{
        backend_name: "many",
        health_check: { type: "tcp", interval: 3, timeout: 1, success: 1, fail: 1 },
        servers: servers.map((s) => ({ addr: "127.0.0.1", port: s.port })),
      }],
      hosts: [{ host: "many.test", backend_name: "many" }],
    });
    await using _lb = await startDynlb(["--config-file", path], { mode });
    const times = await Promise.all(firstAt);
    const spread = Math.max(...times) - Math.min(...times);
    console.log(`first checks of 20 servers spread over ${spread.toFixed(0)} ms (interval 3 s)`);
    // 20 random moments in 3 s all within 0.75 s: about 20 × 0.25^19, never.
    assert(spread > 750, `first checks bunched within ${spread.toFixed(0)} ms`);
  } finally {
    await Promise.all(servers.map((s) => s.close()));
  }
});

modeTest(
  "one check loop per server and definition, whatever --workers is",
  // Worker counts 1 and 2 are what matters here.
  (mode) => mode.transport === "h1",
  async (mode) => {
    // Every check hangs until its timeout: two loops checking one server would overlap.
    await using hanging = rawServer(null);
    const check = { type: "http", uri: "/ping", interval: 0.05, timeout: 0.4, success: 1, fail: 5 };
    const servers = [{ addr: "127.0.0.1", port: hanging.port }];
    const path = await configFile({
      backends: [
        { backend_name: "one", health_check: check, servers },
        { backend_name: "two", health_check: check, servers },
      ],
      hosts: [{ host: "one.test", backend_name: "one" }, { host: "two.test", backend_name: "two" }],
    });
    await using _lb = await startDynlb(["--config-file", path], { mode });
    await hanging.waitConnections(4);
    assertEquals(hanging.maxOpen, 1, "checks of one server overlapped: more than one loop");
  },
);
