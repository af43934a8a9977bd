/**
 * `--max-connections` against the open-file limit, end to end, under dynlb's own permissions
 * (those of `deno task start` and the compiled executable: no `--allow-all`, so `/proc` cannot
 * be read): the limit still lowers it, and connections beyond it are closed at once while the
 * admin API keeps answering.
 */
import { assert, assertEquals } from "./_assert.ts";
import { configFile, configOf, startBackend } from "./_backend.ts";
import { DYNLB_COMMAND, startDynlb } from "./_dynlb.ts";

const OPEN_FILES = 400;
const REQUEST = new TextEncoder().encode("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");

/** Sends one request on `conn`; whether an answer came (the connection stays open). */
async function answered(conn: Deno.TcpConn): Promise<boolean> {
  try {
    await conn.write(REQUEST);
    const buf = new Uint8Array(4096);
    const n = await conn.read(buf);
    return n !== null && new TextDecoder().decode(buf.subarray(0, n)).startsWith("HTTP/1.1 200");
  } catch {
    return false; // reset: closed at once
  }
}

Deno.test("under a low open-file limit --max-connections is lowered to fit, beyond it connections are closed", async () => {
  await using backend = await startBackend("a");
  const path = await configFile(configOf({ "a.test": [{ port: backend.port }] }));
  await using lb = await startDynlb(["--config-file", path, "--workers", "2"], {
    command: ["prlimit", `--nofile=${OPEN_FILES}:${OPEN_FILES}`, ...DYNLB_COMMAND],
  });
  await lb.waitForLog("--max-connections lowered");
  const budget = Number(/ used=(\d+)/.exec(lb.logs())?.[1]);
  // Two descriptors per connection and 256 kept back: at most (400 - 256) / 2.
  assert(budget >= 1 && budget <= (OPEN_FILES - 256) / 2, `budget ${budget}`);

  const port = Number(new URL(lb.proxy).port);
  const conns: Deno.TcpConn[] = [];
  let served = 0;
  try {
    for (let i = 0; i < budget + 10; i++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conns.push(conn);
      if (await answered(conn)) served++;
    }
    assertEquals(served, budget);
    // The descriptors kept back serve the admin API.
    const config = await fetch(lb.admin + "/config");
    assertEquals(config.status, 200);
    await config.body?.cancel();
  } finally {
    for (const conn of conns) conn.close();
  }
});
