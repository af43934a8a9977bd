import { assert, assertEquals } from "../../tests/_assert.ts";
import { UpstreamPool } from "./pool.ts";
import { type Upstream, upstreamOf } from "./upstream.ts";

const A = upstreamOf("127.0.0.1", 10001, 3);
const B = upstreamOf("127.0.0.1", 10002, 2);
const C = upstreamOf("127.0.0.1", 10003, 1);

function picks(pool: UpstreamPool, n: number): string[] {
  return Array.from({ length: n }, () => pool.pick()?.key ?? "none");
}

function count(keys: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of keys) out[k] = (out[k] ?? 0) + 1;
  return out;
}

Deno.test("pool: picks follow the weights over all servers up", () => {
  const pool = new UpstreamPool("b", [A, B, C]);
  assertEquals(count(picks(pool, 60)), { [A.key]: 30, [B.key]: 20, [C.key]: 10 });
  assertEquals(pool.upCount, 3);
});

Deno.test("pool: a down server is skipped, the others keep their weights", () => {
  const pool = new UpstreamPool("b", [A, B, C]);
  pool.setHealth(A.key, false);
  assert(pool.isDown(A.key));
  assertEquals(pool.upCount, 2);
  assertEquals(count(picks(pool, 30)), { [B.key]: 20, [C.key]: 10 });
  pool.setHealth(A.key, true);
  assert(!pool.isDown(A.key));
  assertEquals(count(picks(pool, 60)), { [A.key]: 30, [B.key]: 20, [C.key]: 10 });
});

Deno.test("pool: servers down at construction are skipped; all down gives no pick", () => {
  const pool = new UpstreamPool("b", [A, B], { down: [A.key, "10.0.0.9:1"] });
  assertEquals(count(picks(pool, 4)), { [B.key]: 4 });
  pool.setHealth(B.key, false);
  assertEquals(pool.upCount, 0);
  assertEquals(pool.pick(), undefined);
  assertEquals(pool.pick(undefined, []), undefined);
  assertEquals(new UpstreamPool("empty", []).pick(), undefined);
});

Deno.test("pool: setHealth is idempotent and ignores unknown keys", () => {
  const pool = new UpstreamPool("b", [A, B]);
  pool.setHealth("127.0.0.1:9", false);
  assert(!pool.isDown("127.0.0.1:9"));
  assertEquals(pool.upCount, 2);
  pool.setHealth(B.key, false);
  pool.setHealth(B.key, false);
  pool.setHealth(A.key, true);
  assertEquals(pool.upCount, 1);
  assertEquals(count(picks(pool, 3)), { [A.key]: 3 });
});

Deno.test("pool: a retry pick never returns a tried server, undefined once all were tried", () => {
  const pool = new UpstreamPool("b", [A, B, C]);
  for (let i = 0; i < 20; i++) {
    const tried: Upstream[] = [pool.pick()!];
    const second = pool.pick(undefined, tried);
    assert(second !== undefined && !tried.includes(second));
    tried.push(second);
    const third = pool.pick(undefined, tried);
    assert(third !== undefined && !tried.includes(third));
    tried.push(third);
    assertEquals(pool.pick(undefined, tried), undefined);
  }
});

Deno.test("pool: a retry pick finds the light server behind a heavy one (weights 10:1)", () => {
  const heavy = upstreamOf("127.0.0.1", 10001, 10);
  const light = upstreamOf("127.0.0.1", 10002, 1);
  const pool = new UpstreamPool("b", [heavy, light]);
  // Whatever the position in the schedule, a retry after the heavy server must go to the other.
  for (let i = 0; i < 11; i++) {
    assertEquals(pool.pick(undefined, [heavy])?.key, light.key);
    pool.pick();
  }
});

Deno.test("pool: a retry pick skips servers that are down", () => {
  const pool = new UpstreamPool("b", [A, B, C]);
  pool.setHealth(B.key, false);
  for (let i = 0; i < 6; i++) assertEquals(pool.pick(undefined, [A])?.key, C.key);
});
