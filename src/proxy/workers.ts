/**
 * Runs the data plane in several worker isolates that share the proxy port (`reusePort`), and
 * presents them to the control plane as one {@link DataPlane}: a config is in force once every
 * worker has compiled it. Workers open their listeners only when told to ({@link WorkerPool.listen}),
 * so no connection is accepted before the first config is in force everywhere.
 *
 * @module
 */
import { CounterSlots } from "../balance/memory.ts";
import type { Address } from "../cli/options.ts";
import type { Config } from "../config/types.ts";
import type { DownServer } from "../config/snapshot.ts";
import type { DataPlane } from "../control/data_plane.ts";
import { log } from "../log.ts";
import type { FromWorker, ToWorker } from "./messages.ts";
import { ListenError, listenError, type ProxySettings } from "./server.ts";
import { UpstreamError } from "./transport.ts";
import type { UpstreamFailureListener } from "./request_path.ts";
import type { ChallengeLookup } from "../acme/challenge.ts";
import type { ServedCertificate } from "../tls/certificate.ts";
import type { MetricsRegistry } from "../metrics/registry.ts";
import type { StripeBuffers } from "../metrics/stripe.ts";

const WORKER_URL = new URL("./worker.ts", import.meta.url).href;

interface Member {
  readonly worker: Worker;
  /** Its metrics; a replacement worker continues the stripe of the one it replaces. */
  readonly stripe: StripeBuffers | undefined;
  /** Resolvers waiting for this worker to report a version applied. */
  readonly waiting: Map<number, () => void>;
  stopped?: () => void;
}

/**
 * N proxy workers on one port.
 *
 * @example
 * ```ts
 * const pool = await WorkerPool.start(2, settings, "info", onFailure);
 * await pool.applyConfig(config, 1, []);
 * await pool.listen();
 * ```
 */
export class WorkerPool implements DataPlane {
  #addr: Deno.NetAddr | undefined;
  #tlsAddr: Address | undefined;
  #members: Member[] = [];
  readonly #settings: ProxySettings;
  readonly #logLevel: string;
  readonly #onUpstreamFailure: UpstreamFailureListener;
  readonly #workerUrl: string;
  readonly #metrics: MetricsRegistry | undefined;
  /** What a replacement worker needs to catch up: the last config and health since. */
  #lastConfig: ToWorker | undefined;
  #lastCertificates: ToWorker | undefined;
  #health = new Map<string, ToWorker>();
  /** Answers the workers' ACME challenge lookups. */
  acmeChallenge: ChallengeLookup = () => Promise.resolve(null);
  /** Where each config's balancer counters go (kept servers keep theirs). */
  readonly #counterSlots = new CounterSlots(true);
  #stopping = false;
  #restarts = 0;

  private constructor(
    settings: ProxySettings,
    logLevel: string,
    onUpstreamFailure: UpstreamFailureListener,
    workerUrl: string,
    metrics: MetricsRegistry | undefined,
  ) {
    this.#metrics = metrics;
    this.#settings = settings;
    this.#logLevel = logLevel;
    this.#onUpstreamFailure = onUpstreamFailure;
    this.#workerUrl = workerUrl;
  }

  /**
   * Starts `count` workers with their request path ready but no listener: {@link listen} opens
   * them once the first config is in force. `workerUrl` replaces the worker module (for tests).
   * With `metrics`, each worker records into a stripe of it.
   */
  static async start(
    count: number,
    settings: ProxySettings,
    logLevel: string,
    onUpstreamFailure: UpstreamFailureListener,
    workerUrl: string = WORKER_URL,
    metrics?: MetricsRegistry,
  ): Promise<WorkerPool> {
    // One connection count for the whole process: --max-connections is per process.
    const connectionCount = new Int32Array(new SharedArrayBuffer(4));
    const pool = new WorkerPool(
      { ...settings, connectionCount },
      logLevel,
      onUpstreamFailure,
      workerUrl,
      metrics,
    );
    try {
      for (let i = 0; i < count; i++) {
        const member = pool.#spawn(i, metrics?.newStripe());
        pool.#members.push(member);
        await prepared(member, pool.#settings, logLevel);
      }
      return pool;
    } catch (err) {
      pool.terminate();
      throw err;
    }
  }

  /** Where the workers listen (after {@link listen}). */
  get addr(): Deno.NetAddr {
    if (this.#addr === undefined) throw new Error("the worker pool is not listening");
    return this.#addr;
  }

  /** Where the workers' HTTPS listeners are (after {@link listen}, with `--listen-tls`). */
  get tlsAddr(): Deno.NetAddr | undefined {
    const tls = this.#tlsAddr;
    return tls && { transport: "tcp", hostname: tls.hostname, port: tls.port };
  }

  /**
   * Opens every worker's listeners on `settings.listen` (and `settings.listenTls`). Port 0 is
   * resolved first, so that every worker binds the same port. Without `settings.reusePort` the
   * port must be free: workers share it among themselves, never with another process.
   */
  async listen(): Promise<Deno.NetAddr> {
    const reserved: Deno.Listener[] = [];
    const resolve = (address: Address, what: string): Address => {
      try {
        if (address.port === 0) {
          // Hold the port until the workers have it, then let go (its queue is empty: nobody
          // knows the port yet).
          const reserve = Deno.listen({ hostname: address.hostname, port: 0, reusePort: true });
          reserved.push(reserve);
          return { ...address, port: (reserve.addr as Deno.NetAddr).port };
        }
        if (!this.#settings.reusePort) {
          // Workers share the port among themselves (SO_REUSEPORT), so their binds would also
          // succeed beside another process that set it. A socket without it fails if anyone
          // holds the port. (Deno reads /proc/net/tcp only with --allow-all; for the instant the
          // probe listens, a connection to the port is reset instead of refused.)
          Deno.listen({ hostname: address.hostname, port: address.port }).close();
        }
        return address;
      } catch (err) {
        throw listenError(address, what, err);
      }
    };
    try {
      const listen = resolve(this.#settings.listen, "proxy");
      const tls = this.#settings.listenTls && resolve(this.#settings.listenTls, "https proxy");
      for (const member of this.#members) await listening(member, listen, tls);
      this.#tlsAddr = tls;
      this.#addr = { transport: "tcp", hostname: listen.hostname, port: listen.port };
      return this.#addr;
    } finally {
      for (const reserve of reserved) reserve.close();
    }
  }

  /** Workers started again after one failed. */
  get restarts(): number {
    return this.#restarts;
  }

  applyConfig(config: Config, version: number, down: readonly DownServer[]): Promise<void> {
    // Workers walk each backend's schedule together, so weights hold across the whole port, and
    // see each other's requests in flight (least_conn, ewma).
    const counters = this.#counterSlots.place(config);
    // JSON text crosses isolates faster than a structured clone of a large object graph, and
    // each worker parses it in parallel.
    const message: ToWorker = {
      type: "config",
      json: JSON.stringify(config),
      version,
      down,
      counters,
      ids: this.#metrics?.assign(config),
    };
    this.#lastConfig = message;
    this.#health.clear();
    return Promise.all(this.#members.map((m) => {
      const applied = new Promise<void>((resolve) => m.waiting.set(version, resolve));
      m.worker.postMessage(message);
      return applied;
    })).then(() => {});
  }

  applyCertificates(certificates: readonly ServedCertificate[]): void {
    const message: ToWorker = { type: "certificates", certificates };
    this.#lastCertificates = message;
    for (const m of this.#members) m.worker.postMessage(message);
  }

  setHealth(backend: string, server: string, up: boolean): void {
    const message: ToWorker = { type: "health", backend, server, up };
    this.#health.set(`${backend}\n${server}`, message);
    for (const m of this.#members) m.worker.postMessage(message);
  }

  /** Reopens every worker's access log (SIGHUP). */
  reopenLogs(): void {
    for (const m of this.#members) m.worker.postMessage({ type: "reopen-log" } satisfies ToWorker);
  }

  /**
   * Stops every worker's listener, waits for requests in flight, and ends the workers. Every
   * worker stops accepting before any closes a connection: a client that reconnects then lands
   * on the process that replaces this one, never on a worker about to close.
   */
  async shutdown(): Promise<void> {
    this.#stopping = true;
    await Promise.all(
      this.#members.map((m) => reply(m, { type: "stop-accepting" }, "stopped-accepting")),
    );
    await Promise.all(this.#members.map((m) =>
      new Promise<void>((resolve) => {
        m.stopped = resolve;
        m.worker.postMessage({ type: "shutdown" } satisfies ToWorker);
      })
    ));
    this.terminate();
  }

  /** Ends every worker at once. */
  terminate(): void {
    this.#stopping = true;
    for (const m of this.#members) m.worker.terminate();
  }

  #spawn(index: number, stripe: StripeBuffers | undefined): Member {
    const worker = new Worker(this.#workerUrl, { type: "module", name: `dynlb-proxy-${index}` });
    const member: Member = { worker, stripe, waiting: new Map() };
    worker.addEventListener("message", (event: MessageEvent<FromWorker>) => {
      const message = event.data;
      switch (message.type) {
        case "applied":
          member.waiting.get(message.version)?.();
          member.waiting.delete(message.version);
          break;
        case "upstream-failure":
          this.#onUpstreamFailure(
            message.backend,
            message.server,
            new UpstreamError(message.failure, message.message, false),
            message.at,
          );
          break;
        case "acme-challenge": {
          const { id, token } = message;
          this.acmeChallenge(token).catch(() => null).then((answer) =>
            worker.postMessage({ type: "acme-answer", id, answer } satisfies ToWorker)
          );
          break;
        }
        case "stopped":
          member.stopped?.();
          break;
      }
    });
    worker.addEventListener("error", (event) => {
      event.preventDefault();
      this.#replace(index, member, event.message).catch((err) =>
        log("error", "cannot restart proxy worker", { worker: index, error: String(err) })
      );
    });
    return member;
  }

  /**
   * A worker died of an uncaught error: its listener went with it (the others keep the port).
   * A new one gets the last config and health before it starts listening, so it never answers
   * from an empty table.
   */
  async #replace(index: number, failed: Member, reason: string): Promise<void> {
    if (this.#stopping || this.#members[index] !== failed) return;
    log("error", "proxy worker failed, starting a new one", { worker: index, error: reason });
    failed.worker.terminate();
    const member = this.#spawn(index, failed.stripe);
    this.#members[index] = member;
    // A config waiting on the dead worker is applied by the new one: hand the wait over.
    for (const [version, resolve] of failed.waiting) member.waiting.set(version, resolve);
    if (this.#lastConfig !== undefined) member.worker.postMessage(this.#lastConfig);
    if (this.#lastCertificates !== undefined) member.worker.postMessage(this.#lastCertificates);
    for (const message of this.#health.values()) member.worker.postMessage(message);
    await prepared(member, this.#settings, this.#logLevel);
    if (this.#addr !== undefined) await listening(member, this.#addr, this.#tlsAddr);
    this.#restarts++;
  }
}

function reply(member: Member, message: ToWorker, ok: FromWorker["type"]): Promise<FromWorker> {
  return new Promise((resolve, reject) => {
    const onMessage = (event: MessageEvent<FromWorker>) => {
      const message = event.data;
      if (message.type === ok) resolve(message);
      else if (message.type === "listen-failed") reject(new ListenError(message.message));
      else return;
      member.worker.removeEventListener("message", onMessage);
    };
    member.worker.addEventListener("message", onMessage);
    member.worker.postMessage(message);
  });
}

async function prepared(member: Member, settings: ProxySettings, logLevel: string): Promise<void> {
  await reply(member, { type: "start", settings, logLevel, stripe: member.stripe }, "prepared");
}

async function listening(member: Member, address: Address, tlsAddress?: Address): Promise<void> {
  await reply(member, { type: "listen", address, tlsAddress }, "listening");
}
