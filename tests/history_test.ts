/**
 * Config history, rollback and compare-and-set through the real admin listener, on the file,
 * KV and Redis stores.
 */
import { tempDir } from "./_temp.ts";
import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { configFile, configOf, startBackend } from "./_backend.ts";
import { eventually, get, startDynlb } from "./_dynlb.ts";
import { redisArgs, startRedis } from "./_redis.ts";
import { KvStore } from "../src/store/kv.ts";

type Json = Record<string, unknown>;

async function admin(
  lb: { admin: string },
  path: string,
  init: { method?: string; headers?: Record<string, string>; body?: unknown } = {},
): Promise<{ status: number; headers: Headers; body: Json }> {
  const response = await fetch(lb.admin + path, {
    method: init.method ?? (init.body === undefined ? "GET" : "POST"),
    headers: { "content-type": "application/json", ...init.headers },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  return { status: response.status, headers: response.headers, body: await response.json() };
}

async function history(lb: { admin: string }): Promise<Json[]> {
  const r = await admin(lb, "/config/history");
  assertEquals(r.status, 200, JSON.stringify(r.body));
  return r.body.history as Json[];
}

Deno.test("history: every applied config is recorded; rollback with x-save survives a restart", async () => {
  await using a = await startBackend("a");
  await using b = await startBackend("b");
  const A = configOf({ "x.test": [{ port: a.port }] });
  const B = configOf({ "x.test": [{ port: b.port }] });
  const C = configOf({ "x.test": [{ port: b.port, weight: 5 }], "c.test": [{ port: a.port }] });
  const path = await configFile(A);
  const dataDir = path.replace(/config\.json$/, "data");
  const args = ["--config-file", path, "--data-dir", dataDir];
  let hashA: string, hashB: string;
  {
    await using lb = await startDynlb(args);
    hashA = (await admin(lb, "/config")).body.hash as string;
    const posted = await admin(lb, "/config", { body: B });
    assertEquals(posted.status, 200);
    hashB = posted.body.hash as string;
    const saved = await admin(lb, "/config", { body: C, headers: { "x-save": "1" } });
    const hashC = saved.body.hash as string;

    const entries = await history(lb);
    assertEquals(entries.map((e) => [e.hash, e.source, e.saved, e.version]), [
      [hashC, "admin", true, 3],
      [hashB, "admin", false, 2],
      [hashA, "store", true, 1],
    ]);
    assert(entries.every((e) => !("config" in e)), "no documents in the list");
    const docA = await admin(lb, `/config/history/${hashA}`);
    assertEquals([docA.status, docA.body], [200, A]);
    assertEquals(docA.headers.get("etag"), `"${hashA}"`);
    assertEquals((await admin(lb, `/config/history/${"0".repeat(64)}`)).status, 404);

    const diff = await admin(lb, `/config/diff?from=${hashA}&to=${hashC}`);
    assertEquals(diff.status, 200);
    assertEquals(diff.body.hosts_added, [{ host: "c.test", backend: "b-c.test" }]);
    assertEquals(diff.body.backends_added, ["b-c.test"]);
    const changed = diff.body.backends_changed as Json[];
    assertEquals(changed.length, 1);
    assertEquals(changed[0].servers_added, [`127.0.0.1:${b.port}`]);
    assertEquals(changed[0].servers_removed, [`127.0.0.1:${a.port}`]);

    const back = await admin(lb, "/config/rollback", {
      body: { hash: hashA },
      headers: { "x-save": "1" },
    });
    assertEquals(back.status, 200, JSON.stringify(back.body));
    assertEquals([back.body.hash, back.body.saved], [hashA, true]);
    assertEquals(JSON.parse(await Deno.readTextFile(path)), A);
    assertEquals((await get(lb, "x.test")).body, "a");
    assertEquals((await get(lb, "c.test")).status, 404);
  }
  await using again = await startDynlb(args);
  const running = await admin(again, "/config");
  assertEquals([running.body.hash, running.body.config], [hashA, A]);
  const entries = await history(again);
  // The restart loaded what the rollback saved: recorded once, as the rollback.
  assertEquals(entries.map((e) => e.source), ["rollback", "admin", "admin", "store"]);
  assertEquals(entries[0].hash, hashA);
  // A rollback after the restart, to a memory-only config recorded before it.
  const toB = await admin(again, "/config/rollback", { body: { hash: hashB } });
  assertEquals([toB.status, toB.body.saved], [200, false]);
  assertEquals((await get(again, "x.test")).body, "b");
  assertEquals((await admin(again, "/config/rollback", { body: { hash: "nope" } })).status, 400);
  const unknown = await admin(again, "/config/rollback", { body: { hash: "f".repeat(64) } });
  assertEquals(unknown.status, 404);
});

Deno.test("history: --history N keeps the newest N", async () => {
  await using a = await startBackend("a");
  const path = await configFile(configOf({ "x.test": [{ port: a.port }] }));
  await using lb = await startDynlb([
    "--config-file",
    path,
    "--history",
    "3",
    "--data-dir",
    path + ".d",
  ]);
  const hashes = [];
  for (let i = 1; i <= 5; i++) {
    const r = await admin(lb, "/config", {
      body: configOf({ [`h${i}.test`]: [{ port: a.port }] }),
      headers: { "x-save": "1" },
    });
    hashes.push(r.body.hash);
  }
  assertEquals((await history(lb)).map((e) => e.hash), hashes.reverse().slice(0, 3));
  let files = 0;
  for await (const _ of Deno.readDir(path + ".d/history")) files++;
  assertEquals(files, 6); // an entry and a document per kept config
});

Deno.test("If-Match: ETag on GET /config; a stale one is 412 and changes nothing (file store)", async () => {
  await using a = await startBackend("a");
  await using b = await startBackend("b");
  const A = configOf({ "x.test": [{ port: a.port }] });
  const path = await configFile(A);
  await using lb = await startDynlb(["--config-file", path, "--data-dir", path + ".d"]);
  const first = await admin(lb, "/config");
  const tag = first.headers.get("etag")!;
  assertEquals(tag, `"${first.body.hash}"`);

  const B = configOf({ "x.test": [{ port: b.port }] });
  const ok = await admin(lb, "/config", { body: B, headers: { "if-match": tag, "x-save": "1" } });
  assertEquals(ok.status, 200);
  assertEquals(ok.headers.get("etag"), `"${ok.body.hash}"`);
  // The second operator still holds the first ETag.
  const C = configOf({ "c.test": [{ port: a.port }] });
  const stale = await admin(lb, "/config", {
    body: C,
    headers: { "if-match": tag, "x-save": "1" },
  });
  assertEquals(stale.status, 412);
  assertMatch(String(stale.body.error), /If-Match failed, nothing changed/);
  assertEquals(JSON.parse(await Deno.readTextFile(path)), B);
  assertEquals((await get(lb, "x.test")).body, "b");
  const staleRollback = await admin(lb, "/config/rollback", {
    body: { hash: first.body.hash },
    headers: { "if-match": tag },
  });
  assertEquals(staleRollback.status, 412);
  assertEquals((await get(lb, "x.test")).body, "b");
  assertEquals((await history(lb)).length, 2, "no entry for a refused change");

  // The running config matches but the file changed behind this instance's back: the store
  // check refuses (or, had the poll already applied the edit, the running check does).
  const memory = await admin(lb, "/config", { body: C });
  const memoryTag = memory.headers.get("etag")!;
  await Deno.writeTextFile(path, JSON.stringify(A));
  const behind = await admin(lb, "/config", {
    body: B,
    headers: { "if-match": memoryTag, "x-save": "1" },
  });
  assertEquals(behind.status, 412);
  assertEquals(JSON.parse(await Deno.readTextFile(path)), A);
  const star = await admin(lb, "/config", { body: C, headers: { "if-match": "*" } });
  assertEquals(star.status, 200);
});

Deno.test("If-Match holds against the store: KV and Redis, two instances", async () => {
  await using a = await startBackend("a");
  await using b = await startBackend("b");
  await using redis = await startRedis();
  const dir = await tempDir();
  const stores: Array<[string, string[]]> = [
    ["kv", ["--config-type", "kv", "--kv-path", `${dir}/config.kv`, "--data-dir", dir]],
    ["redis", redisArgs(redis.port, dir)],
  ];
  for (const [kind, args] of stores) {
    await using one = await startDynlb(args);
    await using two = await startDynlb(args);
    const A = configOf({ [`${kind}.test`]: [{ port: a.port }] });
    const saved = await admin(one, "/config", { body: A, headers: { "x-save": "1" } });
    assertEquals(saved.status, 200);
    await eventually(async () => (await get(two, `${kind}.test`)).body === "a", 5000);
    const tagOne = `"${saved.body.hash}"`;

    const B = configOf({ [`${kind}.test`]: [{ port: b.port }] });
    const two1 = await admin(two, "/config", {
      body: B,
      headers: { "x-save": "1", "if-match": tagOne },
    });
    assertEquals(two1.status, 200, kind);
    // `one` may not have applied B yet: its store check refuses regardless.
    const C = configOf({ [`${kind}.test`]: [{ port: a.port, weight: 2 }] });
    const one1 = await admin(one, "/config", {
      body: C,
      headers: { "x-save": "1", "if-match": tagOne },
    });
    assertEquals(one1.status, 412, kind);
    await eventually(async () => (await get(one, `${kind}.test`)).body === "b", 5000);
    assertEquals((await admin(one, "/config")).body.hash, two1.body.hash);

    // Another writer changes the store behind both; within the poll second `one` still runs B,
    // so only the store's own check (WATCH/MULTI, the KV head check) can refuse.
    const D = configOf({ [`${kind}.test`]: [{ port: a.port, weight: 3 }] });
    if (kind === "redis") await redis.command("SET", "balancer", JSON.stringify(D));
    else {
      const writer = new KvStore({ path: `${dir}/config.kv` });
      await writer.save(JSON.stringify(D));
      await writer.close();
    }
    const behind = await admin(one, "/config", {
      body: C,
      headers: { "x-save": "1", "if-match": `"${two1.body.hash}"` },
    });
    assertEquals(behind.status, 412, `${kind}: store changed behind the instance`);
    await eventually(async () => (await get(one, `${kind}.test`)).body === "a", 5000);
    await eventually(async () => (await get(two, `${kind}.test`)).body === "a", 5000);

    // One history for the fleet: each save recorded once, by the instance that made it, not
    // again by the other that applied it from the store; the foreign write by an instance that
    // applied it (README: two that apply it in the same milliseconds may both record it).
    const seenByOne = await history(one);
    assertEquals(await history(two), seenByOne, kind);
    assertEquals(seenByOne[0].source, "store");
    for (const hash of [saved.body.hash, two1.body.hash]) {
      assertEquals(seenByOne.filter((e) => e.hash === hash).length, 1, `${kind}: ${hash} once`);
    }
    assertEquals(seenByOne.filter((e) => e.source !== "store").map((e) => [e.hash, e.source]), [
      [two1.body.hash, "admin"],
      [saved.body.hash, "admin"],
    ]);
  }
});

Deno.test("history: a history that cannot be written never fails a config change", async () => {
  await using a = await startBackend("a");
  const path = await configFile(configOf({ "x.test": [{ port: a.port }] }));
  const dataDir = path.replace(/config\.json$/, "data");
  await Deno.mkdir(dataDir);
  await Deno.writeTextFile(`${dataDir}/history`, "a file where the directory should be");
  await using lb = await startDynlb(["--config-file", path, "--data-dir", dataDir]);
  const next = configOf({ "y.test": [{ port: a.port }] });
  const saved = await admin(lb, "/config", { body: next, headers: { "x-save": "1" } });
  assertEquals(saved.status, 200);
  assertEquals(JSON.parse(await Deno.readTextFile(path)), next);
  assertEquals((await get(lb, "y.test")).body, "a");
  assertMatch(lb.logs(), /WARN\s+config history not recorded/);
  const list = await admin(lb, "/config/history");
  assertEquals(list.status, 503);
  assertMatch(String(list.body.error), /store unavailable: cannot read history/);
});
