import { assertEquals } from "../../tests/_assert.ts";
import { compileSnapshot } from "../config/snapshot.ts";
import type { Config } from "../config/types.ts";
import { BACKEND_CODES, HEADER, OVERFLOW_KEY } from "./layout.ts";
import { StripeRecorder } from "./recorder.ts";
import { MetricsRegistry } from "./registry.ts";
import { StripeWriter } from "./stripe.ts";

function configOf(backends: Record<string, number[]>): Config {
  return {
    backends: Object.entries(backends).map(([name, ports]) => ({
      backend_name: name,
      servers: ports.map((port) => ({ addr: "127.0.0.1", port, weight: 1 })),
    })),
    hosts: Object.keys(backends).map((name) => ({ host: `${name}.test`, backend_name: name })),
  };
}

/** A registry with `isolates` recorders bound to `config`, as the workers would be. */
function setUp(config: Config, isolates: number, buckets = [0.01, 0.1, 1]) {
  const registry = new MetricsRegistry(buckets);
  const snapshot = compileSnapshot(config, 1);
  const recorders = Array.from({ length: isolates }, () => {
    const recorder = new StripeRecorder(new StripeWriter(registry.newStripe(), registry.layout));
    return recorder;
  });
  const ids = registry.assign(config);
  for (const r of recorders) r.bind(snapshot, config, ids);
  return { registry, snapshot, recorders };
}

Deno.test("counts from several isolates are summed per backend, method and code", () => {
  const config = configOf({ api: [9001, 9002] });
  const { registry, snapshot, recorders } = setUp(config, 2);
  const pool = snapshot.backends.get("api")!;
  recorders[0].request(pool, "GET", 200, 0.005);
  recorders[1].request(pool, "GET", 200, 0.05);
  recorders[1].request(pool, "BREW", 503, 5);
  recorders[0].request(undefined, "GET", 404, 0.001);
  const api = registry.backends[0];
  assertEquals(
    [...registry.backendCodes(api.id)].sort((x, y) => x[0] - y[0]),
    [[1200, 2], [10503, 1]],
  );
  assertEquals([...registry.backendCodes(0)], [[1404, 1]]);
  // Buckets 0.01, 0.1, 1, +Inf (non-cumulative), then the sum.
  const hist = registry.sumBackend(api.id, registry.layout.duration, new Float64Array(5));
  assertEquals([...hist.subarray(0, 4)], [1, 1, 0, 1]);
  assertEquals(Math.round(hist[4] * 1000), 5055);
});

Deno.test("upstream responses, errors and retries are counted per server", () => {
  const config = configOf({ api: [9001, 9002] });
  const { registry, snapshot, recorders } = setUp(config, 2);
  const pool = snapshot.backends.get("api")!;
  const [a, b] = pool.servers;
  recorders[0].upstreamResponse(pool, a, 200, 0.002);
  recorders[1].upstreamResponse(pool, a, 200, 0.002);
  recorders[1].upstreamError(pool, b, "connect");
  recorders[1].upstreamError(pool, b, "timeout");
  recorders[0].upstreamError(pool, b, "connect");
  recorders[0].retry(pool);
  const [sa, sb] = registry.backends[0].servers;
  assertEquals([...registry.serverCodes(sa.id)], [[200, 2]]);
  assertEquals([...registry.serverCodes(sb.id)], []);
  const l = registry.layout;
  assertEquals([...registry.sumServer(sb.id, l.serverErrors, new Float64Array(4))], [2, 1, 0, 0]);
  assertEquals(registry.sumBackend(registry.backends[0].id, l.retries, new Float64Array(1))[0], 1);
});

Deno.test("ids stay with names across configs, so counters continue", () => {
  const registry = new MetricsRegistry([1]);
  const recorder = new StripeRecorder(new StripeWriter(registry.newStripe(), registry.layout));
  const first = configOf({ a: [1], b: [2] });
  recorder.bind(compileSnapshot(first, 1), first, registry.assign(first));
  const a1 = registry.backends.find((x) => x.name === "a")!.id;
  // b removed, c added, a moved to the end: a keeps its id and its counts.
  const second = configOf({ c: [3], a: [1] });
  const snapshot = compileSnapshot(second, 2);
  recorder.bind(snapshot, second, registry.assign(second));
  recorder.request(snapshot.backends.get("a"), "GET", 200, 0.1);
  const a2 = registry.backends.find((x) => x.name === "a")!.id;
  assertEquals(a2, a1);
  assertEquals(registry.backends.map((x) => x.name), ["c", "a"]);
  assertEquals([...registry.backendCodes(a2)], [[1200, 1]]);
});

Deno.test("a backend's method/code table keeps counting past its size in one overflow entry", () => {
  const config = configOf({ api: [9001] });
  const { registry, snapshot, recorders } = setUp(config, 1);
  const pool = snapshot.backends.get("api")!;
  for (let code = 200; code < 200 + BACKEND_CODES + 5; code++) {
    recorders[0].request(pool, "GET", code, 0.001);
  }
  const codes = registry.backendCodes(registry.backends[0].id);
  assertEquals(codes.size, BACKEND_CODES);
  assertEquals(codes.get(OVERFLOW_KEY), 6);
  let total = 0;
  for (const n of codes.values()) total += n;
  assertEquals(total, BACKEND_CODES + 5);
});

Deno.test("gauges are summed, and a replacement isolate clears its stripe's gauges", () => {
  const config = configOf({ api: [9001] });
  const { registry, recorders } = setUp(config, 2);
  recorders[0].connection(0, 1);
  recorders[0].connection(0, 1);
  recorders[1].connection(0, 1);
  recorders[1].tunnel(1);
  assertEquals(registry.connections(0), 3);
  assertEquals(registry.header(HEADER.tunnels), 1);
  recorders[1].writer.resetGauges();
  assertEquals(registry.connections(0), 2);
  assertEquals(registry.header(HEADER.tunnels), 0);
});

Deno.test("a config with more backends grows the stripes; ids beyond them are ignored, not thrown", () => {
  const registry = new MetricsRegistry([1]);
  const writer = new StripeWriter(registry.newStripe(), registry.layout);
  // Not yet grown for id 5: nothing counted, nothing thrown.
  writer.request(5, 1, 200, 0.1);
  const big = configOf(
    Object.fromEntries(Array.from({ length: 2000 }, (_, i) => [`b${i}`, [i + 1]])),
  );
  const recorder = new StripeRecorder(writer);
  const snapshot = compileSnapshot(big, 1);
  recorder.bind(snapshot, big, registry.assign(big));
  recorder.request(snapshot.backends.get("b1999"), "PUT", 201, 0.1);
  const id = registry.backends[1999].id;
  assertEquals([...registry.backendCodes(id)], [[4201, 1]]);
});

Deno.test("a request that began before a config change still counts when it ends after it", () => {
  const registry = new MetricsRegistry([1]);
  const recorder = new StripeRecorder(new StripeWriter(registry.newStripe(), registry.layout));
  const first = configOf({ a: [1] });
  const before = compileSnapshot(first, 1);
  recorder.bind(before, first, registry.assign(first));
  const pool = before.backends.get("a")!;
  const second = configOf({ a: [1], b: [2] });
  recorder.bind(compileSnapshot(second, 2), second, registry.assign(second));
  // The old snapshot's pool object, as a request in flight holds it.
  recorder.upstreamResponse(pool, pool.servers[0], 200, 0.01);
  recorder.request(pool, "GET", 200, 0.01);
  const a = registry.backends.find((x) => x.name === "a")!;
  assertEquals([...registry.backendCodes(a.id)], [[1200, 1]]);
  assertEquals([...registry.serverCodes(a.servers[0].id)], [[200, 1]]);
});
