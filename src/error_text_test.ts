import { assertEquals } from "../tests/_assert.ts";
import { errorText } from "./error_text.ts";

Deno.test("errorText gives the message, the name of a silent error, an aggregate's first cause", () => {
  assertEquals(errorText(new Error("disk full")), "disk full");
  assertEquals(errorText(new TypeError()), "TypeError");
  assertEquals(
    errorText(new AggregateError([new Error("connect ECONNREFUSED ::1:6379"), new Error("x")])),
    "connect ECONNREFUSED ::1:6379",
  );
  assertEquals(errorText(new AggregateError([], "none")), "none");
  assertEquals(errorText("plain"), "plain");
});
