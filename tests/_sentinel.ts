/**
 * A real Redis Sentinel deployment for tests, on loopback random ports: one master, one
 * replica, three `redis-sentinel`s (quorum 2, a master is down after 1 s without answers).
 *
 * @module
 */
import { freePort } from "./_ports.ts";
import { respCommand, THROWAWAY_REDIS, waitForPing } from "./_redis.ts";

/** The running deployment. */
export interface TestSentinels extends AsyncDisposable {
  /** The master's name at the Sentinels. */
  readonly name: string;
  /** `127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3`, as `--redis-sentinel` takes it. */
  readonly sentinels: string;
  readonly masterPort: number;
  readonly replicaPort: number;
  /** One RESP command to a Redis or Sentinel port. */
  command(port: number, ...args: string[]): Promise<string>;
  /** SIGKILLs the master (no goodbye to replica or Sentinels). */
  killMaster(): Promise<void>;
  /** Resolves with the port every Sentinel names as master once it is not `port`. */
  waitForNewMaster(port: number, timeoutMs?: number): Promise<number>;
  close(): Promise<void>;
}

const NAME = "dynlbmaster";

/**
 * Starts master, replica and three Sentinels and waits until the Sentinels see each other and
 * the replica.
 *
 * @example
 * ```ts
 * await using cluster = await startSentinels();
 * await cluster.killMaster();
 * ```
 */
export async function startSentinels(): Promise<TestSentinels> {
  const dir = await Deno.makeTempDir({ prefix: "dynlb-sentinel-" });
  const children: Deno.ChildProcess[] = [];
  const spawn = (command: string, args: string[]) => {
    const child = new Deno.Command(command, {
      args,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    children.push(child);
    return child;
  };
  const redis = async (port: number, extra: string[]) => {
    await Deno.mkdir(`${dir}/${port}`);
    const child = spawn("redis-server", [
      "--port",
      String(port),
      ...THROWAWAY_REDIS,
      "--dir",
      `${dir}/${port}`,
      ...extra,
    ]);
    await waitForPing(port, child);
    return child;
  };
  const close = async () => {
    for (const child of children) {
      try {
        child.kill("SIGKILL");
      } catch {
        // Already gone.
      }
      await child.status;
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };

  try {
    const masterPort = freePort();
    const replicaPort = freePort();
    const master = await redis(masterPort, []);
    await redis(replicaPort, ["--replicaof", "127.0.0.1", String(masterPort)]);
    await until(
      async () =>
        /master_link_status:up/.test(await respCommand(replicaPort, ["INFO", "replication"])),
      "replica in sync",
    );
    const sentinelPorts = [freePort(), freePort(), freePort()];
    for (const port of sentinelPorts) {
      const conf = `${dir}/sentinel-${port}.conf`;
      await Deno.writeTextFile(
        conf,
        [
          `port ${port}`,
          "bind 127.0.0.1",
          `dir ${dir}`,
          `sentinel monitor ${NAME} 127.0.0.1 ${masterPort} 2`,
          `sentinel down-after-milliseconds ${NAME} 1000`,
          `sentinel failover-timeout ${NAME} 4000`,
          `sentinel parallel-syncs ${NAME} 1`,
          "",
        ].join("\n"),
      );
      await waitForPing(port, spawn("redis-sentinel", [conf]));
    }
    for (const port of sentinelPorts) {
      await until(async () => {
        const info = await respCommand(port, ["SENTINEL", "master", NAME]);
        return /num-slaves\r\n\$1\r\n1\r\n/.test(info) &&
          /num-other-sentinels\r\n\$1\r\n2\r\n/.test(info);
      }, `sentinel ${port} sees the replica and the other sentinels`);
    }
    return {
      name: NAME,
      sentinels: sentinelPorts.map((p) => `127.0.0.1:${p}`).join(","),
      masterPort,
      replicaPort,
      command: (port, ...args) => respCommand(port, args),
      killMaster: async () => {
        master.kill("SIGKILL");
        await master.status;
      },
      waitForNewMaster: async (port, timeoutMs = 30_000) => {
        let found = 0;
        await until(
          async () => {
            const named = new Set<number>();
            for (const sentinel of sentinelPorts) {
              const reply = await respCommand(sentinel, [
                "SENTINEL",
                "get-master-addr-by-name",
                NAME,
              ]);
              named.add(Number(/\r\n(\d+)\r\n$/.exec(reply)?.[1]));
            }
            found = [...named][0];
            return named.size === 1 && found !== port;
          },
          "failover",
          timeoutMs,
        );
        return found;
      },
      close,
      [Symbol.asyncDispose]: close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

async function until(probe: () => Promise<boolean>, what: string, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      if (await probe()) return;
    } catch {
      // Not up yet.
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}
