import { assert, assertEquals } from "../../tests/_assert.ts";
import { CounterSlots } from "../balance/memory.ts";
import { compileSnapshot } from "./snapshot.ts";
import { validateConfig } from "./schema.ts";
import type { Config } from "./types.ts";

function config(doc: unknown): Config {
  const result = validateConfig(doc);
  if (!result.ok) throw new Error(JSON.stringify(result.issues));
  return result.config;
}

const CONFIG = config({
  backends: [
    {
      backend_name: "web",
      servers: [
        { addr: "127.0.0.1", port: 10001, weight: 10 },
        { addr: "127.0.0.1", port: 10002, weight: 1 },
      ],
    },
    { backend_name: "api", servers: [{ addr: "::1", port: 10003 }] },
    { backend_name: "empty", servers: [] },
  ],
  hosts: [
    { host: "WWW.Test1.com.", backend_name: "web" },
    { host: "test1.com", backend_name: "web" },
    { host: "api.test:8080", backend_name: "api" },
    { host: "void.test", backend_name: "empty" },
  ],
});

Deno.test("snapshot: hosts are keyed normalised, with the version", () => {
  const snap = compileSnapshot(CONFIG, 7);
  assertEquals(snap.version, 7);
  assertEquals(snap.hosts.size, 4);
  for (const name of ["api.test", "test1.com", "void.test", "www.test1.com"]) {
    assert(snap.hosts.exact(name) !== undefined, name);
  }
  assertEquals([...snap.backends.keys()], ["web", "api", "empty"]);
  assertEquals(snap.hosts.find("api.test")?.destination.pool.pick()?.origin, "http://[::1]:10003");
});

Deno.test("snapshot: hosts of one backend share one pool (and its round-robin)", () => {
  const snap = compileSnapshot(CONFIG, 1);
  const a = snap.hosts.find("www.test1.com")!.destination.pool;
  const b = snap.hosts.find("test1.com")!.destination.pool;
  assert(a === b && a === snap.backends.get("web"));
  // Alternating hosts still walks one 10:1 sequence: 10 of the first server then 1 of the second.
  const keys = Array.from({ length: 11 }, (_, i) => (i % 2 === 0 ? a : b).pick()!.port);
  assertEquals(keys, [10001, 10001, 10001, 10001, 10001, 10002, 10001, 10001, 10001, 10001, 10001]);
});

Deno.test("snapshot: servers listed as down are excluded from picks", () => {
  const snap = compileSnapshot(CONFIG, 2, [
    { backend: "web", server: "127.0.0.1:10001" },
    { backend: "api", server: "127.0.0.1:10001" }, // not a server of api: ignored
  ]);
  const web = snap.backends.get("web")!;
  assert(web.isDown("127.0.0.1:10001"));
  assertEquals(Array.from({ length: 5 }, () => web.pick()!.port), [
    10002,
    10002,
    10002,
    10002,
    10002,
  ]);
  assertEquals(snap.backends.get("api")!.pick()?.port, 10003);
});

Deno.test("snapshot: a backend without servers routes but gives no pick", () => {
  const snap = compileSnapshot(CONFIG, 1);
  const pool = snap.hosts.find("void.test")?.destination.pool;
  assert(pool !== undefined);
  assertEquals(pool.pick(), undefined);
});

Deno.test("snapshot: each compile gets fresh pools (health is not shared between snapshots)", () => {
  const first = compileSnapshot(CONFIG, 1);
  const second = compileSnapshot(CONFIG, 2);
  first.backends.get("web")!.setHealth("127.0.0.1:10001", false);
  assert(!second.backends.get("web")!.isDown("127.0.0.1:10001"));
});

Deno.test("snapshot: snapshots sharing counters walk one sequence per backend", () => {
  // Two isolates compile the same config with one shared counters array.
  const counters = new CounterSlots(true).place(CONFIG);
  const one = compileSnapshot(CONFIG, 1, [], counters).backends.get("web")!;
  const two = compileSnapshot(CONFIG, 1, [], counters).backends.get("web")!;
  const ports = Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? one : two).pick()!.port);
  // Together, one period and one more pick: the light server once, as for a single isolate.
  assertEquals(ports.filter((p) => p === 10002).length, 1);
  assertEquals(counters.counters[counters.slots[0]], 12); // web's cursor
  // Without shared cursors each walks its own sequence: the light server is picked by both.
  const three = compileSnapshot(CONFIG, 1).backends.get("web")!;
  const four = compileSnapshot(CONFIG, 1).backends.get("web")!;
  const own = Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? three : four).pick()!.port);
  assertEquals(own.filter((p) => p === 10002).length, 2);
});
