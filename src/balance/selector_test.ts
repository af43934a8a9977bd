import { assertEquals } from "../../tests/_assert.ts";
import { cookieValue } from "./selector.ts";

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
