import { assertEquals } from "../../tests/_assert.ts";
import { CheckState } from "./state.ts";

const limits = { success: 2, fail: 3 };

Deno.test("state: starts up with empty counters", () => {
  const s = new CheckState();
  assertEquals(
    [s.state, s.passes, s.failures, s.lastCheck, s.lastError, s.lastChange],
    ["up", 0, 0, null, null, null],
  );
});

Deno.test("state: `fail` consecutive failures take it down, once", () => {
  const s = new CheckState();
  assertEquals(s.record(limits, false, 1, "connection refused"), null);
  assertEquals(s.record(limits, false, 2, "connection refused"), null);
  assertEquals(s.record(limits, false, 3, "connection refused"), "down");
  assertEquals([s.state, s.failures, s.lastChange, s.lastCheck], ["down", 3, 3, 3]);
  assertEquals(s.record(limits, false, 4, "status 500"), null);
  assertEquals([s.failures, s.lastError, s.lastErrorAt, s.lastChange], [4, "status 500", 4, 3]);
});

Deno.test("state: a pass resets the failure count", () => {
  const s = new CheckState();
  s.record(limits, false, 1, "x");
  s.record(limits, false, 2, "x");
  assertEquals(s.record(limits, true, 3), null);
  assertEquals([s.failures, s.passes], [0, 1]);
  s.record(limits, false, 4, "x");
  s.record(limits, false, 5, "x");
  assertEquals(s.state, "up");
  assertEquals(s.record(limits, false, 6, "x"), "down");
});

Deno.test("state: `success` consecutive passes bring it back; a failure resets passes", () => {
  const s = new CheckState();
  for (let t = 1; t <= 3; t++) s.record(limits, false, t, "x");
  assertEquals(s.record(limits, true, 4), null);
  assertEquals(s.record(limits, false, 5, "y"), null);
  assertEquals([s.passes, s.failures], [0, 1]);
  assertEquals(s.record(limits, true, 6), null);
  assertEquals(s.record(limits, true, 7), "up");
  assertEquals([s.state, s.passes, s.failures, s.lastChange, s.lastError], ["up", 2, 0, 7, "y"]);
  assertEquals(s.record(limits, true, 8), null);
  assertEquals(s.passes, 3);
});

Deno.test("state: thresholds of 1 flip on every change of outcome", () => {
  const s = new CheckState();
  const one = { success: 1, fail: 1 };
  assertEquals(s.record(one, true, 1), null);
  assertEquals(s.record(one, false, 2, "x"), "down");
  assertEquals(s.record(one, true, 3), "up");
});

Deno.test("state: clone copies everything and is independent", () => {
  const s = new CheckState();
  for (let t = 1; t <= 3; t++) s.record(limits, false, t, "x");
  const c = s.clone();
  assertEquals({ ...c }, { ...s });
  c.record(limits, true, 4);
  assertEquals([s.passes, c.passes], [0, 1]);
});
