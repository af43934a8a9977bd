import { assertEquals } from "../../tests/_assert.ts";
import { cookieValue, isToken } from "./selector.ts";

Deno.test("cookieValue finds a cookie by exact name", () => {
  assertEquals(cookieValue("a=1; srv=x7; b=2", "srv"), "x7");
  assertEquals(cookieValue("srv=x7", "srv"), "x7");
  assertEquals(cookieValue("xsrv=1; srv=2", "srv"), "2");
  assertEquals(cookieValue('srv="q"', "srv"), "q");
  assertEquals(cookieValue("a=1, srv=3", "srv"), "3", "joined Cookie fields");
  assertEquals(cookieValue("a=1", "srv"), null);
  assertEquals(cookieValue("srv", "srv"), null);
  assertEquals(cookieValue(null, "srv"), null);
  assertEquals(cookieValue("srv=; a=1", "srv"), "");
});

Deno.test("isToken accepts RFC 9110 token characters only", () => {
  for (const ok of ["a", "X-User", "!#$%&'*+.^_`|~-09AZaz"]) assertEquals(isToken(ok), true, ok);
  for (const bad of ["", "a b", "a;b", "a=b", "é", "a\u0100", "(x)", '"q"']) {
    assertEquals(isToken(bad), false, bad);
  }
});
