import { assert, assertEquals } from "../../../tests/_assert.ts";
import { SLAB_BYTES, SlabPool } from "./slabs.ts";

/** Whether `f` throws a `RangeError`. */
function throwsRange(f: () => unknown): boolean {
  try {
    f();
  } catch (err) {
    return err instanceof RangeError;
  }
  return false;
}

Deno.test("SlabPool: buffers are disjoint views of shared slabs, handed out again once given back", () => {
  const pool = new SlabPool(128);
  const perSlab = SLAB_BYTES / 128;
  const bufs = Array.from({ length: perSlab + 1 }, () => pool.take());
  assertEquals(pool.slabs, 2);
  assert(bufs.every((b) => b.length === 128));
  assert(bufs[0].buffer === bufs[perSlab - 1].buffer && bufs[0].buffer !== bufs[perSlab].buffer);
  // Disjoint: each holds what was written to it.
  bufs.forEach((b, i) => b.fill(i % 256));
  assert(bufs.every((b, i) => b.every((x) => x === i % 256)));
  assertEquals(pool.out, perSlab + 1);
  pool.give(bufs[3]);
  assertEquals(pool.out, perSlab);
  assert(pool.take() === bufs[3]);
});

Deno.test("SlabPool: a slab whose buffers all came back is dropped, but the last one", () => {
  const pool = new SlabPool(1024);
  const perSlab = SLAB_BYTES / 1024;
  const bufs = Array.from({ length: 3 * perSlab }, () => pool.take());
  assertEquals(pool.slabs, 3);
  for (const b of bufs.slice(0, perSlab)) pool.give(b);
  assertEquals(pool.slabs, 2);
  for (const b of bufs.slice(perSlab)) pool.give(b);
  assertEquals(pool.slabs, 1);
  // Full slabs open again when a buffer comes back; new ones are made only when none has room.
  const again = Array.from({ length: perSlab }, () => pool.take());
  assertEquals(pool.slabs, 1);
  pool.give(again[0]);
  pool.take();
  pool.take();
  assertEquals(pool.slabs, 2);
});

Deno.test("SlabPool refuses a buffer it did not hand out, and sizes that do not divide a slab", () => {
  const pool = new SlabPool(256);
  assert(throwsRange(() => pool.give(new Uint8Array(256))));
  assert(throwsRange(() => pool.give(new SlabPool(128).take())));
  assert(throwsRange(() => new SlabPool(100)));
});
