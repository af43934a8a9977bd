/**
 * `--shutdown-timeout` end to end: a request that runs past it is cut off and dynlb exits anyway
 * (the second signal is covered in `signals_test.ts`).
 */
import { assert, assertEquals } from "./_assert.ts";
import { configFile, configOf, startBackend } from "./_backend.ts";
import { get, modeTest, startDynlb } from "./_dynlb.ts";

modeTest(
  "--shutdown-timeout cuts off a request that runs past it, then exits 0",
  // In the main isolate and in workers (the upstream client does not matter here).
  (mode) => mode.transport === "h1",
  async (mode) => {
    const arrived = Promise.withResolvers<void>();
    const never = Promise.withResolvers<void>();
    await using slow = await startBackend("slow", async () => {
      arrived.resolve();
      await never.promise;
      return new Response("too late");
    });
    const path = await configFile(configOf({ "slow.test": [{ port: slow.port }] }));
    await using lb = await startDynlb(["--config-file", path, "--shutdown-timeout", "0.5"], {
      mode,
    });
    try {
      const inFlight = get(lb, "slow.test").then((r) => r.status, () => "cut off");
      await arrived.promise;
      lb.process.kill("SIGTERM");
      // Without the timeout dynlb would wait for the backend forever: the guard fails first.
      let guard: ReturnType<typeof setTimeout> | undefined;
      const code = await Promise.race([
        lb.exited(),
        new Promise<string>((resolve) =>
          guard = setTimeout(() => resolve("still running"), 15_000)
        ),
      ]);
      clearTimeout(guard);
      assertEquals(code, 0, lb.logs());
      assert(
        lb.logs().includes("shutdown timeout: requests still in flight were cut off"),
        lb.logs(),
      );
      assertEquals(await inFlight, "cut off");
    } finally {
      never.resolve();
    }
  },
);
