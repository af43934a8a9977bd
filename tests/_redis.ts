/**
 * A real `redis-server` for tests: random free loopback port, no persistence, its own temp dir.
 *
 * @module
 */
import { freePort } from "./_ports.ts";

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

/** How a test Redis is secured. */
export interface RedisServerOptions {
  /** `requirepass`: clients must `AUTH` with it. */
  readonly password?: string;
  /** TLS only (no plain port): the server's certificate and key files, and its CA as PEM. */
  readonly tls?: { readonly certFile: string; readonly keyFile: string; readonly ca: string };
}

/**
 * Starts `redis-server` on a random free 127.0.0.1 port (with a password and TLS when asked)
 * and waits until it answers PING.
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
export async function startRedis(options: RedisServerOptions = {}): Promise<TestRedis> {
  const dir = await Deno.makeTempDir({ prefix: "dynlb-redis-" });
  const port = freePort();
  let child: Deno.ChildProcess | null = null;
  const client: ClientOptions = { password: options.password, ca: options.tls?.ca };
  const secured = [
    ...(options.password === undefined ? [] : ["--requirepass", options.password]),
    ...(options.tls === undefined ? [] : [
      "--tls-cert-file",
      options.tls.certFile,
      "--tls-key-file",
      options.tls.keyFile,
      "--tls-auth-clients",
      "no",
    ]),
  ];

  const start = async () => {
    child = new Deno.Command("redis-server", {
      args: [
        ...(options.tls === undefined ? ["--port", String(port)] : [
          "--port",
          "0",
          "--tls-port",
          String(port),
        ]),
        ...secured,
        ...THROWAWAY_REDIS,
        "--dir",
        dir,
      ],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    await waitForPing(port, child, client);
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
    command: (...args) => respCommand(port, args, client),
    stop,
    restart: async () => {
      await stop();
      await start();
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}

/**
 * The flags that put a dynlb on the test Redis at `port` (database 0, the default key
 * `balancer`) with its own data directory; `extra` flags follow.
 *
 * @example
 * ```ts
 * await using lb = await startDynlb(redisArgs(redis.port, dir, "--redis-db", "3"));
 * ```
 */
export function redisArgs(port: number, dataDir: string, ...extra: string[]): string[] {
  return ["--config-type", "redis", "--redis-port", String(port), "--data-dir", dataDir, ...extra];
}

/** How a test's redis-server runs: on loopback only, nothing persisted. */
export const THROWAWAY_REDIS: readonly string[] = [
  "--bind",
  "127.0.0.1",
  "--save",
  "",
  "--appendonly",
  "no",
];

/** Waits until the server on `port` answers PING; rejects when `child` exits first. */
export async function waitForPing(
  port: number,
  child: Deno.ChildProcess,
  client: ClientOptions = {},
): Promise<void> {
  let exited = false;
  child.status.then(() => (exited = true));
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (exited) throw new Error(`redis-server on port ${port} exited during start-up`);
    try {
      if ((await respCommand(port, ["PING"], client)).startsWith("+PONG")) return;
    } catch {
      // Not listening yet.
    }
    // A connect to a not-yet-bound port fails at once; yield briefly rather than spin.
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`redis-server on port ${port} did not answer PING`);
}

/** How the test's own client reaches a secured server. */
interface ClientOptions {
  readonly password?: string;
  /** PEM of the CA that signed the server's certificate: connect with TLS. */
  readonly ca?: string;
}

/**
 * Sends one RESP command on a fresh connection (after `AUTH` when a password is set) and
 * returns the first reply chunk as text.
 */
export async function respCommand(
  port: number,
  args: string[],
  client: ClientOptions = {},
): Promise<string> {
  const conn = client.ca === undefined
    ? await Deno.connect({ hostname: "127.0.0.1", port })
    : await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [client.ca] });
  try {
    if (client.password !== undefined) await exchange(conn, ["AUTH", client.password]);
    return await exchange(conn, args);
  } finally {
    conn.close();
  }
}

async function exchange(conn: Deno.Conn, args: string[]): Promise<string> {
  const encoder = new TextEncoder();
  let payload = `*${args.length}\r\n`;
  for (const arg of args) payload += `$${encoder.encode(arg).length}\r\n${arg}\r\n`;
  await conn.write(encoder.encode(payload));
  const buf = new Uint8Array(64 * 1024);
  const n = await conn.read(buf);
  return n === null ? "" : new TextDecoder().decode(buf.subarray(0, n));
}

/** A throwaway CA and a server certificate for 127.0.0.1 and `localhost` signed by it. */
export interface TestCertificates {
  readonly dir: string;
  /** The CA certificate's file and PEM text. */
  readonly caFile: string;
  readonly ca: string;
  readonly certFile: string;
  readonly keyFile: string;
}

/**
 * Generates {@link TestCertificates} with `openssl` into a fresh temporary directory (removed
 * by the caller).
 *
 * @example
 * ```ts
 * const certs = await makeCertificates();
 * await Deno.remove(certs.dir, { recursive: true });
 * ```
 */
export async function makeCertificates(): Promise<TestCertificates> {
  const dir = await Deno.makeTempDir({ prefix: "dynlb-certs-" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await Deno.writeTextFile(
    `${dir}/ext`,
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n" +
      "extendedKeyUsage=serverAuth\n",
  );
  const steps = [
    ["req", "-x509", ...ec, "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=dynlb test CA"],
    ["req", ...ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"],
    [
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "1",
      "-extfile",
      "ext",
      "-out",
      "server.crt",
    ],
  ];
  for (const args of steps) {
    const out = await new Deno.Command("openssl", {
      args,
      cwd: dir,
      stdout: "null",
      stderr: "piped",
    })
      .output();
    if (!out.success) {
      throw new Error(`openssl ${args[0]}: ${new TextDecoder().decode(out.stderr)}`);
    }
  }
  return {
    dir,
    caFile: `${dir}/ca.crt`,
    ca: await Deno.readTextFile(`${dir}/ca.crt`),
    certFile: `${dir}/server.crt`,
    keyFile: `${dir}/server.key`,
  };
}
