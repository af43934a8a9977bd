import { assert, assertEquals } from "../../../tests/_assert.ts";
import { bytesOf, Parts } from "./_parts.ts";
import {
  PARKED_BUFFER,
  parkedBuffersOut,
  parkedSize,
  type ReadListener,
  Wire,
} from "./connection.ts";

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
  const wire = new Wire(new Parts([bytesOf("a".repeat(128)), bytesOf("bc")]), 0);
  wire.park(60);
  assertEquals(wire.buf.length, 128);
  assert(await wire.fill());
  wire.start += 10;
  assert(await wire.fill());
  assert(wire.buf.length > PARKED_BUFFER);
  assertEquals(text(wire), "a".repeat(118) + "bc");
});

Deno.test("parkedSize: room for a quarter more than expected, powers of two from 128 B to PARKED_BUFFER", () => {
  assertEquals(
    [0, 60, 103, 104, 300, 800, 819, 5000].map(parkedSize),
    [128, 128, 128, 256, 512, 1024, 1024, PARKED_BUFFER],
  );
});

Deno.test("Wire.park(expect): a head as long as expected arrives in one read, a longer one in two", async () => {
  // A keep-alive client's heads: the parked buffer is sized by what the connection sent so far.
  const head = `GET /${"p".repeat(250)} HTTP/1.1\r\nHost: a\r\n\r\n`; // 275 bytes
  const reads = { n: 0 };
  const source = new Parts([bytesOf(head), bytesOf(head + "x".repeat(600))]);
  const counting = { read: (p: Uint8Array) => (reads.n++, source.read(p)) };
  const wire = new Wire(counting, PARKED_BUFFER);
  wire.park(head.length);
  assertEquals(wire.buf.length, 512);
  assert(await wire.fill());
  assertEquals([text(wire), reads.n], [head, 1]);
  wire.start = wire.end;
  // The same head again, with 600 bytes more: one more read, to a big buffer.
  wire.park(head.length);
  assertEquals(wire.buf.length, 512);
  assert(await wire.fill());
  assertEquals(wire.buffered, 512);
  assert(await wire.fill());
  assertEquals([text(wire), reads.n], [head + "x".repeat(600), 3]);
  // Parked for more: the buffer grows back to its largest.
  wire.start = wire.end;
  wire.park(5000);
  assertEquals(wire.buf.length, PARKED_BUFFER);
});

/** Records what a wait was told. */
class Told implements ReadListener {
  readonly events: string[] = [];
  readEnded(more: boolean): void {
    this.events.push(more ? "bytes" : "end");
  }
  readFailed(err: unknown): void {
    this.events.push(`failed: ${(err as Error).message}`);
  }
}

/** Lets the promise jobs queued so far run. */
const settled = () => new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("Wire.wait tells its listener of bytes, of the end and of a failed read", async () => {
  const wire = new Wire(new Parts([bytesOf("abc")]));
  const told = new Told();
  wire.wait(told);
  await settled();
  assertEquals([told.events, text(wire)], [["bytes"], "abc"]);
  wire.wait(told);
  await settled();
  assertEquals(told.events, ["bytes", "end"]);
  const failing = new Wire({ read: () => Promise.reject(new Error("reset")) });
  failing.wait(told);
  await settled();
  assertEquals(told.events, ["bytes", "end", "failed: reset"]);
  const throwing = new Wire({
    read: () => {
      throw new Error("closed");
    },
  });
  throwing.wait(told);
  await settled();
  assertEquals(told.events.at(-1), "failed: closed");
});

Deno.test("Wire.wait: a wait on a pending read changes only who is told; fill takes it over", async () => {
  const gate = Promise.withResolvers<void>();
  const parts = new Parts([bytesOf("abc"), bytesOf("def")]);
  const wire = new Wire({ read: (p) => gate.promise.then(() => parts.read(p)) });
  const first = new Told();
  const second = new Told();
  wire.wait(first);
  wire.wait(second); // no second read
  gate.resolve();
  await settled();
  assertEquals([first.events, second.events, text(wire)], [[], ["bytes"], "abc"]);
  wire.wait(second);
  // A fill takes the waited read over: its promise resolves, the listener hears nothing.
  assert(await wire.fill());
  await settled();
  assertEquals([second.events, text(wire)], [["bytes"], "abcdef"]);
  // A failed read taken over by fill rejects its promise.
  const failing = new Wire({ read: () => Promise.reject(new Error("reset")) });
  failing.wait(second);
  const err = await failing.fill().then(() => null, (e: Error) => e.message);
  assertEquals([err, second.events], ["reset", ["bytes"]]);
});

Deno.test("Wire.wait after a prefetch tells of the prefetched read, ended or not", async () => {
  const wire = new Wire(new Parts([bytesOf("abc")]));
  const told = new Told();
  await wire.prefetch();
  wire.wait(told); // the prefetch's read has ended already
  await settled();
  assertEquals([told.events, text(wire)], [["bytes"], "abc"]);
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

Deno.test("Wire.release gives the parked buffer back, after the read in flight; later reads fail", async () => {
  const before = parkedBuffersOut();
  const idle = new Wire(new Parts([bytesOf("abc")]), 0);
  idle.park(60);
  assertEquals(parkedBuffersOut(), before + 1);
  idle.release();
  idle.release(); // idempotent
  assertEquals([parkedBuffersOut(), idle.buffered, idle.buf.length], [before, 0, 0]);
  // Released with a read in flight: the buffer stays taken until that read ends, and what the
  // read brought is not the wire's (nothing buffered, seen as the end).
  const gate = Promise.withResolvers<void>();
  const parts = new Parts([bytesOf("late bytes")]);
  const reading = new Wire({ read: (p) => gate.promise.then(() => parts.read(p)) }, 0);
  reading.park(60);
  const told = new Told();
  reading.wait(told);
  reading.release();
  assertEquals(parkedBuffersOut(), before + 1);
  gate.resolve();
  await settled();
  assertEquals([parkedBuffersOut(), reading.buffered, told.events], [before, 0, ["end"]]);
  // Every read after release fails, waited or not.
  reading.wait(told);
  await settled();
  assertEquals(told.events.at(-1), "failed: the connection was released");
  const err = await reading.fill().then(() => null, (e: Error) => e.name);
  assertEquals(err, "BadResource");
  reading.park(60); // no buffer taken by a released wire
  assertEquals(parkedBuffersOut(), before);
});
