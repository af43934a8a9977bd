/**
 * The real proxy worker, plus one way to kill it for tests: the first worker to receive a
 * health message removes the file named by `DYNLB_TEST_CRASH_FLAG` and dies of an uncaught
 * error, as a worker with a bug would.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import "../src/proxy/worker.ts";

const flag = Deno.env.get("DYNLB_TEST_CRASH_FLAG");

self.addEventListener("message", (event: MessageEvent<{ type?: string }>) => {
  if (event.data?.type !== "health" || flag === undefined) return;
  try {
    Deno.removeSync(flag);
  } catch {
    return; // another worker took it
  }
  setTimeout(() => {
    throw new Error("worker crash for the test");
  });
});
