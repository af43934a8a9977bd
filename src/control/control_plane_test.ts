import { assert, assertEquals, assertRejects } from "../../tests/_assert.ts";
import { setLogLevel } from "../log.ts";
import { Router } from "../proxy/router.ts";
import { FileStore } from "../store/file.ts";
import { StoreUnavailableError } from "../store/store.ts";
import { ControlPlane, InvalidStoredConfigError } from "./control_plane.ts";

/** A config routing `host` to one server on `port`. */
function doc(host: string, port: number): { backends: unknown[]; hosts: unknown[] } {
  return {
    backends: [{ backend_name: "b", servers: [{ addr: "127.0.0.1", port }] }],
    hosts: [{ host, backend_name: "b" }],
  };
}

interface Fixture {
  readonly dir: string;
  readonly path: string;
  readonly router: Router;
  readonly control: ControlPlane;
}

/** A control plane over a real file store (holding `initial`) and the real router. */
async function withControl(
  initial: unknown,
  fn: (f: Fixture) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dynlb-control-" });
  const path = `${dir}/config.json`;
  if (initial !== undefined) await Deno.writeTextFile(path, JSON.stringify(initial));
  const router = new Router();
  const control = new ControlPlane({ store: new FileStore(path), dataPlane: router });
  setLogLevel("error");
  try {
    await fn({ dir, path, router, control });
  } finally {
    await control.stop();
    setLogLevel("info");
    await Deno.remove(dir, { recursive: true });
  }
}

/** The port the router sends `host` to, or undefined when it routes nowhere. */
function routed(router: Router, host: string): number | undefined {
  return router.route(host)?.pick()?.port;
}

Deno.test("control plane: start applies the stored config as version 1", async () => {
  await withControl(doc("a.test", 10001), async ({ router, control }) => {
    assertEquals(await control.start(), true);
    const r = control.running;
    assertEquals([r.version, r.source, r.saved], [1, "store", true]);
    assertEquals(r.config, doc("a.test", 10001));
    assertEquals(r.hash.length, 64);
    assertEquals(routed(router, "A.test:80"), 10001);
    assertEquals(router.snapshot.version, 1);
  });
});

Deno.test("control plane: a missing file starts empty, an invalid one refuses to start", async () => {
  await withControl(undefined, async ({ path, router, control }) => {
    assertEquals(await control.start(), false);
    assertEquals([control.running.version, control.running.source], [1, "empty"]);
    assertEquals(router.snapshot.hosts.size, 0);
    await Deno.writeTextFile(path, '{"backends": [], "hosts": [{"host": "x"}]}');
    const other = new ControlPlane({ store: new FileStore(path), dataPlane: new Router() });
    const err = await assertRejects(() => other.start());
    assert(err instanceof InvalidStoredConfigError, String(err));
    assertEquals(err.issues.map((i) => i.path), ["hosts[0].backend_name"]);
  });
});

Deno.test("control plane: a memory-only config holds until the store changes", async () => {
  await withControl(doc("a.test", 10001), async ({ path, router, control }) => {
    await control.start();
    const stored = await Deno.readTextFile(path);
    const result = await control.propose(JSON.stringify(doc("b.test", 10002)), { save: false });
    assert(result.ok);
    assertEquals([result.running.version, result.running.source, result.running.saved], [
      2,
      "admin",
      false,
    ]);
    assertEquals(routed(router, "b.test"), 10002);
    assertEquals(routed(router, "a.test"), undefined);
    assertEquals(await Deno.readTextFile(path), stored, "the store was written");
    // Polls of an unchanged store keep the memory-only config.
    await control.sync();
    await control.sync();
    assertEquals(control.running.version, 2);
    assertEquals(routed(router, "b.test"), 10002);
    // A change of the store itself replaces it.
    await Deno.writeTextFile(path, JSON.stringify(doc("c.test", 10003), null, 2));
    await control.sync();
    assertEquals([control.running.version, control.running.source, control.running.saved], [
      3,
      "store",
      true,
    ]);
    assertEquals(routed(router, "c.test"), 10003);
    assertEquals(routed(router, "b.test"), undefined);
  });
});

Deno.test("control plane: a saved config is written pretty printed and not re-applied", async () => {
  await withControl(doc("a.test", 10001), async ({ path, router, control }) => {
    await control.start();
    const posted = JSON.stringify(doc("b.test", 10002));
    const result = await control.propose(posted, { save: true });
    assert(result.ok);
    assertEquals([result.running.version, result.running.saved], [2, true]);
    assertEquals(
      await Deno.readTextFile(path),
      JSON.stringify(doc("b.test", 10002), null, 2) + "\n",
    );
    assertEquals(control.running.config, doc("b.test", 10002));
    await control.sync();
    assertEquals(control.running.version, 2, "its own save was applied again");
    assertEquals(routed(router, "b.test"), 10002);
  });
});

Deno.test("control plane: the hash depends on the document only", async () => {
  await withControl(doc("a.test", 10001), async ({ control }) => {
    await control.start();
    const first = control.running.hash;
    const again = await control.propose(JSON.stringify(doc("a.test", 10001)), { save: false });
    assert(again.ok);
    assertEquals(again.running.hash, first);
    const other = await control.propose(JSON.stringify(doc("a.test", 10002)), { save: false });
    assert(other.ok && other.running.hash !== first);
  });
});

Deno.test("control plane: an invalid proposal changes nothing and returns every issue", async () => {
  await withControl(doc("a.test", 10001), async ({ path, router, control }) => {
    await control.start();
    const stored = await Deno.readTextFile(path);
    const snapshot = router.snapshot;
    const bad = {
      backends: [{ backend_name: "b", servers: [{ addr: "127.0.0.1", port: 0 }] }],
      hosts: [{ host: "x.test", backend_name: "nope", extra: 1 }],
    };
    for (const save of [false, true]) {
      const result = await control.propose(JSON.stringify(bad), { save });
      assert(!result.ok);
      assertEquals(result.issues.map((i) => i.path).sort(), [
        "backends[0].servers[0].port",
        "hosts[0].extra",
      ]);
      const syntax = await control.propose("{not json", { save });
      assert(!syntax.ok && syntax.issues.length === 1 && syntax.issues[0].path === "");
    }
    assertEquals(control.running.version, 1);
    assert(router.snapshot === snapshot, "the snapshot was replaced");
    assertEquals(await Deno.readTextFile(path), stored);
  });
});

Deno.test("control plane: a store that cannot be written rejects and changes nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dynlb-control-" });
  // The temporary file's name exceeds NAME_MAX: the save fails for root too.
  const path = `${dir}/${"c".repeat(240)}.json`;
  await Deno.writeTextFile(path, JSON.stringify(doc("a.test", 10001)));
  const router = new Router();
  const control = new ControlPlane({ store: new FileStore(path), dataPlane: router });
  setLogLevel("error");
  try {
    await control.start();
    const stored = await Deno.readTextFile(path);
    const err = await assertRejects(() =>
      control.propose(JSON.stringify(doc("b.test", 10002)), { save: true })
    );
    assert(err instanceof StoreUnavailableError, String(err));
    assertEquals(control.running.version, 1);
    assertEquals(routed(router, "a.test"), 10001);
    assertEquals(await Deno.readTextFile(path), stored);
    // The queue is not stuck after a failure.
    const next = await control.propose(JSON.stringify(doc("b.test", 10002)), { save: false });
    assert(next.ok && next.running.version === 2);
  } finally {
    setLogLevel("info");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("control plane: an invalid stored file is ignored, the running config kept", async () => {
  await withControl(doc("a.test", 10001), async ({ path, router, control }) => {
    await control.start();
    await Deno.writeTextFile(
      path,
      '{"backends": [], "hosts": [{"host": "b.test", "backend_name": "x"}]}',
    );
    await control.sync();
    assertEquals(control.running.version, 1);
    assertEquals(routed(router, "a.test"), 10001);
    await Deno.writeTextFile(path, "{ truncated");
    await control.sync();
    assertEquals(control.running.version, 1);
    // The next valid edit is applied.
    await Deno.writeTextFile(path, JSON.stringify(doc("b.test", 10002)));
    await control.sync();
    assertEquals(control.running.version, 2);
    assertEquals(routed(router, "b.test"), 10002);
  });
});

Deno.test("control plane: concurrent proposes apply in order, versions one apart", async () => {
  await withControl(doc("a.test", 10001), async ({ router, control }) => {
    await control.start();
    const ports = [10002, 10003, 10004, 10005, 10006];
    const results = await Promise.all(
      ports.map((port, i) =>
        control.propose(JSON.stringify(doc("a.test", port)), { save: i % 2 === 0 })
      ),
    );
    assertEquals(results.map((r) => r.ok ? r.running.version : -1), [2, 3, 4, 5, 6]);
    assertEquals(
      results.map((r) => r.ok ? (r.running.config as ReturnType<typeof doc>).backends : []),
      ports.map((port) => doc("a.test", port).backends),
    );
    assertEquals(control.running.version, 6);
    assertEquals(routed(router, "a.test"), 10006);
    assertEquals(router.snapshot.version, 6);
  });
});

Deno.test("control plane: watch follows the file through its poll", async () => {
  const dir = await Deno.makeTempDir({ prefix: "dynlb-control-" });
  const path = `${dir}/config.json`;
  await Deno.writeTextFile(path, JSON.stringify(doc("a.test", 10001)));
  const router = new Router();
  const control = new ControlPlane({
    store: new FileStore(path, { pollIntervalMs: 20 }),
    dataPlane: router,
  });
  setLogLevel("error");
  try {
    await control.start();
    control.watch();
    await Deno.writeTextFile(path, JSON.stringify(doc("b.test", 10002), null, 2));
    const started = Date.now();
    while (routed(router, "b.test") !== 10002) {
      assert(Date.now() - started < 10_000, "the edit was never applied");
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assertEquals(control.running.source, "store");
  } finally {
    // Resolves once the poll in flight (and the sync it started) finished: nothing leaks.
    await control.stop();
    setLogLevel("info");
    await Deno.remove(dir, { recursive: true });
  }
});
