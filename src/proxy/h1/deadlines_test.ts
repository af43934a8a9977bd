import { assertEquals } from "../../../tests/_assert.ts";
import { DeadlineQueue } from "./deadlines.ts";

Deno.test("deadlines fire in order, once, unless cancelled", async () => {
  const queue = new DeadlineQueue(20);
  const fired: string[] = [];
  const all = Promise.withResolvers<void>();
  queue.add(() => fired.push("a"));
  const b = queue.add(() => fired.push("b"));
  queue.add(() => {
    fired.push("c");
    all.resolve();
  });
  b.cancel();
  await all.promise;
  assertEquals(fired, ["a", "c"]);
  // A deadline added after the queue drained gets a timer of its own.
  const again = Promise.withResolvers<void>();
  queue.add(() => again.resolve());
  await again.promise;
  queue.close();
});

Deno.test("a deadline may tell an object (Expiring) instead of calling a function", async () => {
  const queue = new DeadlineQueue(10);
  const fired: string[] = [];
  const all = Promise.withResolvers<void>();
  const target = {
    name: "target",
    expired() {
      fired.push(this.name);
      all.resolve();
    },
  };
  queue.add({ expired: () => fired.push("cancelled") }).cancel();
  queue.add(target);
  await all.promise;
  assertEquals(fired, ["target"]);
  queue.close();
});

Deno.test("a closed queue fires nothing and holds no timer", () => {
  const queue = new DeadlineQueue(10);
  let fired = false;
  queue.add(() => fired = true);
  queue.close();
  queue.add(() => fired = true);
  assertEquals(fired, false);
});

Deno.test("a cancelled deadline leaves the queue at once", () => {
  const queue = new DeadlineQueue(60_000);
  const kept = queue.add(() => {});
  for (let i = 0; i < 100_000; i++) queue.add(() => {}).cancel();
  const middle = queue.add(() => {});
  const last = queue.add(() => {});
  assertEquals(queue.size, 3);
  middle.cancel();
  middle.cancel();
  assertEquals([queue.size, kept.live, middle.live, last.live], [2, true, false, true]);
  kept.cancel();
  last.cancel();
  assertEquals(queue.size, 0);
  queue.close();
});

Deno.test("deadlines added or cancelled by an expiring callback keep their order", async () => {
  const queue = new DeadlineQueue(5);
  const fired: string[] = [];
  const done = Promise.withResolvers<void>();
  queue.add(() => {
    fired.push("a");
    b.cancel();
    queue.add(() => {
      fired.push("d");
      done.resolve();
    });
  });
  const b = queue.add(() => fired.push("b"));
  queue.add(() => fired.push("c"));
  await done.promise;
  assertEquals(fired, ["a", "c", "d"]);
  assertEquals(queue.size, 0);
  queue.close();
});

Deno.test("a deadline never fires before its delay, whenever in a tick it was set", async () => {
  const queue = new DeadlineQueue(40);
  const early: number[] = [];
  const fired: Promise<void>[] = [];
  // Set at different points between the queue's ticks (every 5 ms here).
  for (let i = 0; i < 12; i++) {
    const set = performance.now();
    const done = Promise.withResolvers<void>();
    queue.add(() => {
      const waited = performance.now() - set;
      if (waited < 40) early.push(waited);
      done.resolve();
    });
    fired.push(done.promise);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  await Promise.all(fired);
  assertEquals(early, []);
  queue.close();
});
