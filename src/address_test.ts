import { assertEquals } from "../tests/_assert.ts";
import { bracketHost, formatHostPort } from "./address.ts";

Deno.test("address: host:port with IPv6 in brackets, never twice", () => {
  assertEquals(formatHostPort("::1", 9001), "[::1]:9001");
  assertEquals(formatHostPort("[::1]", 9001), "[::1]:9001");
  assertEquals(formatHostPort("127.0.0.1", 80), "127.0.0.1:80");
  assertEquals(formatHostPort("a.test", 443), "a.test:443");
  assertEquals(bracketHost("::1"), "[::1]");
  assertEquals(bracketHost("10.0.0.1"), "10.0.0.1");
});
