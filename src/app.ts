/**
 * Wires the program together: store → control plane → data plane (router + transport, in this
 * isolate or in worker isolates) → proxy listener, with the admin API beside it. `main.ts` adds
 * the command line and signals.
 *
 * @module
 */
import { createAdminApp } from "./admin/app.ts";
import type { Options } from "./cli/options.ts";
import { ControlPlane } from "./control/control_plane.ts";
import type { DataPlane } from "./control/data_plane.ts";
import type { UpstreamFailureListener } from "./proxy/request_path.ts";
import { Router } from "./proxy/router.ts";
import { listen, type ProxySettings, serveProxy } from "./proxy/server.ts";
import { WorkerPool } from "./proxy/workers.ts";
import { createStore, isRemote } from "./store/create.ts";
import { LastGoodCache } from "./store/cache.ts";
import { type ConfigStore, StoreUnavailableError } from "./store/store.ts";
import { log } from "./log.ts";
import { HealthChecker } from "./health/checker.ts";

/** A running instance. */
export interface Running {
  /** Where the proxy listens (the real port when 0 was asked for). */
  readonly proxy: Deno.NetAddr;
  /** Where the admin API listens. */
  readonly admin: Deno.NetAddr;
  readonly control: ControlPlane;
  /**
   * Stops accepting, lets requests in flight finish for at most `timeoutMs`, then closes
   * everything. Resolves `true` when every request finished in time.
   */
  shutdown(timeoutMs: number): Promise<boolean>;
}

/**
 * Start-up failed in a way the user must fix (busy port, invalid config): exit 1.
 *
 * @example
 * ```ts
 * try {
 *   await start(options);
 * } catch (err) {
 *   if (err instanceof StartupError) console.error(err.message);
 * }
 * ```
 */
export class StartupError extends Error {
  override name = "StartupError";
}

/** The data plane as `start` runs it: one in-isolate listener, or a pool of workers. */
interface ProxyPlane {
  readonly dataPlane: DataPlane;
  readonly addr: Deno.NetAddr;
  shutdown(): Promise<void>;
  close(): void;
}

/**
 * Starts dynlb with the given options.
 *
 * @example
 * ```ts
 * const running = await start(parseOptions(Deno.args, Deno.env.toObject()));
 * console.log(running.proxy.port);
 * ```
 */
export async function start(options: Options): Promise<Running> {
  if (options.proxyProtocol) {
    // Deno.serve hides the socket, so nothing can read a PROXY header before HTTP starts.
    throw new StartupError("--proxy-protocol needs the h1 listener (--listener h1)");
  }
  const settings: ProxySettings = {
    listen: options.listen,
    reusePort: false,
    listener: options.listener,
    transport: options.upstreamTransport,
    timeouts: { connectMs: options.connectTimeoutMs, responseMs: options.responseTimeoutMs },
    client: {
      headerMs: options.clientHeaderTimeoutMs,
      idleMs: options.clientIdleTimeoutMs,
      bodyMs: options.clientBodyTimeoutMs,
      tunnelIdleMs: options.tunnelIdleTimeoutMs,
    },
    maxConnections: options.maxConnections,
    retries: options.retries,
    trustedProxies: options.trustedProxies,
  };
  // The checker exists before the data plane (failures are reported to it) and tells the data
  // plane about changes once it exists.
  let dataPlane: DataPlane | undefined;
  const health = new HealthChecker((change) =>
    dataPlane?.setHealth(change.backend, change.server, change.up)
  );
  const onUpstreamFailure: UpstreamFailureListener = (backend, server, error) =>
    health.reportFailure(backend, server, `${error.failure}: ${error.message}`);

  let store: ConfigStore;
  try {
    store = await createStore(options);
  } catch (err) {
    throw new StartupError(err instanceof Error ? err.message : String(err));
  }
  let plane: ProxyPlane | undefined;
  let admin: Deno.HttpServer<Deno.NetAddr> | undefined;
  try {
    plane = await startProxyPlane(options, settings, onUpstreamFailure);
    dataPlane = plane.dataPlane;
    const cache = isRemote(store, options)
      ? new LastGoodCache(`${options.dataDir}/last-good-${store.kind}.json`)
      : undefined;
    const control = new ControlPlane({
      store,
      dataPlane,
      health,
      onStoredConfig: cache && ((text) => void cache.write(text)),
    });
    try {
      const found = await control.start();
      if (!found && store.kind === "file") {
        throw new Error(
          `config file ${store.location} does not exist (create one; an empty config is ` +
            `{"backends": [], "hosts": []})`,
        );
      }
    } catch (err) {
      if (!(err instanceof StoreUnavailableError) || cache === undefined) throw err;
      await startFromCache(control, cache, err);
    }
    const app = createAdminApp({
      control,
      status: () => health.status(),
      maxBodyBytes: options.maxConfigBytes,
    });
    admin = listen("admin", options.admin, (request) => app.fetch(request));
    control.watch();

    const proxyPlane = plane;
    const adminServer = admin;
    return {
      proxy: plane.addr,
      admin: admin.addr,
      control,
      async shutdown(timeoutMs) {
        control.stop();
        let timer: ReturnType<typeof setTimeout> | undefined;
        const drained = await Promise.race([
          Promise.all([proxyPlane.shutdown(), adminServer.shutdown()]).then(() => true),
          new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), timeoutMs)),
        ]);
        clearTimeout(timer);
        proxyPlane.close();
        await health.close();
        await store.close();
        return drained;
      },
    };
  } catch (err) {
    await admin?.shutdown();
    if (plane) {
      await plane.shutdown();
      plane.close();
    }
    await health.close();
    await store.close();
    throw new StartupError(err instanceof Error ? err.message : String(err));
  }
}

/**
 * The store is unreachable at start-up: serve the last config it gave (or nothing) and let the
 * store's watch bring the real one when it comes back.
 */
async function startFromCache(
  control: ControlPlane,
  cache: LastGoodCache,
  cause: Error,
): Promise<void> {
  const text = await cache.read();
  const result = text === null ? null : await control.startFrom(text, "cache");
  log("warn", "config store unreachable at start-up", {
    store: control.store.location,
    error: cause.message,
    serving: result?.ok ? `cached config from ${cache.path}` : "an empty config",
  });
  if (!result?.ok) await control.startFrom('{"backends": [], "hosts": []}', "empty");
}

async function startProxyPlane(
  options: Options,
  settings: ProxySettings,
  onUpstreamFailure: UpstreamFailureListener,
): Promise<ProxyPlane> {
  if (options.workers <= 1) {
    const router = new Router();
    const server = serveProxy(router, settings, onUpstreamFailure);
    return { dataPlane: router, addr: server.addr, shutdown: server.shutdown, close: server.close };
  }
  const pool = await WorkerPool.start(
    options.workers,
    settings,
    options.logLevel,
    onUpstreamFailure,
  );
  return { dataPlane: pool, addr: pool.addr, shutdown: () => pool.shutdown(), close: () => {} };
}
