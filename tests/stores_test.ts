/**
 * The Redis and Deno KV stores end to end: several dynlb processes sharing one store.
 * Propagation delays are printed for the closing note.
 */
import { tempDir } from "./_temp.ts";
import { assert, assertEquals } from "./_assert.ts";
import { configOf, startBackend } from "./_backend.ts";
import { eventually, get, postConfig, startDynlb } from "./_dynlb.ts";
import { redisArgs, startRedis } from "./_redis.ts";

Deno.test("redis: a saved POST on one instance is routed by the other at once", async () => {
  await using redis = await startRedis();
  await using a = await startBackend("a");
  await using b = await startBackend("b");
  await redis.command(
    "SET",
    "balancer",
    JSON.stringify(configOf({ "x.test": [{ port: a.port }] })),
  );
  const dir = await tempDir();
  await using one = await startDynlb(redisArgs(redis.port, `${dir}/one`));
  await using two = await startDynlb(redisArgs(redis.port, `${dir}/two`));
  assertEquals((await get(two, "x.test")).body, "a");

  const posted = await postConfig(one, configOf({ "x.test": [{ port: b.port }] }), true);
  assertEquals(posted.status, 200);
  const pubsub = await eventually(async () => (await get(two, "x.test")).body === "b");
  console.log(`redis pub/sub: routed by the other instance after ${pubsub.toFixed(0)} ms`);

  // Another tool writing the key: found by the one-second poll.
  await redis.command(
    "SET",
    "balancer",
    JSON.stringify(configOf({ "y.test": [{ port: a.port }] })),
  );
  const poll = await eventually(async () => (await get(two, "y.test")).body === "a", 5000);
  console.log(`redis-cli SET: applied after ${poll.toFixed(0)} ms (1 s poll)`);
  // Each instance polls on its own clock: wait for each.
  await eventually(async () => (await get(one, "y.test")).body === "a", 5000, "instance one");

  // Memory only on one instance, until the store changes.
  assertEquals((await postConfig(two, configOf({ "m.test": [{ port: b.port }] }))).status, 200);
  assertEquals((await get(two, "m.test")).body, "b");
  assertEquals((await get(one, "m.test")).status, 404);
  await redis.command(
    "SET",
    "balancer",
    JSON.stringify(configOf({ "z.test": [{ port: b.port }] })),
  );
  await eventually(async () => (await get(two, "z.test")).body === "b", 5000);
  assertEquals((await get(two, "m.test")).status, 404);

  // A value that is not a config is logged and ignored.
  await redis.command("SET", "balancer", "{not json");
  await two.waitForLog("stored config is invalid");
  assertEquals((await get(two, "z.test")).body, "b");
});

Deno.test("redis: stopped and restarted under traffic, no request lost, resynchronised", async () => {
  await using redis = await startRedis();
  await using a = await startBackend("a");
  await using b = await startBackend("b");
  await redis.command(
    "SET",
    "balancer",
    JSON.stringify(configOf({ "x.test": [{ port: a.port }] })),
  );
  const dir = await tempDir();
  await using lb = await startDynlb(redisArgs(redis.port, dir));

  let stop = false;
  const failures: number[] = [];
  let total = 0;
  const traffic = (async () => {
    while (!stop) {
      const r = await get(lb, "x.test");
      if (r.status !== 200) failures.push(r.status);
      total++;
    }
  })();

  try {
    await redis.stop();
    await lb.waitForLog("redis store unreachable");
    const saveWhileDown = await postConfig(lb, configOf({ "x.test": [{ port: b.port }] }), true);
    assertEquals(saveWhileDown.status, 503);
    assertEquals((await get(lb, "x.test")).body, "a");

    await redis.restart();
    await redis.command(
      "SET",
      "balancer",
      JSON.stringify(configOf({ "x.test": [{ port: b.port }] })),
    );
    await lb.waitForLog("redis store reconnected");
    await eventually(async () => (await get(lb, "x.test")).body === "b", 10_000, "resync");
  } finally {
    stop = true;
    await traffic;
  }
  assertEquals(failures, []);
  assert(total > 10, `only ${total} requests`);
  // Each state change is logged once, not once per retry.
  assertEquals(lb.logs().match(/WARN\s+redis store unreachable/g)?.length, 1, lb.logs());
});

Deno.test("redis: start-up with Redis down serves the cached config", async () => {
  await using redis = await startRedis();
  await using a = await startBackend("a");
  await redis.command(
    "SET",
    "balancer",
    JSON.stringify(configOf({ "c.test": [{ port: a.port }] })),
  );
  const dir = await tempDir();
  {
    await using first = await startDynlb(redisArgs(redis.port, dir));
    assertEquals((await get(first, "c.test")).body, "a");
    await eventually(async () => {
      try {
        return (await Deno.readTextFile(`${dir}/last-good-redis.json`)).includes("c.test");
      } catch {
        return false;
      }
    });
  }
  await redis.stop();
  await using second = await startDynlb(redisArgs(redis.port, dir));
  assertEquals((await get(second, "c.test")).body, "a");
  const running = await (await fetch(second.admin + "/config")).json();
  assertEquals(running.source, "cache");
  assert(second.logs().includes("config store unreachable at start-up"), second.logs());
});

Deno.test("kv: saved config survives a restart; two processes sharing the file see each other", async () => {
  await using a = await startBackend("a");
  await using b = await startBackend("b");
  const dir = await tempDir();
  const args = ["--config-type", "kv", "--kv-path", `${dir}/config.kv`, "--data-dir", dir];
  {
    await using first = await startDynlb(args);
    assertEquals((await get(first, "k.test")).status, 404);
    const posted = await postConfig(first, configOf({ "k.test": [{ port: a.port }] }), true);
    assertEquals(posted.status, 200);
  }
  await using one = await startDynlb(args);
  assertEquals((await get(one, "k.test")).body, "a");
  await using two = await startDynlb(args);
  assertEquals((await get(two, "k.test")).body, "a");

  assertEquals(
    (await postConfig(two, configOf({ "k.test": [{ port: b.port }] }), true)).status,
    200,
  );
  const seen = await eventually(async () => (await get(one, "k.test")).body === "b", 5000);
  console.log(`kv: another process's save applied after ${seen.toFixed(0)} ms (1 s poll)`);
});

Deno.test("kv: a 10,000-host config round-trips through POST, the store and a restart", async () => {
  await using a = await startBackend("a");
  const dir = await tempDir();
  const args = ["--config-type", "kv", "--kv-path", `${dir}/config.kv`, "--data-dir", dir];
  const routes: Record<string, Array<{ port: number }>> = {};
  for (let i = 0; i < 10_000; i++) routes[`h${i}.test`] = [{ port: a.port }];
  const big = configOf(routes);
  {
    await using first = await startDynlb(args);
    assertEquals((await postConfig(first, big, true)).status, 200);
  }
  await using again = await startDynlb(args);
  const running = await (await fetch(again.admin + "/config")).json();
  assertEquals(running.config, big);
  assertEquals((await get(again, "h9999.test")).body, "a");
});
