/**
 * A real `redis-server` for tests: random free loopback port, no persistence, its own temp dir.
 *
 * @module
 */

/**
 * A running (or stopped) test Redis.
 *
 * @example
 * ```ts
 * const redis: TestRedis = await startRedis();
 * await redis.restart(); // same port, empty data
 * await redis.close();
 * ```
 */
export interface TestRedis extends AsyncDisposable {
  /** The loopback port, stable across `restart()`. */
  readonly port: number;
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  /** Sends one command (RESP) on a fresh connection and returns the raw reply text. */
  command(...args: string[]): Promise<string>;
  /** Stops the server and waits for the process to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port and waits until it answers PING. */
  restart(): Promise<void>;
  /** Stops it and removes its directory. */
  close(): Promise<void>;
}

/**
 * Starts `redis-server` on a random free 127.0.0.1 port and waits until it answers PING.
 *
 * @example
 * ```ts
 * const redis = await startRedis();
 * try {
 *   await redis.command("SET", "k", "v");
 * } finally {
 *   await redis.close();
 * }
 * ```
 */
export async function startRedis(): Promise<TestRedis> {
  const dir = await Deno.makeTempDir({ prefix: "dynlb-redis-" });
  const port = freePort();
  let child: Deno.ChildProcess | null = null;

  const start = async () => {
    child = new Deno.Command("redis-server", {
      args: [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        dir,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    await waitForPing(port, child);
  };
  const stop = async () => {
    if (!child) return;
    const running = child;
    child = null;
    try {
      running.kill("SIGTERM");
    } catch {
      // Already exited.
    }
    await running.status;
  };

  await start();
  const close = async () => {
    await stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    command: (...args) => respCommand(port, args),
    stop,
    restart: async () => {
      await stop();
      await start();
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

async function waitForPing(port: number, child: Deno.ChildProcess): Promise<void> {
  let exited = false;
  child.status.then(() => (exited = true));
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (exited) throw new Error(`redis-server on port ${port} exited during start-up`);
    try {
      if ((await respCommand(port, ["PING"])).startsWith("+PONG")) return;
    } catch {
      // Not listening yet.
    }
    // A connect to a not-yet-bound port fails at once; yield briefly rather than spin.
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`redis-server on port ${port} did not answer PING`);
}

/** Sends one RESP command on a fresh connection and returns the first reply chunk as text. */
async function respCommand(port: number, args: string[]): Promise<string> {
  const encoder = new TextEncoder();
  let payload = `*${args.length}\r\n`;
  for (const arg of args) payload += `$${encoder.encode(arg).length}\r\n${arg}\r\n`;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(encoder.encode(payload));
    const buf = new Uint8Array(64 * 1024);
    const n = await conn.read(buf);
    return n === null ? "" : new TextDecoder().decode(buf.subarray(0, n));
  } finally {
    conn.close();
  }
}
