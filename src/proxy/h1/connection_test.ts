import { assert, assertEquals } from "../../../tests/_assert.ts";
import { bytesOf, Parts } from "./_parts.ts";
import { PARKED_BUFFER, Wire } from "./connection.ts";

const text = (w: Wire) => new TextDecoder().decode(w.buf.subarray(w.start, w.end));

Deno.test("Wire.park: the read between requests uses a small buffer, the next one a big one", async () => {
  const head = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  const long = "x".repeat(3 * PARKED_BUFFER);
  const wire = new Wire(new Parts([bytesOf(head), bytesOf(long), bytesOf("tail")]));
  assert(wire.buf.length > PARKED_BUFFER);
  wire.park();
  assertEquals(wire.buf.length, PARKED_BUFFER, "parked: small buffer");
  assert(await wire.fill());
  assertEquals(text(wire), head);
  wire.start = wire.end;
  // Not parked again: a body (or anything after the parked read) gets a big buffer.
  assert(await wire.fill());
  assert(wire.buf.length > PARKED_BUFFER);
  assertEquals(text(wire), long);
});

Deno.test("Wire.park: bytes read into the small buffer move to the big one when more are needed", async () => {
  const wire = new Wire(new Parts([bytesOf("a".repeat(64)), bytesOf("bc")]), 64);
  wire.park(); // a small wire starts parked
  assertEquals(wire.buf.length, 64);
  assert(await wire.fill());
  wire.start += 10;
  assert(await wire.fill());
  assert(wire.buf.length > PARKED_BUFFER);
  assertEquals(text(wire), "a".repeat(54) + "bc");
});

Deno.test("Wire.park does nothing with bytes buffered or a read pending", async () => {
  const wire = new Wire(new Parts([bytesOf("abc"), bytesOf("def")]));
  assert(await wire.fill());
  wire.park();
  assertEquals([wire.buf.length > PARKED_BUFFER, text(wire)], [true, "abc"]);
  wire.start = wire.end;
  const pending = wire.prefetch();
  wire.park(); // the pending read owns the big buffer
  assert(wire.buf.length > PARKED_BUFFER);
  assert(await pending);
  assertEquals(text(wire), "def");
});
