import { assertEquals } from "../../tests/_assert.ts";
import { normalizeHost } from "./host.ts";

Deno.test("normalizeHost lower-cases and drops port and trailing dot", () => {
  assertEquals(normalizeHost("www.test1.com"), "www.test1.com");
  assertEquals(normalizeHost("WWW.Test1.COM"), "www.test1.com");
  assertEquals(normalizeHost("www.test1.com:8080"), "www.test1.com");
  assertEquals(normalizeHost("www.test1.com."), "www.test1.com");
  assertEquals(normalizeHost("www.test1.com.:80"), "www.test1.com");
  assertEquals(normalizeHost("127.0.0.1:8080"), "127.0.0.1");
});

Deno.test("normalizeHost keeps IPv6 literals whole", () => {
  assertEquals(normalizeHost("[::1]:8080"), "[::1]");
  assertEquals(normalizeHost("[::1]"), "[::1]");
});

Deno.test("normalizeHost of an empty value is empty", () => {
  assertEquals(normalizeHost(""), "");
});
