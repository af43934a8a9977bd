import { assert, assertEquals, assertRejects } from "../../tests/_assert.ts";
import { until } from "../../tests/_raw_server.ts";
import { setLogLevel } from "../log.ts";
import { FileStore } from "./file.ts";
import { StoreUnavailableError } from "./store.ts";

const POLL_MS = 20;

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dynlb-file-store-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function names(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(dir)) out.push(entry.name);
  return out.sort();
}

/**
 * The store's polls, observed: every `Deno.stat` call goes through this counter (and still does
 * its work), so a test can wait for a number of polls or for the one in flight to finish instead
 * of sleeping.
 */
const stats = { started: 0, inFlight: 0, paths: [] as string[] };
const realStat = Deno.stat;
Deno.stat = async (path) => {
  stats.started++;
  stats.paths.push(String(path));
  stats.inFlight++;
  try {
    return await realStat(path);
  } finally {
    stats.inFlight--;
  }
};

/** Lets a poll that is in flight finish after its watch was aborted (no leaked stat op). */
async function settle(): Promise<void> {
  await until(() => stats.inFlight === 0);
}

/** Resolves once `n` more polls have run. */
async function polls(n: number): Promise<void> {
  const target = stats.started + n;
  await until(() => stats.started >= target && stats.inFlight === 0);
}

/** Starts watching `store`; returns the number of calls so far and a stop function. */
function watchCount(store: FileStore): { calls: () => number; stop: () => Promise<void> } {
  let calls = 0;
  const controller = new AbortController();
  const stopped = store.watch(() => calls++, controller.signal);
  return {
    calls: () => calls,
    stop: async () => {
      controller.abort();
      // The watch says when it stopped: no poll may be in flight then.
      await stopped;
      assertEquals(stats.inFlight, 0, "a poll still ran after the watch resolved");
    },
  };
}

Deno.test("file store: loading a missing file gives null", async () => {
  await withDir(async (dir) => {
    assertEquals(await new FileStore(`${dir}/config.json`).load(), null);
  });
});

Deno.test("file store: save then load gives the same text and revision", async () => {
  await withDir(async (dir) => {
    const store = new FileStore(`${dir}/config.json`);
    const text = '{"backends": [], "hosts": [], "note": "ü"}\n';
    const saved = await store.save(text);
    assertEquals(saved.text, text);
    const loaded = await store.load();
    assertEquals(loaded?.text, text);
    assertEquals(loaded?.revision, saved.revision);
    assertEquals(await Deno.readTextFile(`${dir}/config.json`), text);
    // A second save changes the revision (a new inode, at least).
    const again = await store.save('{"backends":[],"hosts":[]}');
    assert(again.revision !== saved.revision);
    assertEquals((await store.load())?.revision, again.revision);
  });
});

Deno.test("file store: a relative path saves beside itself", async () => {
  await withDir(async (dir) => {
    const cwd = Deno.cwd();
    Deno.chdir(dir);
    try {
      const store = new FileStore("config.json");
      await store.save("{}");
      assertEquals(await names(dir), ["config.json"]);
      assertEquals((await store.load())?.text, "{}");
    } finally {
      Deno.chdir(cwd);
    }
  });
});

Deno.test("file store: saves leave no temporary files behind", async () => {
  await withDir(async (dir) => {
    const store = new FileStore(`${dir}/config.json`);
    for (let i = 0; i < 5; i++) await store.save(`{"n": ${i}}`);
    assertEquals(await names(dir), ["config.json"]);
  });
});

Deno.test("file store: a failed save rejects StoreUnavailableError and keeps the old file", async () => {
  await withDir(async (dir) => {
    // The temporary file's name (the config's name plus a suffix) exceeds NAME_MAX (255) while
    // the config's own name does not: the save fails for any user, root included.
    const path = `${dir}/${"c".repeat(240)}.json`;
    await Deno.writeTextFile(path, "old");
    const err = await assertRejects(() => new FileStore(path).save("new"));
    assert(err instanceof StoreUnavailableError, String(err));
    assertEquals(await Deno.readTextFile(path), "old");
    assertEquals(await names(dir), [`${"c".repeat(240)}.json`]);
  });
});

Deno.test("file store: saving into a directory that does not exist rejects", async () => {
  await withDir(async (dir) => {
    const err = await assertRejects(() => new FileStore(`${dir}/missing/config.json`).save("{}"));
    assert(err instanceof StoreUnavailableError, String(err));
    assertEquals(await names(dir), []);
  });
});

Deno.test("file store: a path that cannot be read rejects StoreUnavailableError", async () => {
  await withDir(async (dir) => {
    // A directory opens but cannot be read as a file.
    const err = await assertRejects(() => new FileStore(dir).load());
    assert(err instanceof StoreUnavailableError, String(err));
  });
});

Deno.test("file store: watch fires after an edit in place", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/config.json`;
    await Deno.writeTextFile(path, "{}");
    const store = new FileStore(path, { pollIntervalMs: POLL_MS });
    const watch = watchCount(store);
    try {
      await until(() => watch.calls() >= 1); // The first poll reports the current file.
      const inode = (await Deno.stat(path)).ino;
      const before = watch.calls();
      await Deno.writeTextFile(path, '{"backends": []}');
      assertEquals((await Deno.stat(path)).ino, inode, "not an edit in place");
      await until(() => watch.calls() > before);
    } finally {
      await watch.stop();
    }
  });
});

Deno.test("file store: watch fires after a new file is renamed over the config", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/config.json`;
    await Deno.writeTextFile(path, "{}");
    const past = new Date(Date.now() - 3600_000);
    await Deno.utime(path, past, past);
    const store = new FileStore(path, { pollIntervalMs: POLL_MS });
    const watch = watchCount(store);
    try {
      await until(() => watch.calls() >= 1);
      // Same size and same (old) mtime as the config: only the inode tells the change. An old
      // mtime also keeps the store from re-reading a recently modified file on every poll.
      await Deno.writeTextFile(`${dir}/new.json`, "[]");
      await Deno.utime(`${dir}/new.json`, past, past);
      const before = watch.calls();
      await Deno.rename(`${dir}/new.json`, path);
      await until(() => watch.calls() > before);
    } finally {
      await watch.stop();
    }
  });
});

Deno.test("file store: watch does not fire while nothing changes, and stops on abort", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/config.json`;
    await Deno.writeTextFile(path, "{}");
    // A file modified in the last two seconds is re-read on every poll until it settles.
    const old = new Date(Date.now() - 60_000);
    await Deno.utime(path, old, old);
    const store = new FileStore(path, { pollIntervalMs: POLL_MS });
    const watch = watchCount(store);
    await until(() => watch.calls() >= 1);
    // Ten polls with the file unchanged.
    await polls(10);
    assertEquals(watch.calls(), 1);
    await watch.stop();
    const polled = stats.paths.filter((p) => p === path).length;
    await Deno.writeTextFile(path, '{"changed": true}');
    // No poll runs any more: a second watch, through a symlink, sees the change and polls five
    // more times meanwhile; the stopped one neither polled nor fired.
    await Deno.symlink(path, `${dir}/link.json`);
    const witness = watchCount(new FileStore(`${dir}/link.json`, { pollIntervalMs: POLL_MS }));
    try {
      await until(() => witness.calls() >= 1);
      await polls(5);
    } finally {
      await witness.stop();
    }
    assertEquals(stats.paths.filter((p) => p === path).length, polled);
    assertEquals(watch.calls(), 1);
  });
});

Deno.test("file store: watch survives the file going missing and sees it come back", async () => {
  await withDir(async (dir) => {
    const path = `${dir}/config.json`;
    await Deno.writeTextFile(path, "{}");
    setLogLevel("error");
    const store = new FileStore(path, { pollIntervalMs: POLL_MS });
    const watch = watchCount(store);
    try {
      await until(() => watch.calls() >= 1);
      await Deno.remove(path);
      await settle();
      const before = watch.calls();
      await Deno.writeTextFile(path, '{"back": 1}');
      await until(() => watch.calls() > before);
    } finally {
      await watch.stop();
      setLogLevel("info");
    }
  });
});

Deno.test("file store: saving through a symlink writes the target and keeps its mode", async () => {
  await withDir(async (dir) => {
    const real = `${dir}/real.json`;
    const link = `${dir}/config.json`;
    await Deno.writeTextFile(real, "{}");
    await Deno.chmod(real, 0o600);
    await Deno.symlink(real, link);
    const store = new FileStore(link);
    await store.save('{"saved": true}');
    assertEquals((await Deno.lstat(link)).isSymlink, true);
    assertEquals(await Deno.readTextFile(real), '{"saved": true}');
    assertEquals((await Deno.stat(real)).mode! & 0o777, 0o600);
  });
});
