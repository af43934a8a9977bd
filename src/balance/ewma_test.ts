import { assert, assertEquals } from "../../tests/_assert.ts";
import { DECAY_MS, EwmaSelector } from "./ewma.ts";
import { layoutCounters } from "./memory.ts";
import { UpstreamPool } from "./pool.ts";
import { NO_CONTEXT } from "./selector.ts";
import { upstreamOf } from "./upstream.ts";

const FAST = upstreamOf("127.0.0.1", 10001, 1);
const SLOW = upstreamOf("127.0.0.1", 10002, 1);
const OTHER = upstreamOf("127.0.0.1", 10003, 1);

function selector(servers = [FAST, SLOW]) {
  const memory = layoutCounters({ backends: [{ servers }] })[0];
  return new EwmaSelector({ servers, all: servers, memory });
}

Deno.test("ewma: the faster server wins once both were measured", () => {
  const s = selector();
  s.begin(SLOW);
  s.end(SLOW, 200, true);
  s.begin(FAST);
  s.end(FAST, 1, true);
  for (let i = 0; i < 20; i++) assertEquals(s.pick(NO_CONTEXT), FAST);
});

Deno.test("ewma: requests in flight raise a server's cost", () => {
  const s = selector();
  s.end(SLOW, 10, true);
  s.end(FAST, 1, true);
  for (let i = 0; i < 12; i++) s.begin(FAST); // 1 ms × 13 > 10 ms × 1
  assertEquals(s.pick(NO_CONTEXT), SLOW);
});

Deno.test("ewma: a peak is taken at once and decays with time", () => {
  const s = selector();
  const now = performance.now();
  s.end(FAST, 1, true);
  s.end(FAST, 300, true);
  assert(s.latency(FAST) >= 299, "peak");
  const later = s.latency(FAST, now + DECAY_MS);
  assert(later < 300 * 0.4 && later > 300 * 0.3, `decayed to ${later}`);
});

Deno.test("ewma: failures count as slow responses", () => {
  const s = selector();
  s.end(FAST, 0.5, false);
  assert(s.latency(FAST) > 999);
});

Deno.test("ewma: two random choices among the servers up, never one tried", () => {
  const pool = new UpstreamPool("e", [FAST, SLOW, OTHER], { balancer: "ewma" });
  pool.setHealth(OTHER.key, false);
  const seen = new Set(Array.from({ length: 50 }, () => pool.pick()!.key));
  assert(!seen.has(OTHER.key));
  for (let i = 0; i < 10; i++) assertEquals(pool.pick(undefined, [FAST]), SLOW);
  assertEquals(pool.pick(undefined, [FAST, SLOW]), undefined);
});
