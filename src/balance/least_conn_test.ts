import { assert, assertEquals } from "../../tests/_assert.ts";
import { CounterSlots, layoutCounters } from "./memory.ts";
import { UpstreamPool } from "./pool.ts";
import { type Upstream, upstreamOf } from "./upstream.ts";

const A = upstreamOf("127.0.0.1", 10001, 1);
const B = upstreamOf("127.0.0.1", 10002, 1);
const C = upstreamOf("127.0.0.1", 10003, 1);

function start(pool: UpstreamPool): Upstream {
  const server = pool.pick()!;
  pool.begin(server);
  return server;
}

Deno.test("least_conn: the server with the fewest requests in flight is picked", () => {
  const pool = new UpstreamPool("lc", [A, B, C], { balancer: "least_conn" });
  const first = [start(pool), start(pool), start(pool)];
  assertEquals(new Set(first).size, 3, "one each while all are equal");
  pool.end(B, 5, true);
  assertEquals(pool.pick(), B);
  assertEquals(pool.pick(), B, "picking alone does not count");
  pool.begin(B);
  pool.begin(B);
  pool.end(A, 5, true);
  assertEquals(pool.pick(), A);
});

Deno.test("least_conn: ties go round-robin, following the weights", () => {
  const heavy = upstreamOf("127.0.0.1", 10001, 2);
  const pool = new UpstreamPool("lc", [heavy, B], { balancer: "least_conn" });
  const order = Array.from({ length: 6 }, () => pool.pick()!.port);
  assertEquals(order, [10001, 10002, 10001, 10001, 10002, 10001]);
});

Deno.test("least_conn: in flight relative to weight (2 on weight 2 ties 1 on weight 1)", () => {
  const heavy = upstreamOf("127.0.0.1", 10001, 2);
  const pool = new UpstreamPool("lc", [heavy, B], { balancer: "least_conn" });
  pool.begin(heavy);
  pool.begin(heavy);
  pool.begin(B);
  pool.begin(B); // B: 2/1 > heavy: 2/2
  for (let i = 0; i < 4; i++) assertEquals(pool.pick(), heavy);
});

Deno.test("least_conn: isolates sharing counters see each other's requests", () => {
  const config = { backends: [{ backend_name: "lc", servers: [A, B] }] };
  const counters = new CounterSlots(true).place(config);
  const one = new UpstreamPool("lc", [A, B], {
    balancer: "least_conn",
    memory: layoutCounters(config, counters)[0],
  });
  const two = new UpstreamPool("lc", [A, B], {
    balancer: "least_conn",
    memory: layoutCounters(config, counters)[0],
  });
  one.begin(A);
  for (let i = 0; i < 3; i++) assertEquals(two.pick(), B);
  one.end(A, 1, true);
  two.begin(B);
  assertEquals(one.pick(), A);
});

Deno.test("least_conn: down servers are skipped; retries never repeat a server", () => {
  const pool = new UpstreamPool("lc", [A, B, C], { balancer: "least_conn" });
  pool.setHealth(A.key, false);
  for (let i = 0; i < 6; i++) assert(pool.pick() !== A);
  // An exchange begun before the server went down still ends on its counter.
  pool.begin(B);
  pool.setHealth(B.key, false);
  pool.end(B, 1, true);
  pool.setHealth(B.key, true);
  pool.begin(C);
  assertEquals(pool.pick(), B);
  assertEquals(pool.pick(undefined, [B]), C);
  assertEquals(pool.pick(undefined, [B, C]), undefined);
});
