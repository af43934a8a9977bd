import { assertEquals } from "../../tests/_assert.ts";
import { clientRequestId, saneRequestId } from "./request_id.ts";

Deno.test("a client id is kept when it is 1-128 visible ASCII characters", () => {
  assertEquals(saneRequestId("abc-123_XYZ.=/+"), true);
  assertEquals(saneRequestId("a".repeat(128)), true);
  assertEquals(saneRequestId("a".repeat(129)), false);
  assertEquals(saneRequestId(""), false);
  assertEquals(saneRequestId("a b"), false);
  assertEquals(saneRequestId("é"), false);
  assertEquals(clientRequestId(new Headers({ "x-trace": "t1" }), "x-trace"), "t1");
  assertEquals(clientRequestId(new Headers({ "x-trace": "t 1" }), "x-trace"), null);
  assertEquals(clientRequestId(new Headers(), "x-trace"), null);
});
