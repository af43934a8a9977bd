import { assert, assertEquals } from "../../tests/_assert.ts";
import { CounterSlots, layoutCounters } from "./memory.ts";

const server = (port: number) => ({ addr: "127.0.0.1", port });
const config = (...backends: [string, number[]][]) => ({
  backends: backends.map(([backend_name, ports]) => ({ backend_name, servers: ports.map(server) })),
});

Deno.test("counters: kept servers keep their slot across configs, new ones start at 0", () => {
  const places = new CounterSlots(true);
  const first = layoutCounters(config(["web", [1, 2]]), places.place(config(["web", [1, 2]])));
  Atomics.add(first[0].counters, first[0].inflight[1], 3); // three requests in flight to :2
  // Server 1 leaves, 3 joins, another backend comes first: :2 of web keeps its count.
  const next = config(["api", [2]], ["web", [3, 2]]);
  const [api, web] = layoutCounters(next, places.place(next));
  assertEquals(Atomics.load(web.counters, web.inflight[1]), 3);
  assertEquals(Atomics.load(web.counters, web.inflight[0]), 0);
  assertEquals(Atomics.load(api.counters, api.inflight[0]), 0, "per backend, not per address");
  assert(web.counters.buffer instanceof SharedArrayBuffer);
});

Deno.test("counters: a full array is replaced by a larger one with the kept values", () => {
  const places = new CounterSlots(false);
  let layout = places.place(config(["web", [1]]));
  let [web] = layoutCounters(config(["web", [1]]), layout);
  Atomics.add(web.counters, web.inflight[0], 2);
  // Churn: a new server each time, so slots run out and the array is compacted.
  for (let port = 100; port < 300; port++) {
    const next = config(["web", [1, port]]);
    layout = places.place(next);
    [web] = layoutCounters(next, layout);
    assertEquals(Atomics.load(web.counters, web.inflight[0]), 2, `after ${port}`);
    assertEquals(Atomics.load(web.counters, web.inflight[1]), 0);
    Atomics.add(web.counters, web.inflight[1], 1);
  }
  assert(layout.counters.length < 200, `compacted: ${layout.counters.length}`);
});

Deno.test("counters: without a layout each backend gets local counters", () => {
  const [a, b] = layoutCounters(config(["a", [1, 2]], ["b", [3]]));
  assertEquals([a.cursor, ...a.inflight, b.cursor, ...b.inflight], [0, 1, 2, 3, 4]);
  assertEquals(a.counters, b.counters);
});
