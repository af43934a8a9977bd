/**
 * What every store promises for compare-and-set saves and history, run against the file, KV and
 * Redis stores alike.
 */
import { assert, assertEquals, assertRejects } from "../../tests/_assert.ts";
import { startRedis } from "../../tests/_redis.ts";
import { setLogLevel } from "../log.ts";
import { FileStore } from "./file.ts";
import { KvStore } from "./kv.ts";
import { RedisStore } from "./redis.ts";
import { type ConfigStore, type HistoryEntry, StoreConflictError } from "./store.ts";

const A = '{"backends":[],"hosts":[]}\n';
const B = '{"backends":[],"hosts":[],"default_backend":"x"}\n';

function entry(hash: string, version: number): HistoryEntry {
  return { version, hash, applied_at: new Date().toISOString(), source: "admin", saved: true };
}

/** `ifRevision` holds; a foreign write in between makes the save fail and write nothing. */
async function checkConditionalSave(store: ConfigStore, other: ConfigStore): Promise<void> {
  const empty = await assertRejects(() => store.save(A, { ifRevision: "not-there" }));
  assert(empty instanceof StoreConflictError, String(empty));
  assertEquals(await store.load(), null);
  const first = await store.save(A, { ifRevision: null });
  const second = await store.save(B, { ifRevision: first.revision });
  assertEquals((await store.load())?.text, B);
  await other.save(A); // someone else
  const stale = await assertRejects(() => store.save(B, { ifRevision: second.revision }));
  assert(stale instanceof StoreConflictError, String(stale));
  assertEquals((await store.load())?.text, A);
}

/** Newest first, trimmed to `keep`, documents by hash, discard removes one. */
async function checkHistory(store: ConfigStore, other: ConfigStore): Promise<void> {
  const history = store.history!;
  assertEquals(await history.list(), []);
  const ids = [];
  for (let i = 1; i <= 4; i++) {
    ids.push(await history.record(entry(`${i}`.repeat(64), i), `{"n":${i}}`, 3));
  }
  assertEquals((await history.list()).map((e) => e.version), [4, 3, 2]);
  // Another instance on the same store sees the same list.
  assertEquals(await other.history!.list(), await history.list());
  assertEquals(await history.document("3".repeat(64)), '{"n":3}');
  assertEquals(await history.document("1".repeat(64)), null);
  await history.discard(ids[3]);
  assertEquals((await history.list()).map((e) => e.version), [3, 2]);
  assertEquals(await history.document("4".repeat(64)), null);
  // A document larger than a KV value.
  const big = JSON.stringify({ pad: "x".repeat(200_000) });
  await history.record(entry("5".repeat(64), 5), big, 3);
  assertEquals(await history.document("5".repeat(64)), big);
}

Deno.test("file store: conditional save and history", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dynlb-cas-" });
  try {
    const options = { historyDir: `${dir}/history` };
    const store = new FileStore(`${dir}/config.json`, options);
    const other = new FileStore(`${dir}/config.json`, options);
    await checkConditionalSave(store, other);
    await checkHistory(store, other);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("kv store: conditional save and history", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dynlb-cas-" });
  const store = new KvStore({ path: `${dir}/config.kv` });
  const other = new KvStore({ path: `${dir}/config.kv` });
  try {
    await checkConditionalSave(store, other);
    await checkHistory(store, other);
  } finally {
    await store.close();
    await other.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("redis store: conditional save and history", async () => {
  setLogLevel("error");
  await using redis = await startRedis();
  const store = new RedisStore({ port: redis.port, key: "cas" });
  const other = new RedisStore({ port: redis.port, key: "cas" });
  try {
    await checkConditionalSave(store, other);
    await checkHistory(store, other);
  } finally {
    await store.close();
    await other.close();
    setLogLevel("info");
  }
});
