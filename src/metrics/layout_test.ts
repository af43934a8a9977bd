import { assertEquals } from "../../tests/_assert.ts";
import { ERROR_KINDS, errorKindIndex, methodIndex, METHODS, parseBuckets } from "./layout.ts";

Deno.test("methods fold to the standard ones plus OTHER", () => {
  assertEquals(METHODS[methodIndex("GET")], "GET");
  assertEquals(METHODS[methodIndex("PATCH")], "PATCH");
  assertEquals(METHODS[methodIndex("get")], "OTHER");
  assertEquals(METHODS[methodIndex("PROPFIND")], "OTHER");
  // The switch (fast) and the label list are two spellings of one order: they must agree.
  for (const m of METHODS.slice(1, -1)) assertEquals(METHODS[methodIndex(m)], m);
});

Deno.test("error kinds map to their slots; unknown kinds count as broken", () => {
  assertEquals(["connect", "timeout", "broken", "malformed", "weird"].map(errorKindIndex), [
    0,
    1,
    2,
    3,
    2,
  ]);
  ERROR_KINDS.forEach((kind, i) => assertEquals(errorKindIndex(kind), i, kind));
});

Deno.test("--metrics-buckets takes increasing positive seconds and says what is wrong", () => {
  assertEquals(parseBuckets("0.005, 0.05,0.5,5"), [0.005, 0.05, 0.5, 5]);
  assertEquals(parseBuckets("1,0.5"), "bucket bounds must increase (0.5 after 1)");
  assertEquals(parseBuckets("0,1"), '"0" is not a positive number of seconds');
  assertEquals(parseBuckets("a"), '"a" is not a positive number of seconds');
  assertEquals(parseBuckets(""), "give at least one bucket bound");
});
