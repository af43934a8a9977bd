import { assert, assertEquals } from "../../tests/_assert.ts";
import { KvStore, whenUnlocked } from "./kv.ts";

/** A config with `hosts` hosts over `hosts / 10` backends (~100 bytes per host). */
function bigConfig(hosts: number, tag = ""): string {
  const backends = [];
  for (let b = 0; b < Math.max(1, hosts / 10); b++) {
    backends.push({
      backend_name: `backend${b}${tag}`,
      health_check: { enable: true, type: "tcp", interval: 3, timeout: 2, success: 2, fail: 3 },
      servers: [{ addr: "127.0.0.1", port: 10000 + (b % 5000), weight: 1 + (b % 7) }],
    });
  }
  const list = [];
  for (let h = 0; h < hosts; h++) {
    list.push({ host: `www.host-${h}${tag}.example.com`, backend_name: `backend${h % 10}${tag}` });
  }
  return JSON.stringify({ backends, hosts: list }, null, 1);
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dynlb-kv-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Every key under the store's prefix, read straight from the KV file. */
async function keysOf(path: string, key = "config"): Promise<Deno.KvKey[]> {
  const kv = await Deno.openKv(path);
  try {
    const keys: Deno.KvKey[] = [];
    for await (const entry of kv.list({ prefix: [key] })) keys.push(entry.key);
    return keys;
  } finally {
    kv.close();
  }
}

Deno.test("kv store: empty store loads null, save/load round trip", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/sub/dir/config.kv`; // parent directories are created
    const store = new KvStore({ path });
    try {
      assertEquals(await store.load(), null);
      const saved = await store.save('{"backends":[],"hosts":[]}');
      assertEquals(await store.load(), saved);
      const again = await store.save("");
      assert(again.revision !== saved.revision);
      assertEquals(await store.load(), { text: "", revision: again.revision });
      const unicode = '{"hosts":[{"host":"bücher.example"}]}';
      assertEquals((await store.save(unicode)).text, unicode);
      assertEquals((await store.load())?.text, unicode);
    } finally {
      await store.close();
    }
  });
});

Deno.test("kv store: 10,000 and 100,000-host configs round-trip byte-exactly", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/config.kv`;
    const store = new KvStore({ path });
    try {
      for (const hosts of [10_000, 100_000]) {
        const text = bigConfig(hosts);
        const t0 = performance.now();
        const saved = await store.save(text);
        const t1 = performance.now();
        const loaded = await store.load();
        const t2 = performance.now();
        console.log(
          `${hosts} hosts, ${(text.length / 1e6).toFixed(1)} MB: save ${
            (t1 - t0).toFixed(0)
          } ms, ` +
            `load ${(t2 - t1).toFixed(0)} ms`,
        );
        assert(loaded !== null);
        assertEquals(loaded.revision, saved.revision);
        assert(loaded.text === text, "loaded text differs");
      }
      // Only the 100,000-host config's chunks remain.
      const keys = await keysOf(path);
      const chunks = keys.filter((k) => k[1] === "chunk");
      assertEquals(
        chunks.length,
        Math.ceil(new TextEncoder().encode(bigConfig(100_000)).length / 64_000),
      );
    } finally {
      await store.close();
    }
  });
});

Deno.test("kv store: a second store on the same file sees saves (kv.watch or poll)", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/config.kv`;
    const writer = new KvStore({ path });
    const reader = new KvStore({ path, pollIntervalMs: 100 });
    const ac = new AbortController();
    try {
      assertEquals(await reader.load(), null);
      let wake: () => void = () => {};
      const changed = new Promise<void>((resolve) => (wake = resolve));
      reader.watch(() => wake(), ac.signal);
      const t0 = performance.now();
      const saved = await writer.save(bigConfig(100));
      await changed;
      console.log(`second store notified after ${(performance.now() - t0).toFixed(0)} ms`);
      assertEquals(await reader.load(), saved);
    } finally {
      ac.abort();
      await reader.close();
      await writer.close();
    }
  });
});

Deno.test("kv store: a save by another process is seen by watch and load", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/config.kv`;
    const store = new KvStore({ path, pollIntervalMs: 100 });
    const ac = new AbortController();
    try {
      assertEquals(await store.load(), null);
      let wake: () => void = () => {};
      const changed = new Promise<void>((resolve) => (wake = resolve));
      store.watch(() => wake(), ac.signal);
      const module = new URL("./kv.ts", import.meta.url).href;
      const script = `import { KvStore } from ${JSON.stringify(module)};
        const s = new KvStore({ path: ${JSON.stringify(path)} });
        await s.save("from another process"); await s.close();`;
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["eval", "--unstable-kv", script],
        stdout: "null",
        stderr: "inherit",
      }).output();
      assert(out.success, "child process failed");
      await changed;
      assertEquals((await store.load())?.text, "from another process");
    } finally {
      ac.abort();
      await store.close();
    }
  });
});

Deno.test("kv store: concurrent saves never leave or show a mixed config", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/config.kv`;
    const stores = [new KvStore({ path }), new KvStore({ path }), new KvStore({ path })];
    try {
      // Multi-chunk documents, so interleaving chunks of two saves would be detectable.
      const texts = ["a", "b", "c", "d", "e", "f"].map((tag) => bigConfig(3000, tag));
      const valid = new Set(texts);
      let reading = true;
      let reads = 0;
      const readers = stores.map(async (store) => {
        while (reading) {
          const loaded = await store.load();
          if (loaded) assert(valid.has(loaded.text), "a load returned a mixed config");
          reads++;
        }
      });
      await Promise.all(texts.map((text, i) => stores[i % stores.length].save(text)));
      reading = false;
      await Promise.all(readers);
      const final = await stores[0].load();
      assert(final !== null && valid.has(final.text));
      for (const store of stores) assertEquals(await store.load(), final);
      // Old chunk sets were deleted and no bookkeeping records remain.
      const keys = await keysOf(path);
      assert(keys.every((k) => k[1] === "head" || (k[1] === "chunk" && k[2] === final.revision)));
      const chunks = keys.filter((k) => k[1] === "chunk").length;
      assertEquals(chunks, Math.ceil(new TextEncoder().encode(final.text).length / 64_000));
      console.log(`${reads} concurrent loads, all consistent`);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });
});

Deno.test("kv store: saves from several processes at once stay whole and clean", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/config.kv`;
    const module = new URL("./kv.ts", import.meta.url).href;
    // Each child saves 10 distinct 5-chunk documents as fast as it can.
    const child = (tag: string) =>
      new Deno.Command(Deno.execPath(), {
        args: [
          "eval",
          "--unstable-kv",
          `import { KvStore } from ${JSON.stringify(module)};
          const s = new KvStore({ path: ${JSON.stringify(path)} });
          for (let i = 0; i < 10; i++) await s.save("${tag}" + i + "x".repeat(300000));
          await s.close();`,
        ],
        stdout: "null",
        stderr: "inherit",
      }).output();
    const store = new KvStore({ path });
    try {
      let running = true;
      const children = Promise.all(["A", "B", "C"].map(child)).finally(() => (running = false));
      let reads = 0;
      while (running) {
        const loaded = await store.load();
        if (loaded) assert(/^[ABC]\d+x{300000}$/.test(loaded.text), "a load saw a mixed config");
        reads++;
      }
      assert((await children).every((out) => out.success), "a child's save failed");
      const final = await store.load();
      assert(final !== null);
      const keys = await keysOf(path);
      assert(keys.every((k) => k[1] === "head" || (k[1] === "chunk" && k[2] === final.revision)));
      console.log(`${reads} loads during 30 saves by 3 processes, all whole`);
    } finally {
      await store.close();
    }
  });
});

Deno.test("kv store: unusable path rejects with StoreUnavailableError", async () => {
  await withDir(async (dir) => {
    await Deno.writeTextFile(`${dir}/file`, "");
    const store = new KvStore({ path: `${dir}/file/config.kv` }); // parent is a file
    try {
      let error: unknown;
      await store.load().catch((err) => (error = err));
      assertEquals((error as Error)?.name, "StoreUnavailableError");
    } finally {
      await store.close();
    }
  });
});

Deno.test("kv store: a head whose SHA-256 does not match its chunks is refused on load", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/config.kv`;
    const text = '{"backends": [], "hosts": []}';
    const writer = new KvStore({ path });
    await writer.save(text);
    await writer.close();
    // Damage the stored bytes without changing their length or count: only the hash tells.
    const kv = await Deno.openKv(path);
    try {
      const [entry] = await Array.fromAsync(kv.list<Uint8Array>({ prefix: ["config", "chunk"] }));
      const damaged = entry.value.slice();
      damaged[damaged.indexOf(0x5b)] = 0x7b; // "[" → "{"
      await kv.set(entry.key, damaged);
    } finally {
      kv.close();
    }
    const reader = new KvStore({ path });
    try {
      const err = await reader.load().then(() => null, (e) => e);
      assert(err instanceof Error, "a damaged config was loaded");
      assert(/damaged/.test(err.message), err.message);
    } finally {
      await reader.close();
    }
  });
});

/**
 * Another process holding the SQLite write lock of `path` (through `node:sqlite`, a second
 * SQLite user of the file like another dynlb would be) until `release()`.
 */
async function lockHolder(path: string): Promise<{ release: () => Promise<void> }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { DatabaseSync } from "node:sqlite";
      const db = new DatabaseSync(${JSON.stringify(path)});
      db.exec("BEGIN EXCLUSIVE");
      console.log("locked");
      for await (const _ of Deno.stdin.readable) break;
      db.exec("COMMIT");
      db.close();`,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  assertEquals((await lines.read()).value?.trim(), "locked");
  let released: Promise<void> | null = null;
  return {
    release: () =>
      released ??= (async () => {
        await child.stdin.close();
        assert((await child.status).success, "the lock holder failed");
        await lines.cancel();
      })(),
  };
}

Deno.test("kv store: a write waits out another process's lock on the file", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/config.kv`;
    const kv = await Deno.openKv(path);
    try {
      await kv.set(["k"], 1);
      const holder = await lockHolder(path);
      let attempts = 0;
      const errors: unknown[] = [];
      // The first attempt meets the lock (after Deno's own wait); the lock goes away then, so
      // only a retry can succeed.
      const result = await whenUnlocked(async () => {
        attempts++;
        try {
          return await kv.set(["k"], 2);
        } catch (err) {
          errors.push(err);
          await holder.release();
          throw err;
        }
      });
      await holder.release();
      assert(result.ok);
      assertEquals(attempts, 2);
      // What Deno throws for a locked file: the type whenUnlocked retries on.
      assert(errors[0] instanceof TypeError, String(errors[0]));
      assertEquals((await kv.get(["k"])).value, 2);
    } finally {
      kv.close();
    }
  });
});

Deno.test("kv store: errors other than a locked file are not retried", async () => {
  await withDir(async (dir) => {
    const kv = await Deno.openKv(`${dir}/config.kv`);
    kv.close();
    let attempts = 0;
    const err = await whenUnlocked(() => {
      attempts++;
      return kv.get(["k"]);
    }).then(() => null, (e) => e);
    assert(err instanceof Deno.errors.BadResource, String(err));
    assertEquals(attempts, 1);
  });
});
