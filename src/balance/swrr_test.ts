import { assertEquals } from "../../tests/_assert.ts";
import { MAX_SCHEDULE, SmoothWeightedRoundRobin, smoothWeightedSchedule } from "./swrr.ts";

const names = (rr: SmoothWeightedRoundRobin<{ name: string; weight: number }>, n: number) =>
  Array.from({ length: n }, () => rr.next()!.name).join("");

Deno.test("weights 10 and 1 give nginx's spread-out 10:1 sequence", () => {
  const rr = new SmoothWeightedRoundRobin([{ name: "A", weight: 10 }, { name: "B", weight: 1 }]);
  assertEquals(names(rr, 11), "AAAAABAAAAA");
  assertEquals(names(rr, 11), "AAAAABAAAAA");
});

Deno.test("nginx's documented example: weights 5, 1, 1 give a a b a c a a", () => {
  const rr = new SmoothWeightedRoundRobin([
    { name: "a", weight: 5 },
    { name: "b", weight: 1 },
    { name: "c", weight: 1 },
  ]);
  assertEquals(names(rr, 7), "aabacaa");
});

Deno.test("equal weights alternate in order", () => {
  const rr = new SmoothWeightedRoundRobin([
    { name: "x", weight: 3 },
    { name: "y", weight: 3 },
    { name: "z", weight: 3 },
  ]);
  assertEquals(names(rr, 6), "xyzxyz");
});

Deno.test("the precomputed schedule equals the live algorithm past the cap", () => {
  // Weights whose period exceeds MAX_SCHEDULE run the live algorithm; both must agree.
  const big = [{ name: "A", weight: MAX_SCHEDULE }, { name: "B", weight: 7 }];
  const live = new SmoothWeightedRoundRobin(big);
  const counts = { A: 0, B: 0 } as Record<string, number>;
  for (let i = 0; i < MAX_SCHEDULE + 7; i++) counts[live.next()!.name]++;
  assertEquals(counts, { A: MAX_SCHEDULE, B: 7 });
  assertEquals(Array.from(smoothWeightedSchedule([2, 1])), [0, 1, 0]);
});

Deno.test("no items gives undefined; one item is always picked", () => {
  assertEquals(new SmoothWeightedRoundRobin([]).next(), undefined);
  const one = new SmoothWeightedRoundRobin([{ name: "solo", weight: 4 }]);
  assertEquals(names(one, 3), "solosolosolo");
});

Deno.test("isolates sharing a cursor walk one sequence between them", () => {
  const cursor = { array: new Int32Array(new SharedArrayBuffer(4)), index: 0 };
  const items = [{ name: "a", weight: 10 }, { name: "b", weight: 1 }];
  const first = new SmoothWeightedRoundRobin(items, cursor);
  const second = new SmoothWeightedRoundRobin(items, cursor);
  let order = "";
  for (let i = 0; i < 22; i++) order += (i % 3 === 0 ? second : first).next()!.name;
  assertEquals(order, "aaaaabaaaaa".repeat(2));
});
