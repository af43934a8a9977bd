import { assertEquals } from "../../tests/_assert.ts";
import { isLoopback, isWildcard, reachesListener } from "./address.ts";

Deno.test("address: loopback and wildcard names", () => {
  for (const h of ["localhost", "LOCALHOST", "127.0.0.1", "127.1.2.3", "::1", "[::1]"]) {
    assertEquals(isLoopback(h), true, h);
  }
  for (const h of ["0.0.0.0", "10.0.0.1", "::", "example.com", "128.0.0.1"]) {
    assertEquals(isLoopback(h), false, h);
  }
  assertEquals(["0.0.0.0", "::", "[::]"].map(isWildcard), [true, true, true]);
  assertEquals(isWildcard("127.0.0.1"), false);
});

Deno.test("address: which server addresses reach a listener", () => {
  const local = ["127.0.0.1", "10.1.2.3", "::1"];
  const cases: Array<[string, string, boolean]> = [
    ["127.0.0.1", "127.0.0.1", true],
    ["localhost", "127.0.0.1", true],
    ["::1", "127.0.0.1", true], // treated as one loopback address
    ["0.0.0.0", "127.0.0.1", true],
    ["10.1.2.3", "127.0.0.1", false],
    ["10.1.2.3", "0.0.0.0", true],
    ["localhost", "::", true],
    ["10.9.9.9", "0.0.0.0", false],
    ["10.1.2.3", "10.1.2.3", true],
    ["0.0.0.0", "10.1.2.3", true],
    ["127.0.0.1", "10.1.2.3", false],
    ["app.internal", "0.0.0.0", false], // names are not resolved
  ];
  for (const [addr, listening, expected] of cases) {
    assertEquals(reachesListener(addr, listening, local), expected, `${addr} → ${listening}`);
  }
});
