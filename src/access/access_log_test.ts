import { assert, assertEquals } from "../../tests/_assert.ts";
import { setLogLevel } from "../log.ts";
import { AccessLog, type LogSink } from "./access_log.ts";

setLogLevel("error");

Deno.test("lines are batched into few writes, in order, and all reach the file", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/access.log`;
  let writes = 0;
  const log = await AccessLog.open(path, {
    open: async (p) => {
      const file = await Deno.open(p, { append: true, create: true });
      return {
        write: (b) => {
          writes++;
          return file.write(b);
        },
        close: () => file.close(),
      };
    },
  });
  for (let i = 0; i < 1000; i++) log.write(`line ${i}\n`);
  await log.close();
  const lines = (await Deno.readTextFile(path)).trimEnd().split("\n");
  assertEquals(lines.length, 1000);
  assertEquals(lines[999], "line 999");
  assert(writes <= 2, `${writes} writes for 1000 lines`);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("a full disk drops and counts lines, and the writer keeps going", async () => {
  let dropped = 0;
  // /dev/full: every write fails with ENOSPC, as on a full disk.
  const log = await AccessLog.open("/dev/full", { onDropped: (n) => dropped += n, flushMs: 1 });
  for (let i = 0; i < 10; i++) log.write(`line ${i}\n`);
  await log.close();
  assertEquals(dropped, 10);
});

Deno.test("a slow disk makes lines beyond the pending limit drop, not pile up", async () => {
  let dropped = 0;
  let release: (() => void) | undefined;
  // The first write hangs until released; later ones finish at once.
  const stuck: LogSink = {
    write: (b) =>
      release === undefined
        ? new Promise((resolve) => release = () => resolve(b.length))
        : Promise.resolve(b.length),
    close: () => {},
  };
  const log = await AccessLog.open("stuck", {
    open: () => Promise.resolve(stuck),
    onDropped: (n) => dropped += n,
    maxPendingBytes: 100,
    flushMs: 1,
  });
  log.write("x".repeat(50) + "\n");
  // Wait for the first write to start (and hang).
  while (release === undefined) await new Promise((r) => setTimeout(r, 1));
  for (let i = 0; i < 10; i++) log.write("y".repeat(30) + "\n");
  assertEquals(dropped, 7); // 3 of 31 characters fit in 100
  release();
  await log.close();
});

Deno.test("reopen writes to a new file at the same path after the old one was moved", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/access.log`;
  const log = await AccessLog.open(path, { flushMs: 1 });
  log.write("before\n");
  // Renamed once the line is on disk (as logrotate moves a file that was written).
  while (await Deno.readTextFile(path) !== "before\n") await new Promise((r) => setTimeout(r, 1));
  await Deno.rename(path, `${path}.1`);
  await log.reopen();
  log.write("after\n");
  await log.close();
  assertEquals(await Deno.readTextFile(`${path}.1`), "before\n");
  assertEquals(await Deno.readTextFile(path), "after\n");
  await Deno.remove(dir, { recursive: true });
});
