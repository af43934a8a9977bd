/**
 * `dynlb demo`: the quick start that answers. Two small backends on 127.0.0.1 (10001 and 10002
 * by default, the ports of the seed's `config.json`), each answering with its own name and `pong`
 * on `/ping` (the seed's http check), and the seed's config written where the proxy's file store
 * reads it — so `curl -H 'Host: www.test2.com' http://127.0.0.1:8080/` shows real answers and
 * the 10:1 split at once.
 *
 * @module
 */
import seed from "../config.json" with { type: "json" };
import type { Options } from "./cli/options.ts";

/** The running demo backends. */
export interface Demo {
  /** Where the demo config was written (the proxy's `--config-file`). */
  readonly configFile: string;
  /** `name → 127.0.0.1:port` of each backend. */
  readonly backends: ReadonlyArray<{ readonly name: string; readonly port: number }>;
  close(): Promise<void>;
}

/**
 * A demo port is taken: nothing was started.
 *
 * @example
 * ```ts
 * await startDemo(options).catch((err) => err instanceof DemoError && console.error(err.message));
 * ```
 */
export class DemoError extends Error {
  override name = "DemoError";
}

/**
 * Starts the demo backends and writes the seed's config (its ports 10001 and 10002 replaced by
 * `options.demoPorts`) to `DATA_DIR/demo/config.json`.
 *
 * @example
 * ```ts
 * const demo = await startDemo(options);
 * await start({ ...options, configType: "file", configFile: demo.configFile });
 * ```
 */
export async function startDemo(options: Options): Promise<Demo> {
  const [first, second] = options.demoPorts;
  const servers: Deno.HttpServer[] = [];
  const backends = [{ name: "server-1", port: first }, { name: "server-2", port: second }];
  try {
    for (const { name, port } of backends) {
      servers.push(Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, (request) => {
        const path = new URL(request.url).pathname;
        return new Response(path === "/ping" ? "pong\n" : `${name} (127.0.0.1:${port})\n`);
      }));
    }
  } catch (err) {
    await Promise.all(servers.map((s) => s.shutdown()));
    const taken = backends[servers.length].port;
    throw new DemoError(
      `demo backend port 127.0.0.1:${taken} is taken (${(err as Error).message}); ` +
        "choose others with --demo-ports PORT,PORT",
    );
  }
  const mapped = JSON.stringify(seed, null, 2).replaceAll('"port": 10001', `"port": ${first}`)
    .replaceAll('"port": 10002', `"port": ${second}`);
  const dir = `${options.dataDir}/demo`;
  await Deno.mkdir(dir, { recursive: true });
  const configFile = `${dir}/config.json`;
  await Deno.writeTextFile(configFile, mapped + "\n");
  return {
    configFile,
    backends,
    close: async () => {
      await Promise.all(servers.map((s) => s.shutdown()));
    },
  };
}
