import { assert, assertEquals, assertRejects } from "../../tests/_assert.ts";
import { startRedis, type TestRedis } from "../../tests/_redis.ts";
import { setLogLevel } from "../log.ts";
import { RedisStore } from "./redis.ts";
import { parseRedisFlags } from "./redis_options.ts";
import { StoreUnavailableError } from "./store.ts";

const CONFIG = '{"backends":[],"hosts":[]}';
/**
 * Tests that are not about timeouts give commands 10 s: the default 2 s, which includes the first
 * connect, ran out once on a loaded machine.
 */
const PATIENT = { commandTimeoutMs: 10_000 };

/** Counts watch callbacks and lets a test await the next one. */
class Changes {
  count = 0;
  #waiters: Array<() => void> = [];
  readonly ac = new AbortController();
  constructor(store: RedisStore) {
    store.watch(() => {
      this.count++;
      for (const wake of this.#waiters.splice(0)) wake();
    }, this.ac.signal);
  }
  /** Resolves with the elapsed milliseconds at the next callback; rejects after `limitMs`. */
  next(limitMs = 10_000): Promise<number> {
    const started = performance.now();
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("no change notification")), limitMs);
      this.#waiters.push(() => {
        clearTimeout(timer);
        resolve(performance.now() - started);
      });
    });
  }
}

async function withRedis(fn: (redis: TestRedis) => Promise<void>): Promise<void> {
  setLogLevel("error");
  const redis = await startRedis();
  try {
    await fn(redis);
  } finally {
    await redis.close();
    setLogLevel("info");
  }
}

Deno.test("redis store: missing key loads null, save/load round trip", async () => {
  await withRedis(async (redis) => {
    const store = new RedisStore({ port: redis.port, key: "t1", ...PATIENT });
    try {
      assertEquals(await store.load(), null);
      const saved = await store.save(CONFIG);
      assertEquals(saved.text, CONFIG);
      const loaded = await store.load();
      assertEquals(loaded, saved);
      const unicode = '{"hosts":[{"host":"ä.example","backend_name":"ü"}]}';
      const saved2 = await store.save(unicode);
      assert(saved2.revision !== saved.revision);
      assertEquals(await store.load(), saved2);
      // A 10,000-host document (~0.9 MB) survives byte-exactly.
      const hosts = Array.from({ length: 10_000 }, (_, i) => ({
        host: `www.host-${i}.example.com`,
        backend_name: `backend${i % 10}`,
      }));
      const big = JSON.stringify({ backends: [], hosts }, null, 2);
      assert(big.length > 800_000, `only ${big.length} bytes`);
      const saved3 = await store.save(big);
      const loaded3 = await store.load();
      assert(loaded3?.text === big && loaded3.revision === saved3.revision);
      assertEquals(store.location, `redis://127.0.0.1:${redis.port}/0 key=t1`);
    } finally {
      await store.close();
    }
  });
});

Deno.test("redis store: a save on one instance wakes another through pub/sub", async () => {
  await withRedis(async (redis) => {
    // A long poll interval so only pub/sub can explain a fast notification.
    const a = new RedisStore({ port: redis.port, key: "t2", pollIntervalMs: 60_000, ...PATIENT });
    const b = new RedisStore({ port: redis.port, key: "t2", pollIntervalMs: 60_000, ...PATIENT });
    try {
      await b.load();
      const changes = new Changes(b);
      // The subscription is in place once Redis counts a subscriber on the channel.
      while (!(await redis.command("PUBSUB", "NUMSUB", "t2:changed")).includes(":1\r\n")) {
        await new Promise((r) => setTimeout(r, 5));
      }
      const next = changes.next();
      await a.save(CONFIG);
      const ms = await next;
      console.log(`pub/sub notification after ${ms.toFixed(1)} ms`);
      assertEquals((await b.load())?.text, CONFIG);
      changes.ac.abort();
    } finally {
      await a.close();
      await b.close();
    }
  });
});

Deno.test("redis store: a plain SET by another client is seen by the poll", async () => {
  await withRedis(async (redis) => {
    const store = new RedisStore({ port: redis.port, key: "t3", ...PATIENT });
    try {
      await store.save(CONFIG);
      const changes = new Changes(store);
      const next = changes.next();
      await redis.command("SET", "t3", '{"hosts":[]}');
      const ms = await next;
      console.log(`poll notification after ${ms.toFixed(1)} ms (interval 1000 ms)`);
      assertEquals((await store.load())?.text, '{"hosts":[]}');
      changes.ac.abort();
    } finally {
      await store.close();
    }
  });
});

Deno.test("redis store: outage fails fast, reconnect resyncs and saves work again", async () => {
  await withRedis(async (redis) => {
    // A long poll interval: the resync and the later notification must not come from polling.
    const store = new RedisStore({ port: redis.port, key: "t4", pollIntervalMs: 60_000 });
    const other = new RedisStore({ port: redis.port, key: "t4" });
    try {
      await store.save(CONFIG);
      const changes = new Changes(store);
      await redis.stop();
      // The client notices the closed socket asynchronously; until then a command may still
      // be written and fail with "socket closed" — either way it is StoreUnavailableError.
      const t0 = performance.now();
      const err = await assertRejects(() => store.save('{"a":1}'));
      assert(err instanceof StoreUnavailableError, String(err));
      assert(await assertRejects(() => store.load()) instanceof StoreUnavailableError);
      console.log(`save/load rejected ${(performance.now() - t0).toFixed(1)} ms into the outage`);
      const resync = changes.next(15_000);
      await redis.restart(); // empty: --save "" lost the key
      await resync;
      assertEquals(await store.load(), null);
      await store.save(CONFIG);
      assertEquals((await store.load())?.text, CONFIG);
      // The subscriber connection came back and resubscribed: pub/sub works again.
      while (!(await redis.command("PUBSUB", "NUMSUB", "t4:changed")).includes(":1\r\n")) {
        await new Promise((r) => setTimeout(r, 5));
      }
      const next = changes.next();
      await other.save('{"after":"restart"}');
      await next;
      assertEquals((await store.load())?.text, '{"after":"restart"}');
      changes.ac.abort();
    } finally {
      await store.close();
      await other.close();
    }
  });
});

Deno.test("redis store: Redis down at start-up rejects quickly, then connects", async () => {
  await withRedis(async (redis) => {
    await redis.stop();
    const store = new RedisStore({ port: redis.port, key: "t5" });
    try {
      const err = await assertRejects(() => store.load());
      assert(err instanceof StoreUnavailableError, String(err));
      const changes = new Changes(store);
      const up = changes.next(15_000);
      await redis.restart();
      await up;
      assertEquals(await store.load(), null);
      changes.ac.abort();
    } finally {
      await store.close();
    }
  });
});

Deno.test("redis store: flag validation and location without password", async () => {
  let threw = false;
  try {
    parseRedisFlags({ port: "70000" });
  } catch (err) {
    threw = err instanceof TypeError && /--redis-port/.test(err.message);
  }
  assert(threw, "bad port must throw naming the flag");
  const parsed = parseRedisFlags({ port: "6380", db: "2", tls: "yes", host: "", password: "" });
  assertEquals([parsed.host, parsed.port, parsed.db, parsed.tls, parsed.password], [
    "127.0.0.1",
    6380,
    2,
    true,
    undefined,
  ]);
  const sentinel = parseRedisFlags({ sentinel: "127.0.0.1:26379, [::1]:26380" });
  assertEquals(sentinel.sentinels, [
    { host: "127.0.0.1", port: 26379 },
    { host: "::1", port: 26380 },
  ]);
  assertEquals(sentinel.sentinelName, "mymaster");
  // Nothing listens on port 1: the store must construct, report, and close without leaks.
  const store = new RedisStore({ url: "rediss://user:secret@[::1]:1/3", key: "k" });
  assertEquals(store.location, "rediss://[::1]:1/3 key=k");
  await store.close();
});
