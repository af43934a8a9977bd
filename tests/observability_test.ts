/**
 * Metrics, access log and request ids end to end: dynlb as a subprocess in front of real
 * backends, `/metrics` checked against the requests sent and by `promtool`, log files read back.
 */
import { tempDir } from "./_temp.ts";
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { configFile, configOf, deadPort, startBackend } from "./_backend.ts";
import { eventually, get, modeTest, postConfig, startDynlb } from "./_dynlb.ts";
import { parseMetrics, promtoolCheck, scrape, sum } from "./_metrics.ts";
import { rawServer } from "./_raw_server.ts";
import { redisArgs, startRedis } from "./_redis.ts";

modeTest(
  "/metrics counts what was sent, summed over every isolate, and promtool accepts it",
  "every",
  async (mode) => {
    await using a = await startBackend(
      "a",
      (r) => new Response("a", { status: new URL(r.url).pathname === "/missing" ? 404 : 200 }),
    );
    const dead = deadPort();
    const config = configOf({ "x.test": [{ port: a.port }] });
    // A backend whose first server is dead: every request to it is retried on the live one.
    config.backends.push({
      backend_name: "flaky",
      servers: [{ addr: "127.0.0.1", port: dead, weight: 1 }, {
        addr: "127.0.0.1",
        port: a.port,
        weight: 1,
      }],
      // Passive detection off: the dead server keeps getting picked, deterministically.
      passive_check: { max_fails: 0, fail_timeout: 10 },
    });
    config.hosts.push({ host: "flaky.test", backend_name: "flaky" });
    await using lb = await startDynlb(["--config-file", await configFile(config)], { mode });

    for (let i = 0; i < 7; i++) assertEquals((await get(lb, "x.test")).status, 200);
    for (let i = 0; i < 3; i++) {
      assertEquals((await get(lb, "x.test", "/", { method: "POST", body: "hi" })).status, 200);
    }
    assertEquals((await get(lb, "x.test", "/missing")).status, 404);
    for (let i = 0; i < 2; i++) assertEquals((await get(lb, "nowhere.test")).status, 404);
    for (let i = 0; i < 4; i++) assertEquals((await get(lb, "flaky.test")).status, 200);

    const text = await scrape(lb);
    const m = parseMetrics(text);
    const x = { backend: "b-x.test" };
    assertEquals(sum(m, "dynlb_requests_total", { ...x, method: "GET", code: "200" }), 7);
    assertEquals(sum(m, "dynlb_requests_total", { ...x, method: "POST", code: "200" }), 3);
    assertEquals(sum(m, "dynlb_requests_total", { ...x, method: "GET", code: "404" }), 1);
    assertEquals(sum(m, "dynlb_requests_total", { backend: "", code: "404" }), 2);
    assertEquals(sum(m, "dynlb_request_duration_seconds_count", x), 11);
    assertEquals(sum(m, "dynlb_request_duration_seconds_bucket", { ...x, le: "+Inf" }), 11);
    assertEquals(sum(m, "dynlb_upstream_response_seconds_count", x), 11);
    const server = `127.0.0.1:${a.port}`;
    assertEquals(sum(m, "dynlb_upstream_requests_total", { ...x, server, code: "200" }), 10);
    assertEquals(sum(m, "dynlb_upstream_requests_total", { ...x, server, code: "404" }), 1);
    assertEquals(sum(m, "dynlb_retries_total", x), 0);

    // Round-robin over a dead and a live server: half the picks hit the dead one and are retried.
    const flaky = { backend: "flaky" };
    assertEquals(sum(m, "dynlb_requests_total", { ...flaky, code: "200" }), 4);
    const retries = sum(m, "dynlb_retries_total", flaky);
    assert(retries >= 1, text);
    assertEquals(
      sum(m, "dynlb_upstream_errors_total", {
        ...flaky,
        server: `127.0.0.1:${dead}`,
        kind: "connect",
      }),
      retries,
    );
    assertEquals(sum(m, "dynlb_server_up", { ...flaky, server: `127.0.0.1:${dead}` }), 1);
    assertEquals(sum(m, "dynlb_config_version"), 1);
    assertEquals(sum(m, "dynlb_config_reloads_total", { source: "store", result: "success" }), 1);
    assertEquals(sum(m, "dynlb_build_info"), 1);
    assert(sum(m, "process_resident_memory_bytes") > 0);
    assert(sum(m, "process_cpu_seconds_total") > 0);
    assert(sum(m, "process_start_time_seconds") > Date.now() / 1000 - 3600);
    assert(sum(m, "dynlb_upstream_pool_connections") >= 0);

    const check = await promtoolCheck(text);
    assertEquals(check.code, 0, check.output);
  },
);

Deno.test("dynlb_server_up covers every configured server and follows a config change at once", async () => {
  await using a = await startBackend("a");
  const first = configOf({ "x.test": [{ port: a.port }, { port: 1 }] });
  await using lb = await startDynlb(["--config-file", await configFile(first)]);
  let m = parseMetrics(await scrape(lb));
  assertEquals(m.get("dynlb_server_up")!.map((s) => s.labels.server).sort(), [
    "127.0.0.1:1",
    `127.0.0.1:${a.port}`,
  ]);
  const second = configOf({ "y.test": [{ port: 2 }] });
  assertEquals((await postConfig(lb, second)).status, 200);
  m = parseMetrics(await scrape(lb));
  assertEquals(m.get("dynlb_server_up"), [{
    labels: { backend: "b-y.test", server: "127.0.0.1:2" },
    value: 1,
  }]);
  // No request and no active check has failed yet.
  assertEquals(m.get("dynlb_server_check_failures"), [{
    labels: { backend: "b-y.test", server: "127.0.0.1:2" },
    value: 0,
  }]);
  assertEquals((await postConfig(lb, "{")).status, 400);
  m = parseMetrics(await scrape(lb));
  assertEquals(sum(m, "dynlb_config_reloads_total", { source: "admin", result: "success" }), 1);
  assertEquals(sum(m, "dynlb_config_reloads_total", { source: "admin", result: "failure" }), 1);
  assertEquals(sum(m, "dynlb_config_last_reload_successful"), 0);
  assertEquals(sum(m, "dynlb_config_version"), 2);
});

Deno.test("request ids: a sane client id is kept end to end, anything else is replaced", async () => {
  await using a = await startBackend("a");
  const dir = await tempDir();
  const path = await configFile(configOf({ "x.test": [{ port: a.port }] }));
  await using lb = await startDynlb([
    "--config-file",
    path,
    "--access-log",
    `${dir}/access.log`,
  ]);

  const kept = await get(lb, "x.test", "/", { headers: { "x-request-id": "trace-42" } });
  assertEquals(kept.headers.get("x-request-id"), "trace-42");
  assertEquals(a.seen.at(-1)!.headers.get("x-request-id"), "trace-42");

  const made = await get(lb, "x.test", "/", { headers: { "x-request-id": "has space" } });
  const id = made.headers.get("x-request-id")!;
  assertMatch(id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assertEquals(a.seen.at(-1)!.headers.get("x-request-id"), id);

  const long = await get(lb, "x.test", "/", { headers: { "x-request-id": "a".repeat(129) } });
  assert(long.headers.get("x-request-id")!.length === 36);
  const none = await get(lb, "nowhere.test");
  assert(none.headers.get("x-request-id")!.length === 36);

  // The same ids in the access log, one JSON object a line.
  let lines: Record<string, unknown>[] = [];
  await eventually(
    async () => {
      const text = await Deno.readTextFile(`${dir}/access.log`).catch(() => "");
      lines = text.trim().split("\n").filter((l) => l !== "").map((l) => JSON.parse(l));
      return lines.length === 4;
    },
    5000,
    "four access log lines",
  );
  const byId = new Map(lines.map((l) => [l.request_id, l]));
  const first = byId.get("trace-42")!;
  assertEquals(first.status, 200);
  assertEquals(first.method, "GET");
  assertEquals(first.host, "x.test");
  assertEquals(first.target, "/");
  assertEquals(first.backend, "b-x.test");
  assertEquals(first.server, `127.0.0.1:${a.port}`);
  assertEquals(first.upstream_status, 200);
  assertEquals(first.retries, 0);
  assertEquals(first.client, "127.0.0.1");
  assert(typeof first.duration === "number" && typeof first.upstream_time === "number");
  assertEquals(byId.get(id)!.status, 200);
  const unknown = lines.find((l) => l.host === "nowhere.test")!;
  assertEquals([unknown.status, unknown.backend, unknown.error], [404, null, "unknown-host"]);
  const m = parseMetrics(await scrape(lb));
  assertEquals(sum(m, "dynlb_access_log_lines_total"), 4);
  assertEquals(sum(m, "dynlb_access_log_dropped_total"), 0);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("--request-id-header renames the header everywhere", async () => {
  await using a = await startBackend("a");
  const path = await configFile(configOf({ "x.test": [{ port: a.port }] }));
  await using lb = await startDynlb(["--config-file", path, "--request-id-header", "X-Trace-Id"]);
  const answer = await get(lb, "x.test", "/", { headers: { "x-trace-id": "t-1" } });
  assertEquals(answer.headers.get("x-trace-id"), "t-1");
  assertEquals(answer.headers.get("x-request-id"), null);
  assertEquals(a.seen.at(-1)!.headers.get("x-trace-id"), "t-1");
});

Deno.test("combined access log, reopened on SIGHUP after logrotate moved it", async () => {
  await using a = await startBackend("a");
  const dir = await tempDir();
  const log = `${dir}/access.log`;
  const path = await configFile(configOf({ "x.test": [{ port: a.port }] }));
  await using lb = await startDynlb([
    "--config-file",
    path,
    "--access-log",
    log,
    "--access-log-format",
    "combined",
  ]);
  await get(lb, "x.test", "/one", { headers: { "user-agent": "probe/1", "x-request-id": "r1" } });
  await eventually(async () => (await Deno.readTextFile(log)).includes("/one"), 5000, "line");
  assertMatch(
    await Deno.readTextFile(log),
    /^127\.0\.0\.1 - - \[\d\d\/\w{3}\/\d{4}:\d\d:\d\d:\d\d \+0000\] "GET \/one HTTP\/1\.1" 200 1 "-" "probe\/1" r1 \d+(\.\d+)?\n$/,
  );
  await Deno.rename(log, `${log}.1`);
  lb.process.kill("SIGHUP");
  await lb.waitForLog("reopening the access log");
  // Every worker reopens on its own message: wait until a request lands in the new file.
  await eventually(
    async () => {
      await get(lb, "x.test", "/two");
      return (await Deno.readTextFile(log).catch(() => "")).includes("/two");
    },
    5000,
    "a line in the new file",
  );
  assert(!(await Deno.readTextFile(`${log}.1`)).includes("/two"));
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a full disk: access log lines are dropped and counted, requests keep being served", async () => {
  // A real full file system: a 64 KiB tmpfs filled up (the tests run as root, as CI does).
  const dir = await tempDir();
  const mounted = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir],
  }).output();
  assertEquals(mounted.code, 0, new TextDecoder().decode(mounted.stderr));
  try {
    const fill = await Deno.open(`${dir}/fill`, { write: true, create: true });
    await fill.write(new Uint8Array(64 * 1024)).catch(() => 0);
    await fill.write(new Uint8Array(64 * 1024)).catch(() => 0);
    fill.close();
    await using a = await startBackend("a");
    const path = await configFile(configOf({ "x.test": [{ port: a.port }] }));
    await using lb = await startDynlb(["--config-file", path, "--access-log", `${dir}/access.log`]);
    for (let i = 0; i < 5; i++) assertEquals((await get(lb, "x.test")).status, 200);
    await eventually(
      async () => sum(parseMetrics(await scrape(lb)), "dynlb_access_log_dropped_total") === 5,
      5000,
      "5 dropped lines counted",
    );
    assertMatch(lb.logs(), /access log write failed.*No space left on device/);
    assertEquals((await get(lb, "x.test")).status, 200);
  } finally {
    await new Deno.Command("umount", { args: [dir] }).output();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("an access log that cannot be opened is a start-up error naming the path", async () => {
  const path = await configFile(configOf({}));
  const err = await startDynlb(["--config-file", path, "--access-log", "/nonexistent/dir/a.log"])
    .then(() => null, (e: Error) => e);
  assert(err !== null);
  assertMatch(err.message, /cannot open access log \/nonexistent\/dir\/a\.log/);
});

Deno.test("with an admin token, /metrics and the dashboard's data need it; the page itself asks for it", async () => {
  const path = await configFile(configOf({}));
  const token = "observability-token-123";
  await using lb = await startDynlb(["--config-file", path, "--admin-token", token]);
  const status = async (route: string, auth?: string) => {
    const response = await fetch(lb.admin + route, {
      headers: auth ? { authorization: `Bearer ${auth}` } : {},
    });
    await response.body?.cancel();
    return response.status;
  };
  assertEquals(await status("/metrics"), 401);
  assertEquals(await status("/dashboard.json"), 401);
  assertEquals(await status("/metrics", token), 200);
  assertEquals(await status("/dashboard.json", token), 200);
  const page = await fetch(lb.admin + "/");
  assertEquals(page.status, 200);
  const html = await page.text();
  assert(html.includes('id="login"') && !html.includes(token));
  assertMatch(page.headers.get("content-security-policy") ?? "", /default-src 'none'/);
});

Deno.test("dynlb_store_up follows Redis going away and coming back", async () => {
  await using redis = await startRedis();
  await redis.command("SET", "balancer", JSON.stringify(configOf({})));
  const dir = await Deno.makeTempDir({ prefix: "dynlb-test-" });
  await using lb = await startDynlb(redisArgs(redis.port, dir));
  const storeUp = async () => sum(parseMetrics(await scrape(lb)), "dynlb_store_up");
  assertEquals(await storeUp(), 1);
  await redis.stop();
  await eventually(async () => await storeUp() === 0, 10_000, "store down in /metrics");
  await redis.restart();
  await eventually(async () => await storeUp() === 1, 10_000, "store up again in /metrics");
  await Deno.remove(dir, { recursive: true });
});

for (const workers of [1, 2]) {
  Deno.test(`[workers=${workers} listener=h1] dynlb_open_connections counts client connections as they open and close`, async () => {
    await using a = await startBackend("a");
    const path = await configFile(configOf({ "x.test": [{ port: a.port }] }));
    await using lb = await startDynlb(["--config-file", path], {
      mode: { workers: workers as 1 | 2, transport: "h1", listener: "h1" },
    });
    const open = async () =>
      sum(parseMetrics(await scrape(lb)), "dynlb_open_connections", { listener: "http" });
    assertEquals(await open(), 0);
    const { hostname, port } = new URL(lb.proxy);
    const conns = await Promise.all(
      Array.from({ length: 5 }, () => Deno.connect({ hostname, port: Number(port) })),
    );
    try {
      await eventually(async () => await open() === 5, 5_000, "5 open connections");
    } finally {
      for (const conn of conns) conn.close();
    }
    await eventually(async () => await open() === 0, 5_000, "no open connection");
  });
}

Deno.test("a malformed upstream response counts as kind=malformed, a refused connection as connect", async () => {
  await using garbage = rawServer("HTTP/1.1 2OO OK\r\nbad header line\r\n\r\n");
  const dead = deadPort();
  const path = await configFile(configOf({
    "bad.test": [{ port: garbage.port }],
    "dead.test": [{ port: dead }],
  }));
  // The h1 upstream client tells a malformed response from a broken connection.
  await using lb = await startDynlb(["--config-file", path, "--upstream-transport", "h1"]);
  assertEquals((await get(lb, "bad.test", "/", { method: "POST", body: "x" })).status, 502);
  assertEquals((await get(lb, "dead.test")).status, 502);
  const m = parseMetrics(await scrape(lb));
  const errors = (backend: string, kind: string) =>
    sum(m, "dynlb_upstream_errors_total", { backend, kind });
  assertEquals(errors("b-bad.test", "malformed"), 1);
  assertEquals(errors("b-bad.test", "broken"), 0);
  assertEquals(errors("b-dead.test", "connect"), 1);
  assertEquals(sum(m, "dynlb_requests_total", { backend: "b-bad.test", code: "502" }), 1);
});
