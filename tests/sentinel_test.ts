/**
 * The Redis store behind Sentinel: one master, one replica, three Sentinels (Debian's
 * `redis-sentinel`); the master is killed under traffic.
 */
import { tempDir } from "./_temp.ts";
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { configOf, startBackend } from "./_backend.ts";
import { eventually, get, postConfig, startDynlb } from "./_dynlb.ts";
import { startSentinels } from "./_sentinel.ts";

Deno.test("redis sentinel: the master is killed under traffic; after failover x-save works, the other instance follows, no request lost", async () => {
  await using cluster = await startSentinels();
  await using a = await startBackend("a");
  await using b = await startBackend("b");
  await cluster.command(
    cluster.masterPort,
    "SET",
    "balancer",
    JSON.stringify(configOf({ "x.test": [{ port: a.port }] })),
  );
  const dir = await tempDir("dynlb-sentinel-data-");
  const args = (name: string) => [
    "--config-type",
    "redis",
    "--redis-sentinel",
    cluster.sentinels,
    "--redis-sentinel-name",
    cluster.name,
    "--data-dir",
    `${dir}/${name}`,
  ];
  await using one = await startDynlb(args("one"));
  await using two = await startDynlb(args("two"));
  assertEquals((await get(one, "x.test")).body, "a");
  assertEquals((await get(two, "x.test")).body, "a");
  const running = await (await fetch(one.admin + "/config")).json();
  assertEquals(running.source, "store");

  let stop = false;
  let total = 0;
  const failures: string[] = [];
  const traffic = (async () => {
    while (!stop) {
      for (const lb of [one, two]) {
        try {
          const r = await get(lb, "x.test");
          if (r.status !== 200) failures.push(`${r.status} ${r.body}`);
        } catch (err) {
          failures.push(String(err));
        }
        total++;
      }
    }
  })();

  let promoted = 0;
  let followed = 0;
  try {
    await cluster.killMaster();
    const started = performance.now();
    const newMaster = await cluster.waitForNewMaster(cluster.masterPort);
    assertEquals(newMaster, cluster.replicaPort);
    promoted = performance.now() - started;

    // x-save goes to the new master once dynlb follows the Sentinels (503 until then).
    const next = configOf({ "x.test": [{ port: b.port }] });
    let saved = 0;
    await eventually(
      async () => (saved = (await postConfig(one, next, true)).status) === 200,
      20_000,
      "x-save after failover",
    );
    followed = performance.now() - started;
    assertEquals(saved, 200);
    assertEquals(
      JSON.parse(
        await cluster.command(newMaster, "GET", "balancer").then((r) => r.split("\r\n")[1]),
      ),
      next,
    );
    await eventually(
      async () => (await get(two, "x.test")).body === "b",
      10_000,
      "other instance follows",
    );
  } finally {
    stop = true;
    await traffic;
  }
  console.log(
    `sentinel: master killed; promoted after ${
      promoted.toFixed(0)
    } ms, x-save through the new master after ${
      followed.toFixed(0)
    } ms; ${total} requests, ${failures.length} failed`,
  );
  assertEquals(failures, []);
  assert(total > 20, `only ${total} requests`);
  await one.waitForLog("redis sentinels name a new master");
  assertMatch(one.logs(), new RegExp(`to=127\\.0\\.0\\.1:${cluster.replicaPort}`));
});
