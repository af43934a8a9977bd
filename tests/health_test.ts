/**
 * Health checks end to end: dynlb as a subprocess, real backends that die and come back.
 * Detection and recovery times are printed (they go into the closing note); the waits
 * below are readiness polls whose deadlines are only failure guards.
 */
import { assert, assertEquals } from "./_assert.ts";
import { type Backend, configFile, startBackend } from "./_backend.ts";
import { type Dynlb, eventually, get, modeTest, postConfig, startDynlb } from "./_dynlb.ts";
import { httpResponse, rawServer } from "./_raw_server.ts";

const FAST = { interval: 0.2, timeout: 0.2, success: 2, fail: 2 };

function backend(name: string, servers: Backend[], check?: Record<string, unknown>) {
  return {
    backend_name: name,
    ...(check ? { health_check: check } : {}),
    servers: servers.map((s) => ({ addr: "127.0.0.1", port: s.port })),
  };
}

async function stateOf(lb: Dynlb, backendName: string, port: number): Promise<string> {
  const status = await (await fetch(lb.admin + "/status")).json();
  const b = status.backends.find((x: { backend: string }) => x.backend === backendName);
  const s = b?.servers.find((x: { server: string }) => x.server === `127.0.0.1:${port}`);
  return s?.state ?? "missing";
}

modeTest(
  "a killed server is taken out by tcp checks and comes back when restarted",
  "every",
  async (mode) => {
    await using a = await startBackend("a");
    let b = await startBackend("b");
    const path = await configFile({
      backends: [{
        ...backend("pair", [a, b], { type: "tcp", ...FAST }),
        passive_check: { max_fails: 0 },
      }],
      hosts: [{ host: "h.test", backend_name: "pair" }],
    });
    await using lb = await startDynlb(["--config-file", path], { mode });
    const port = b.port;

    await b.close();
    const down = await eventually(
      async () => await stateOf(lb, "pair", port) === "down",
      10_000,
      "server marked down",
    );
    console.log(`tcp: down after ${down.toFixed(0)} ms (fail×interval+timeout = 600 ms)`);
    for (let i = 0; i < 20; i++) assertEquals((await get(lb, "h.test")).body, "a");

    b = await startBackend("b", undefined, port);
    const up = await eventually(
      async () => await stateOf(lb, "pair", port) === "up",
      10_000,
      "server back up",
    );
    console.log(`tcp: up after ${up.toFixed(0)} ms (success×interval = 400 ms)`);
    let seenB = false;
    for (let i = 0; i < 4 && !seenB; i++) seenB = (await get(lb, "h.test")).body === "b";
    assert(seenB, "traffic returns to the restarted server");
    await b.close();
  },
);

modeTest("http checks take out a server answering 500 or hanging", "default", async (mode) => {
  let pingStatus = 200;
  await using sick = await startBackend(
    "sick",
    (request) =>
      new URL(request.url).pathname === "/ping"
        ? new Response(null, { status: pingStatus })
        : new Response("sick"),
  );
  await using hanging = rawServer(httpResponse("200 OK"));
  await using healthy = await startBackend("healthy");
  const path = await configFile({
    backends: [{
      backend_name: "web",
      // A 1 s timeout: with FAST's 0.2 s a loaded machine (the backends live in the test
      // process) timed out two checks of the healthy server in a row and took it out too.
      health_check: { type: "http", uri: "/ping", ...FAST, timeout: 1 },
      passive_check: { max_fails: 0 },
      servers: [sick, hanging, healthy].map((s) => ({ addr: "127.0.0.1", port: s.port })),
    }],
    hosts: [{ host: "web.test", backend_name: "web" }],
  });
  await using lb = await startDynlb(["--config-file", path], { mode });
  await eventually(async () => await stateOf(lb, "web", healthy.port) === "up", 5000);

  pingStatus = 500;
  hanging.response = null;
  const t500 = await eventually(async () => await stateOf(lb, "web", sick.port) === "down");
  const tHang = await eventually(async () => await stateOf(lb, "web", hanging.port) === "down");
  console.log(`http: 500 down after ${t500.toFixed(0)} ms, hang down after ${tHang.toFixed(0)} ms`);
  const status = await (await fetch(lb.admin + "/status")).json();
  const sickRow = status.backends[0].servers.find((s: { server: string }) =>
    s.server.endsWith(`:${sick.port}`)
  );
  assertEquals(sickRow.last_error, "status 500");
  for (let i = 0; i < 6; i++) assertEquals((await get(lb, "web.test")).body, "healthy");
});

modeTest("a backend whose servers are all down answers 503 at once", "every", async (mode) => {
  const only = await startBackend("only");
  const path = await configFile({
    backends: [backend("solo", [only], { type: "tcp", ...FAST, fail: 1 })],
    hosts: [{ host: "solo.test", backend_name: "solo" }],
  });
  await using lb = await startDynlb(["--config-file", path, "--connect-timeout", "30"], { mode });
  const port = only.port;
  await only.close();
  await eventually(async () => await stateOf(lb, "solo", port) === "down");
  const started = performance.now();
  const r = await get(lb, "solo.test");
  const took = performance.now() - started;
  assertEquals(r.status, 503);
  console.log(`all down: 503 in ${took.toFixed(1)} ms`);
});

modeTest("a config change that drops a server stops its checks", "default", async (mode) => {
  await using watched = rawServer(httpResponse("200 OK"));
  await using kept = rawServer(httpResponse("200 OK"));
  const check = { type: "tcp", interval: 0.05, timeout: 0.2, success: 1, fail: 1 };
  const config = (ports: number[]) => ({
    backends: [{
      backend_name: "b",
      health_check: check,
      servers: ports.map((port) => ({ addr: "127.0.0.1", port })),
    }],
    hosts: [{ host: "b.test", backend_name: "b" }],
  });
  const path = await configFile(config([watched.port, kept.port]));
  await using lb = await startDynlb(["--config-file", path], { mode });
  await watched.waitConnections(3);

  assertEquals((await postConfig(lb, config([kept.port]))).status, 200);
  const after = watched.connections;
  // Ten checks of the kept server, and none of the dropped one (one under way may land).
  await kept.waitConnections(kept.connections + 10);
  assert(watched.connections <= after + 1, `checks went on: ${after} → ${watched.connections}`);
  const status = await (await fetch(lb.admin + "/status")).json();
  assertEquals(status.backends[0].servers.length, 1);
});

modeTest(
  "passive detection: killing one of two servers under traffic gives no client error",
  "every",
  async (mode) => {
    await using a = await startBackend("a");
    const b = await startBackend("b");
    const path = await configFile({
      backends: [backend("pair", [a, b])],
      hosts: [{ host: "p.test", backend_name: "pair" }],
    });
    await using lb = await startDynlb(["--config-file", path], { mode });

    let stop = false;
    const statuses = new Map<number, number>();
    let total = 0;
    const client = async () => {
      while (!stop) {
        const r = await get(lb, "p.test");
        statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
        total++;
      }
    };
    const clients = Array.from({ length: 4 }, client);
    try {
      await eventually(() => total >= 50);
      const port = b.port;
      await b.close();
      await eventually(async () => await stateOf(lb, "pair", port) === "down");
      const mark = total;
      await eventually(() => total >= mark + 50);
    } finally {
      stop = true;
      await Promise.all(clients);
    }
    assertEquals([...statuses.keys()], [200], `statuses: ${JSON.stringify([...statuses])}`);
    console.log(`passive: ${total} requests, all 200`);
  },
);

modeTest(
  "a lone server that restarts answers at once (passive detection spares it)",
  "every",
  async (mode) => {
    let only = await startBackend("v1");
    const path = await configFile({
      backends: [backend("solo", [only])],
      hosts: [{ host: "solo.test", backend_name: "solo" }],
    });
    await using lb = await startDynlb(["--config-file", path], { mode });
    const port = only.port;
    await only.close();
    assertEquals((await get(lb, "solo.test")).status, 502);
    only = await startBackend("v2", undefined, port);
    try {
      // nginx behaves the same: one server in a group is never marked unavailable.
      assertEquals((await get(lb, "solo.test")).body, "v2");
    } finally {
      await only.close();
    }
  },
);
