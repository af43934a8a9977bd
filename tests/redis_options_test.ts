/**
 * The Redis store against real `redis-server`s set up as deployments have them: down at
 * start-up with nothing cached, a password and a database number, TLS with a CA made at test time.
 */
import { assert, assertEquals } from "./_assert.ts";
import { configOf, startBackend } from "./_backend.ts";
import { eventually, get, startDynlb } from "./_dynlb.ts";
import { makeCertificates, redisArgs, startRedis } from "./_redis.ts";

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "dynlb-redis-data-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("redis: down at start-up with nothing cached serves an empty config, then the stored one", async () => {
  await using redis = await startRedis();
  await using a = await startBackend("a");
  await redis.stop();
  await withDir(async (dir) => {
    await using lb = await startDynlb(redisArgs(redis.port, dir));
    const running = await (await fetch(lb.admin + "/config")).json();
    assertEquals([running.source, running.config], ["empty", { backends: [], hosts: [] }]);
    assert(lb.logs().includes("an empty config"), lb.logs());
    assertEquals((await get(lb, "x.test")).status, 404);

    await redis.restart();
    await redis.command(
      "SET",
      "balancer",
      JSON.stringify(configOf({ "x.test": [{ port: a.port }] })),
    );
    await eventually(async () => (await get(lb, "x.test")).body === "a", 20_000, "stored config");
  });
});

Deno.test("redis: --redis-password and --redis-db reach a server that requires them", async () => {
  const password = "s3cret-for-the-test";
  await using redis = await startRedis({ password });
  await using a = await startBackend("a");
  await using b = await startBackend("b");
  // The same key in database 0 and 3 routes to different servers.
  await redis.command(
    "SET",
    "balancer",
    JSON.stringify(configOf({ "x.test": [{ port: a.port }] })),
  );
  const inDb3 = await redis.command(
    "EVAL",
    "redis.call('SELECT', 3); return redis.call('SET', KEYS[1], ARGV[1])",
    "1",
    "balancer",
    JSON.stringify(configOf({ "x.test": [{ port: b.port }] })),
  );
  assert(inDb3.startsWith("+OK"), inDb3);
  await withDir(async (dir) => {
    await using lb = await startDynlb(
      redisArgs(redis.port, dir, "--redis-password", password, "--redis-db", "3"),
    );
    assertEquals((await get(lb, "x.test")).body, "b");
    const running = await (await fetch(lb.admin + "/config")).json();
    assertEquals(running.source, "store");
    assert(!lb.logs().includes(password), "the password is logged");
  });
});

Deno.test("redis: --redis-tls talks TLS to a TLS-only server (CA trusted through DENO_CERT)", async () => {
  const certs = await makeCertificates();
  try {
    await using redis = await startRedis({
      tls: { certFile: certs.certFile, keyFile: certs.keyFile, ca: certs.ca },
    });
    await using a = await startBackend("a");
    await redis.command(
      "SET",
      "balancer",
      JSON.stringify(configOf({ "t.test": [{ port: a.port }] })),
    );
    await withDir(async (dir) => {
      await using lb = await startDynlb(redisArgs(redis.port, dir, "--redis-tls"), {
        env: { DENO_CERT: certs.caFile },
      });
      assertEquals((await get(lb, "t.test")).body, "a", lb.logs());
      const running = await (await fetch(lb.admin + "/config")).json();
      assertEquals(running.source, "store");
    });
  } finally {
    await Deno.remove(certs.dir, { recursive: true });
  }
});
