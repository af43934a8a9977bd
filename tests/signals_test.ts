/**
 * Stopping: one SIGTERM or SIGINT drains, however many processes relay it (the README's
 * `./scripts/start` runs `deno task start`, whose runner passes signals on); only a second signal
 * sent deliberately later stops at once.
 */
import { assert, assertEquals } from "./_assert.ts";
import { type Backend, configFile, configOf, startBackend } from "./_backend.ts";
import { type Dynlb, get, startDynlb } from "./_dynlb.ts";

const START = new URL("../scripts/start", import.meta.url).pathname;

/** A backend that holds each request until released. */
async function slowBackend(): Promise<
  { backend: Backend; arrived: Promise<void>; release: () => void }
> {
  const arrived = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const backend = await startBackend("slow", async () => {
    arrived.resolve();
    await release.promise;
    return new Response("finished");
  });
  return { backend, arrived: arrived.promise, release: () => release.resolve() };
}

/** Kills what is left of a process group (after a failed test). */
function killGroup(lb: Dynlb): void {
  try {
    Deno.kill(-lb.process.pid, "SIGKILL");
  } catch { /* gone */ }
}

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`./scripts/start: ${signal} to the process group drains a request in flight, exit 0`, async () => {
    const slow = await slowBackend();
    await using _backend = slow.backend;
    const path = await configFile(configOf({ "slow.test": [{ port: slow.backend.port }] }));
    await using lb = await startDynlb(["--config-file", path, "--workers", "1"], {
      command: [START],
      detached: true,
    });
    try {
      const inFlight = get(lb, "slow.test");
      await slow.arrived;
      // What systemd, `docker stop`, `timeout` and Ctrl-C in a terminal do: the whole group.
      Deno.kill(-lb.process.pid, signal);
      await lb.waitForLog("shutting down");
      slow.release();
      const response = await inFlight;
      assertEquals([response.status, response.body], [200, "finished"]);
      assertEquals(await lb.exited(), 0, lb.logs());
      assert(!lb.logs().includes("second signal"), lb.logs());
    } finally {
      slow.release();
      killGroup(lb);
    }
  });
}

Deno.test("the same signal relayed again 100 ms later still drains", async () => {
  const slow = await slowBackend();
  await using _backend = slow.backend;
  const path = await configFile(configOf({ "slow.test": [{ port: slow.backend.port }] }));
  await using lb = await startDynlb([
    "--config-file",
    path,
    "--workers",
    "1",
    "--log-level",
    "debug",
  ]);
  try {
    const inFlight = get(lb, "slow.test");
    await slow.arrived;
    lb.process.kill("SIGTERM");
    await lb.waitForLog("shutting down");
    // A chain of relays (a wrapper script, a task runner) delivers the one signal again.
    await new Promise((resolve) => setTimeout(resolve, 100));
    lb.process.kill("SIGTERM");
    await lb.waitForLog("signal repeated within 1 s");
    slow.release();
    const response = await inFlight;
    assertEquals([response.status, response.body], [200, "finished"]);
    assertEquals(await lb.exited(), 0, lb.logs());
  } finally {
    slow.release();
  }
});

Deno.test("a second signal sent a second later stops at once, exit 1", async () => {
  const slow = await slowBackend();
  await using _backend = slow.backend;
  const path = await configFile(configOf({ "slow.test": [{ port: slow.backend.port }] }));
  await using lb = await startDynlb(["--config-file", path, "--workers", "1"], {
    command: [START],
    detached: true,
  });
  try {
    const inFlight = get(lb, "slow.test").then((r) => r.status, () => "cut off");
    await slow.arrived;
    Deno.kill(-lb.process.pid, "SIGTERM");
    await lb.waitForLog("shutting down");
    // The operator insists: the delay is what is being tested, not a wait for readiness.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    Deno.kill(-lb.process.pid, "SIGTERM");
    assertEquals(await lb.exited(), 1);
    assert(lb.logs().includes("second signal: stopping at once"), lb.logs());
    assertEquals(await inFlight, "cut off");
  } finally {
    slow.release();
    killGroup(lb);
  }
});
