/**
 * Wires the program together: store → control plane → data plane (router + transport, in this
 * isolate or in worker isolates) → first config in force → proxy listener, with the admin API
 * beside it. `main.ts` adds the command line and signals.
 *
 * @module
 */
import { connectionBudget, descriptorLimit } from "./proxy/fd_limit.ts";
import { createAdminApp } from "./admin/app.ts";
import { type AdminListener, openAdmin } from "./admin/listen.ts";
import type { Options } from "./cli/options.ts";
import { ControlPlane } from "./control/control_plane.ts";
import type { DataPlane } from "./control/data_plane.ts";
import type { UpstreamFailureListener } from "./proxy/request_path.ts";
import { Router } from "./proxy/router.ts";
import { prepareProxy, type ProxyServer, type ProxySettings } from "./proxy/server.ts";
import { WorkerPool } from "./proxy/workers.ts";
import { createStore, isRemote } from "./store/create.ts";
import { LastGoodCache } from "./store/cache.ts";
import { type ConfigStore, StoreUnavailableError } from "./store/store.ts";
import { log } from "./log.ts";
import { HealthChecker } from "./health/checker.ts";
import { TlsManager } from "./tls/manager.ts";
import { createAcmeStore } from "./acme/create.ts";
import type { ChallengeLookup } from "./acme/challenge.ts";
import { isLoopback } from "./net/address.ts";
import type { OwnListener } from "./config/self.ts";
import { MetricsRegistry } from "./metrics/registry.ts";
import { ReloadStats } from "./metrics/reloads.ts";
import { Observers } from "./proxy/observe.ts";
import { AccessLog } from "./access/access_log.ts";
import { HealthEvents } from "./metrics/events.ts";
import { VERSION } from "./version.ts";
import { errorText } from "./error_text.ts";
import { formatHostPort } from "./address.ts";

/** A running instance. */
export interface Running {
  /** Where the proxy listens (the real port when 0 was asked for). */
  readonly proxy: Deno.NetAddr;
  /** Where the admin API listens. */
  readonly admin: Deno.NetAddr;
  /** Where the HTTPS proxy listener is (`--listen-tls`). */
  readonly tls?: Deno.NetAddr;
  readonly control: ControlPlane;
  /** Reopens the access log files (SIGHUP). */
  reopenLogs(): void;
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

/**
 * The data plane as `start` runs it: one in-isolate listener, or a pool of workers. It listens
 * only once told to, after the first config is in force.
 */
interface ProxyPlane {
  readonly dataPlane: DataPlane;
  listen(): Promise<Deno.NetAddr>;
  /** Where the HTTPS listener is, once listening (with `--listen-tls`). */
  tlsAddr(): Deno.NetAddr | undefined;
  reopenLogs(): void;
  shutdown(): Promise<void>;
  close(): Promise<void>;
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
  const token = await adminToken(options);
  checkAdminExposure(options, token);
  if (options.proxyProtocol && options.listener === "serve") {
    // Deno.serve hides the socket, so nothing can read a PROXY header before HTTP starts.
    throw new StartupError("--proxy-protocol needs the h1 listener (--listener h1)");
  }
  const settings: ProxySettings = {
    listen: options.listen,
    reusePort: options.reusePort,
    listener: options.listener,
    transport: options.upstreamTransport,
    timeouts: { connectMs: options.connectTimeoutMs, responseMs: options.responseTimeoutMs },
    client: {
      headerMs: options.clientHeaderTimeoutMs,
      idleMs: options.clientIdleTimeoutMs,
      bodyMs: options.clientBodyTimeoutMs,
      tunnelIdleMs: options.tunnelIdleTimeoutMs,
    },
    maxConnections: maxConnections(options.maxConnections),
    retries: options.retries,
    metricsBuckets: options.metricsBuckets,
    accessLog: options.accessLog === null
      ? null
      : { path: options.accessLog, format: options.accessLogFormat },
    requestIdHeader: options.requestIdHeader,
    trustedProxies: options.trustedProxies,
    proxyProtocol: options.proxyProtocol,
    listenTls: options.listenTls,
  };
  const metrics = options.metricsBuckets === null
    ? undefined
    : new MetricsRegistry(options.metricsBuckets);
  const reloads = new ReloadStats();
  const healthEvents = new HealthEvents();
  // The checker exists before the data plane (failures are reported to it) and tells the data
  // plane about changes once it exists.
  let dataPlane: DataPlane | undefined;
  const health = new HealthChecker((change) => {
    healthEvents.record(change);
    dataPlane?.setHealth(change.backend, change.server, change.up);
  });
  const onUpstreamFailure: UpstreamFailureListener = (backend, server, error, at) =>
    health.reportFailure(backend, server, `${error.failure}: ${error.message}`, at);

  let store: ConfigStore;
  try {
    store = await createStore(options);
  } catch (err) {
    throw new StartupError(errorText(err));
  }
  let plane: ProxyPlane | undefined;
  let admin: AdminListener | undefined;
  // Certificates are control plane: loaded, polled and ordered here, handed over as data.
  const tls = new TlsManager({
    publish: (certificates) => dataPlane?.applyCertificates?.(certificates),
    acmeStore: () => createAcmeStore(store, options.dataDir),
  });
  try {
    if (options.accessLog !== null && options.accessLog !== "-") {
      // Fail at start-up, with the path, rather than in every worker.
      try {
        await (await AccessLog.open(options.accessLog)).close();
      } catch (err) {
        throw new Error(`cannot open access log ${options.accessLog}: ${(err as Error).message}`);
      }
    }
    plane = await startProxyPlane(
      options,
      settings,
      onUpstreamFailure,
      metrics,
      (token) => tls.answerChallenge(token),
    );
    dataPlane = plane.dataPlane;
    const cache = isRemote(store, options)
      ? new LastGoodCache(`${options.dataDir}/last-good-${store.kind}.json`)
      : undefined;
    // dynlb's own addresses are the configured ones until the listeners open (then the real
    // ports); port 0 is not known before.
    let proxyAddr: { hostname: string; port: number } = options.listen;
    let adminAddr: { hostname: string; port: number } = options.admin;
    let tlsAddr: { hostname: string; port: number } | undefined = options.listenTls;
    const listeners = (): OwnListener[] =>
      [
        { role: "proxy", ...proxyAddr },
        { role: "admin", ...adminAddr },
        ...(tlsAddr ? [{ role: "https proxy", ...tlsAddr }] : []),
      ].filter((l) => l.port !== 0);
    const control = new ControlPlane({
      store,
      dataPlane,
      health,
      onStoredConfig: cache && ((text) => void cache.write(text)),
      listeners,
      historySize: options.history,
      onReload: (source, ok, version) => reloads.record(source, ok, version),
      onApplied: (config) => tls.apply(config),
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
    // Only now: a connection accepted earlier would be answered from an empty table (404).
    const proxyListening = await plane.listen();
    proxyAddr = { hostname: proxyListening.hostname, port: proxyListening.port };
    tlsAddr = plane.tlsAddr();
    const app = createAdminApp({
      control,
      status: () => health.status(),
      certificates: () => tls.listing(),
      maxBodyBytes: options.maxConfigBytes,
      token,
      address: () => adminAddr,
      metrics: metrics && {
        registry: metrics,
        status: () => health.status(),
        configVersion: () => control.running.version,
        reloads,
        storeUp: () => store.reachable ?? true,
        version: VERSION,
      },
      healthEvents,
    });
    // With --reuse-port the process being replaced may still hold the admin address: then the
    // proxy serves at once and the admin API follows when the address frees up.
    admin = openAdmin(options.admin, (request) => app.fetch(request), options.reusePort);
    adminAddr = { hostname: admin.addr.hostname, port: admin.addr.port };
    control.watch();

    const proxyPlane = plane;
    const adminServer = admin;
    return {
      proxy: proxyListening,
      admin: admin.addr,
      tls: plane.tlsAddr(),
      control,
      reopenLogs: () => proxyPlane.reopenLogs(),
      async shutdown(timeoutMs) {
        // Not awaited: a poll stuck on an unresponsive store must not hold the drain up.
        void control.stop();
        tls.close();
        let timer: ReturnType<typeof setTimeout> | undefined;
        const drained = await Promise.race([
          Promise.all([proxyPlane.shutdown(), adminServer.shutdown()]).then(() => true),
          new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), timeoutMs)),
        ]);
        clearTimeout(timer);
        await proxyPlane.close();
        await health.close();
        await store.close();
        return drained;
      },
    };
  } catch (err) {
    tls.close();
    await admin?.shutdown();
    if (plane) {
      await plane.shutdown();
      await plane.close();
    }
    await health.close();
    await store.close();
    throw new StartupError(errorText(err));
  }
}

/** The admin token from `--admin-token` or `--admin-token-file`; never logged. */
async function adminToken(options: Options): Promise<string | undefined> {
  let token = options.adminToken;
  if (options.adminTokenFile !== undefined) {
    try {
      token = (await Deno.readTextFile(options.adminTokenFile)).trim();
    } catch (err) {
      throw new StartupError(
        `cannot read --admin-token-file ${options.adminTokenFile}: ${(err as Error).message}`,
      );
    }
  }
  if (token === undefined) return undefined;
  if (!/^[\x21-\x7e]{16,}$/.test(token)) {
    throw new StartupError(
      "the admin token must be at least 16 printable characters without spaces " +
        "(e.g. openssl rand -hex 32)",
    );
  }
  return token;
}

/** Refuses an admin API reachable from other machines without a token, unless told to. */
function checkAdminExposure(options: Options, token: string | undefined): void {
  const { hostname, port } = options.admin;
  if (token !== undefined || isLoopback(hostname)) return;
  const where = `--admin ${formatHostPort(hostname, port)}`;
  if (!options.adminInsecure) {
    throw new StartupError(
      `${where} is reachable from other machines and no admin token is set: ` +
        "set --admin-token-file (or DYNLB_ADMIN_TOKEN), listen on 127.0.0.1, " +
        "or pass --admin-insecure to run it unauthenticated",
    );
  }
  log(
    "warn",
    "ADMIN API UNAUTHENTICATED on a non-loopback address (--admin-insecure): " +
      "anyone who reaches it can replace the routing",
    { admin: formatHostPort(hostname, port) },
  );
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
  metrics: MetricsRegistry | undefined,
  acmeChallenge: ChallengeLookup,
): Promise<ProxyPlane> {
  if (options.workers <= 1) {
    const router = new Router();
    const observers = await Observers.start(settings, metrics?.newStripe());
    const proxy = prepareProxy(router, settings, onUpstreamFailure, observers, acmeChallenge);
    let server: ProxyServer | undefined;
    const dataPlane: DataPlane = {
      async applyConfig(config, version, down) {
        const ids = metrics?.assign(config);
        await router.applyConfig(config, version, down);
        if (ids !== undefined) observers.recorder?.bind(router.snapshot, config, ids);
      },
      setHealth: (backend, server, up) => router.setHealth(backend, server, up),
      applyCertificates: (certificates) => proxy.applyCertificates(certificates),
    };
    return {
      dataPlane,
      listen() {
        server = proxy.listen();
        return Promise.resolve(server.addr);
      },
      tlsAddr: () => server?.tlsAddr,
      reopenLogs: () => void observers.reopen(),
      shutdown: () => server?.shutdown() ?? Promise.resolve(),
      close: async () => {
        (server ?? proxy).close();
        await observers.close();
      },
    };
  }
  const pool = await WorkerPool.start(
    options.workers,
    settings,
    options.logLevel,
    onUpstreamFailure,
    undefined,
    metrics,
  );
  pool.acmeChallenge = acmeChallenge;
  return {
    dataPlane: pool,
    listen: () => pool.listen(),
    tlsAddr: () => pool.tlsAddr,
    reopenLogs: () => pool.reopenLogs(),
    shutdown: () => pool.shutdown(),
    close: () => Promise.resolve(),
  };
}

/**
 * `--max-connections`, lowered (with a warning) to what the file-descriptor limit allows, so the
 * proxy never takes the descriptors the admin API and the stores need.
 */
function maxConnections(wanted: number): number {
  const limit = descriptorLimit(wanted);
  const budget = connectionBudget(wanted, limit);
  if (budget < wanted) {
    log("info", "--max-connections lowered to fit the open-file limit (raise it with ulimit -n)", {
      wanted,
      used: budget,
      open_file_limit: limit,
    });
  }
  return budget;
}
