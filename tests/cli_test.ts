/** The command line: start-up errors, `check`, and a graceful stop. */
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { configFile, configOf, startBackend } from "./_backend.ts";
import { eventually, get, startDynlb } from "./_dynlb.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

async function run(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-all", MAIN, ...args],
    env: { NO_COLOR: "1" },
    stdin: "null",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: output.code, out: decode(output.stdout), err: decode(output.stderr) };
}

Deno.test("dynlb check validates a file and lists every problem", async () => {
  const good = await run("check", "--config-file", "config.json");
  assertEquals(good.code, 0);
  assertMatch(good.out, /ok \(2 backends, 2 hosts\)/);

  const path = await configFile({
    backends: [{ backend_name: "a", servers: [{ addr: "127.0.0.1", port: 0 }] }],
    hosts: [{ host: "x", backend_name: "a", extra: true }],
  });
  const bad = await run("check", "--config-file", path);
  assertEquals(bad.code, 1);
  assertMatch(bad.err, /backends\[0\]\.servers\[0\]\.port: must be between 1 and 65535/);
  assertMatch(bad.err, /hosts\[0\]\.extra: unknown field/);
});

Deno.test("start-up refuses an invalid config file and a busy port", async () => {
  const path = await configFile({ backends: "no", hosts: [] });
  const invalid = await run(
    "--listen",
    "127.0.0.1:0",
    "--admin",
    "127.0.0.1:0",
    "--config-file",
    path,
  );
  assertEquals(invalid.code, 1);
  assertMatch(invalid.err, /invalid config in .*config\.json:\n\s+backends: must be an array/);

  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = (busy.addr as Deno.NetAddr).port;
    const r = await run("--listen", `127.0.0.1:${port}`, "--admin", "127.0.0.1:0");
    assertEquals(r.code, 1);
    assertMatch(
      r.err,
      new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port} \\(proxy\\): address already in use`),
    );
    assert(!/\bat \S+:\d+:\d+/.test(r.err), "no stack trace");
  } finally {
    busy.close();
  }

  const flag = await run("--listen", "nowhere");
  assertEquals(flag.code, 2);
  assertMatch(flag.err, /--listen must be HOST:PORT/);
});

Deno.test("--help lists every flag with its environment variable", async () => {
  const help = await run("--help");
  assertEquals(help.code, 0);
  for (const flag of ["--listen", "--admin", "--config-type", "--config-file"]) {
    assert(help.out.includes(flag), flag);
  }
  assertMatch(help.out, /DYNLB_CONFIG_FILE/);
});

Deno.test("environment variables configure the proxy", async () => {
  await using a = await startBackend("a");
  const path = await configFile(configOf({ "env.test": [{ port: a.port }] }));
  await using lb = await startDynlb([], { env: { DYNLB_CONFIG_FILE: path } });
  assertEquals((await get(lb, "env.test")).body, "a");
});

Deno.test("SIGTERM lets a request in flight finish, then exits 0", async () => {
  const release = Promise.withResolvers<void>();
  const arrived = Promise.withResolvers<void>();
  await using slow = await startBackend("slow", async () => {
    arrived.resolve();
    await release.promise;
    return new Response("finished");
  });
  const path = await configFile(configOf({ "slow.test": [{ port: slow.port }] }));
  await using lb = await startDynlb(["--config-file", path]);

  const inFlight = get(lb, "slow.test");
  await arrived.promise;
  const exited = lb.stop("SIGTERM");
  await lb.waitForLog("shutting down");
  // New connections are refused while the old request is still being served.
  await eventually(
    async () => {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port: Number(new URL(lb.proxy).port) }))
          .close();
        return false;
      } catch {
        return true;
      }
    },
    5000,
    "listener closed",
  );
  release.resolve();
  const response = await inFlight;
  assertEquals([response.status, response.body], [200, "finished"]);
  assertEquals(await exited, 0);
});

Deno.test("start-up refuses a missing config file, naming it", async () => {
  const r = await run(
    "--listen",
    "127.0.0.1:0",
    "--admin",
    "127.0.0.1:0",
    "--config-file",
    "/nonexistent/dynlb.json",
  );
  assertEquals(r.code, 1);
  assertMatch(r.err, /config file \/nonexistent\/dynlb\.json does not exist/);
});

Deno.test("start-up refuses a KV path it cannot open and a bad Redis URL, without a stack trace", async () => {
  const common = ["--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"];
  const kv = await run(...common, "--config-type", "kv", "--kv-path", "/proc/nope/config.kv");
  assertEquals(kv.code, 1);
  assertMatch(kv.err, /^dynlb: .*\/proc\/nope/m);
  const redis = await run(...common, "--config-type", "redis", "--redis-url", "http://x");
  assertEquals(redis.code, 1);
  assertMatch(redis.err, /^dynlb: redis url/m);
  for (const r of [kv, redis]) assert(!/\bat \S+:\d+:\d+/.test(r.err), r.err);
});
