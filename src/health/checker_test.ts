import { assert, assertEquals, assertMatch } from "../../tests/_assert.ts";
import { closedPort, httpResponse, rawServer, until } from "../../tests/_raw_server.ts";
import type { BackendConfig, HealthCheckConfig } from "../config/types.ts";
import { setLogLevel } from "../log.ts";
import { HealthChecker } from "./checker.ts";
import type { HealthChange } from "./types.ts";

setLogLevel("error");

const OK = httpResponse("200 OK");

function tcpCheck(extra: Partial<HealthCheckConfig> = {}): HealthCheckConfig {
  return {
    enable: true,
    type: "tcp",
    interval: 0.05,
    timeout: 0.5,
    success: 2,
    fail: 2,
    ...extra,
  };
}

function backend(
  name: string,
  ports: number[],
  health_check?: HealthCheckConfig,
  extra: Partial<BackendConfig> = {},
): BackendConfig {
  return {
    backend_name: name,
    health_check,
    servers: ports.map((port) => ({ addr: "127.0.0.1", port, weight: 1 })),
    ...extra,
  };
}

/** A checker whose changes can be awaited one by one. */
function harness(options: { now?: () => number } = {}) {
  const changes: HealthChange[] = [];
  let waiting: (() => void) | undefined;
  const checker = new HealthChecker((c) => {
    changes.push(c);
    waiting?.();
  }, { random: () => 0, ...options });
  let read = 0;
  const next = async (): Promise<HealthChange> => {
    const guard = Date.now() + 10_000;
    while (changes.length <= read) {
      if (Date.now() > guard) throw new Error("no health change in time");
      let timer: ReturnType<typeof setTimeout> | undefined;
      await new Promise<void>((resolve) => {
        waiting = resolve;
        timer = setTimeout(resolve, 100);
      });
      clearTimeout(timer);
      waiting = undefined;
    }
    return changes[read++];
  };
  return { checker, changes, next };
}

const key = (port: number) => `127.0.0.1:${port}`;

Deno.test("checker: a closed server goes down after `fail` checks, once; reopened it comes back", async () => {
  let server = rawServer(null);
  const port = server.port;
  const { checker, changes, next } = harness();
  try {
    checker.update([backend("b", [port], tcpCheck())]);
    await server.waitConnections(2);
    assertEquals(changes.length, 0);
    await server.close();
    assertEquals(await next(), {
      backend: "b",
      server: key(port),
      up: false,
      reason: "2 failed tcp checks: connection refused",
    });
    assertEquals(checker.down(), [{ backend: "b", server: key(port) }]);
    // More failing checks do not report again.
    await until(() => checker.status()[0].servers[0].failures >= 5);
    assertEquals(changes.length, 1);

    server = rawServer(null, { port });
    assertEquals(await next(), {
      backend: "b",
      server: key(port),
      up: true,
      reason: "2 passed tcp checks",
    });
    assertEquals(checker.down(), []);
  } finally {
    await checker.close();
    await server.close();
  }
});

Deno.test("checker: http 500 marks down with the status; 200 brings it back", async () => {
  const server = rawServer(httpResponse("500 Internal Server Error"));
  const { checker, next } = harness();
  try {
    checker.update([backend("b", [server.port], tcpCheck({ type: "http", uri: "/ping" }))]);
    const down = await next();
    assertEquals([down.up, down.reason], [false, "2 failed http checks: status 500"]);
    server.response = OK;
    const up = await next();
    assertEquals([up.up, up.reason], [true, "2 passed http checks"]);
  } finally {
    await checker.close();
    await server.close();
  }
});

Deno.test("checker: a hanging http server marks down at the timeout", async () => {
  const server = rawServer(null);
  const { checker, next } = harness();
  try {
    checker.update([
      backend("b", [server.port], tcpCheck({ type: "http", uri: "/", timeout: 0.1, fail: 1 })),
    ]);
    const down = await next();
    assertEquals([down.up, down.reason], [false, "1 failed http checks: timeout after 100 ms"]);
  } finally {
    await checker.close();
    await server.close();
  }
});

Deno.test("checker: checks of one target never overlap, even when slower than the interval", async () => {
  const server = rawServer(null);
  const { checker, next } = harness();
  try {
    checker.update([
      backend(
        "b",
        [server.port],
        tcpCheck({ type: "http", uri: "/", interval: 0.05, timeout: 0.1, fail: 3 }),
      ),
    ]);
    assertEquals((await next()).up, false);
    assertEquals(server.maxOpen, 1);
    assert(server.connections >= 3);
  } finally {
    await checker.close();
    await server.close();
  }
});

Deno.test("checker: a server removed by update is no longer probed", async () => {
  const kept = rawServer(null);
  const removed = rawServer(null);
  const { checker } = harness();
  try {
    checker.update([backend("b", [kept.port, removed.port], tcpCheck())]);
    await removed.waitConnections(2);
    checker.update([backend("b", [kept.port], tcpCheck())]);
    assertEquals(checker.status()[0].servers.map((s) => s.server), [key(kept.port)]);
    // Past one interval (a probe in flight at update time may still have connected).
    const base = kept.connections;
    await kept.waitConnections(base + 2);
    const after = removed.connections;
    await kept.waitConnections(base + 6);
    assertEquals(removed.connections, after);
  } finally {
    await checker.close();
    await kept.close();
    await removed.close();
  }
});

Deno.test("checker: a server shared by two backends with one definition has one loop", async () => {
  const server = rawServer(null);
  const { checker, next } = harness();
  try {
    checker.update([
      backend("a", [server.port], tcpCheck()),
      backend("b", [server.port], tcpCheck()),
    ]);
    await server.waitConnections(6);
    const [a, b] = checker.status().map((s) => s.servers[0]);
    assertEquals(a.passes, b.passes);
    // Two loops would have made about twice as many connections as passes.
    assert(server.connections <= a.passes + 1, `${server.connections} vs ${a.passes}`);
    await server.close();
    const changes = [await next(), await next()];
    assertEquals(changes.map((c) => [c.backend, c.up]).sort(), [["a", false], ["b", false]]);
  } finally {
    await checker.close();
    await server.close();
  }
});

Deno.test("checker: different definitions of one server are separate targets", async () => {
  const server = rawServer(OK);
  const { checker, next } = harness();
  try {
    checker.update([
      backend("tcp", [server.port], tcpCheck()),
      backend("http", [server.port], tcpCheck({ type: "http", uri: "/" })),
    ]);
    await server.waitConnections(4);
    server.response = httpResponse("503 Service Unavailable");
    const change = await next();
    assertEquals([change.backend, change.up], ["http", false]);
    assertEquals(checker.down(), [{ backend: "http", server: key(server.port) }]);
  } finally {
    await checker.close();
    await server.close();
  }
});

Deno.test("checker: the passive window counts failures at the time they happened", async () => {
  let now = 1_000_000;
  const { checker, changes } = harness({ now: () => now });
  const port = closedPort();
  const other = closedPort();
  const failures = () => checker.status()[0].servers.find((s) => s.server === key(port))!.failures;
  try {
    checker.update([
      backend("b", [port, other], undefined, {
        passive_check: { max_fails: 2, fail_timeout: 2 },
      }),
    ]);
    // A worker's report that took longer than the window to arrive does not count.
    checker.reportFailure("b", key(port), "connection refused", now);
    now += 2_500;
    checker.reportFailure("b", key(port), "connection refused", now - 2_400);
    assertEquals(failures(), 0);
    // Failures 2.6 s apart whose reports arrive 1.6 s apart: not two within 2 s.
    checker.reportFailure("b", key(port), "connection refused", now - 1_000);
    now += 1_600;
    checker.reportFailure("b", key(port), "connection refused", now);
    assertEquals([changes.length, failures()], [0, 1]);
    // Out of order (two workers): two within the window take it down.
    checker.reportFailure("b", key(port), "connection refused", now - 500);
    assertEquals(changes.map((c) => c.up), [false]);
  } finally {
    await checker.close();
  }
});

Deno.test("checker: a lone server is never taken out by passive failures", async () => {
  const { checker, changes } = harness();
  const port = closedPort();
  try {
    checker.update([backend("solo", [port])]);
    for (let i = 0; i < 5; i++) checker.reportFailure("solo", key(port), "connection refused");
    assertEquals(changes.length, 0);
    assertEquals(checker.down(), []);
  } finally {
    await checker.close();
  }
});

Deno.test("checker: passive failures without active check; cool-down brings it back", async () => {
  const { checker, next, changes } = harness();
  const port = closedPort();
  const other = closedPort();
  try {
    checker.update([
      backend("b", [port, other], undefined, {
        passive_check: { max_fails: 2, fail_timeout: 0.1 },
      }),
      backend("off", [port], undefined, { passive_check: { max_fails: 0, fail_timeout: 10 } }),
    ]);
    checker.reportFailure("b", key(port), "connection refused");
    assertEquals(changes.length, 0);
    checker.reportFailure("b", key(port), "connection refused");
    assertEquals(changes[0], {
      backend: "b",
      server: key(port),
      up: false,
      reason: "passive: 2 failures in 0.1s: connection refused",
    });
    checker.reportFailure("off", key(port), "connection refused");
    checker.reportFailure("nope", key(port), "connection refused");
    assertEquals(checker.down(), [{ backend: "b", server: key(port) }]);
    await next();
    const up = await next();
    assertEquals([up.backend, up.up, up.reason], ["b", true, "cool-down over"]);
    assertEquals(changes.length, 2);
  } finally {
    await checker.close();
  }
});

Deno.test("checker: passive failure with an active check; the check brings it back", async () => {
  const server = rawServer(null);
  const spare = rawServer(null);
  const { checker, next } = harness();
  try {
    checker.update([backend("b", [server.port, spare.port], tcpCheck({ success: 3 }))]);
    await server.waitConnections(1);
    checker.reportFailure("b", key(server.port), "connection reset");
    const down = await next();
    assertEquals(
      [down.up, down.reason],
      [false, "passive: 1 failure in 10s: connection reset"],
    );
    const up = await next();
    assertEquals([up.up, up.reason], [true, "3 passed tcp checks"]);
  } finally {
    await checker.close();
    await server.close();
    await spare.close();
  }
});

Deno.test("checker: update keeps state when only the interval changes; disabling reports up", async () => {
  const port = closedPort();
  const { checker, next, changes } = harness();
  try {
    checker.update([backend("b", [port], tcpCheck({ fail: 1 }))]);
    assertEquals((await next()).up, false);
    checker.update([backend("b", [port], tcpCheck({ fail: 1, interval: 0.06 }))]);
    assertEquals(changes.length, 1);
    assertEquals(checker.down(), [{ backend: "b", server: key(port) }]);
    assertEquals(checker.status()[0].servers[0].state, "down");
    // A new backend listing the known-dead server starts with it down.
    checker.update([
      backend("b", [port], tcpCheck({ fail: 1, interval: 0.06 })),
      backend("c", [port], tcpCheck({ type: "http", uri: "/" })),
    ]);
    assertEquals(checker.down().map((d) => d.backend), ["b", "c"]);
    checker.update([backend("b", [port], tcpCheck({ enable: false }))]);
    const up = await next();
    assertEquals([up.up, up.reason], [true, "config changed"]);
    assertEquals(checker.status()[0].check, "none");
  } finally {
    await checker.close();
  }
});

Deno.test("checker: status shape", async () => {
  const server = rawServer(null, { hostname: "::1" });
  const { checker } = harness({ now: () => 0 });
  try {
    checker.update([
      {
        backend_name: "v6",
        health_check: tcpCheck(),
        servers: [{ addr: "::1", port: server.port, weight: 5 }],
      },
      backend("none", [1234]),
    ]);
    await until(() => checker.status()[0].servers[0].passes >= 1);
    checker.reportFailure("none", key(1234), "connection refused");
    assertEquals(checker.status(), [
      {
        backend: "v6",
        check: "tcp",
        servers: [{
          server: `[::1]:${server.port}`,
          state: "up",
          weight: 5,
          passes: checker.status()[0].servers[0].passes,
          failures: 0,
          last_check: "1970-01-01T00:00:00.000Z",
          last_error: null,
          last_change: null,
        }],
      },
      {
        backend: "none",
        check: "none",
        servers: [{
          // A lone server is never taken out by passive failures (as in nginx).
          server: key(1234),
          state: "up",
          weight: 1,
          passes: 0,
          failures: 1,
          last_check: null,
          last_error: "connection refused",
          last_change: null,
        }],
      },
    ]);
    assertMatch(JSON.stringify(checker.status()), /"check":"none"/);
  } finally {
    await checker.close();
    await server.close();
  }
});
