/**
 * Runs the data plane in several worker isolates that share the proxy port (`reusePort`), and
 * presents them to the control plane as one {@link DataPlane}: a config is in force once every
 * worker has compiled it.
 *
 * @module
 */
import type { Config } from "../config/types.ts";
import type { DownServer } from "../config/snapshot.ts";
import type { DataPlane } from "../control/data_plane.ts";
import { log } from "../log.ts";
import type { FromWorker, ToWorker } from "./messages.ts";
import { ListenError, type ProxySettings } from "./server.ts";
import { UpstreamError } from "./transport.ts";
import type { UpstreamFailureListener } from "./request_path.ts";

const WORKER_URL = new URL("./worker.ts", import.meta.url).href;

interface Member {
  readonly worker: Worker;
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
 * ```
 */
export class WorkerPool implements DataPlane {
  /** Where the workers listen. */
  readonly addr: Deno.NetAddr;
  #members: Member[] = [];
  readonly #settings: ProxySettings;
  readonly #logLevel: string;
  readonly #onUpstreamFailure: UpstreamFailureListener;
  readonly #workerUrl: string;
  /** What a replacement worker needs to catch up: the last config and health since. */
  #lastConfig: ToWorker | undefined;
  #health = new Map<string, ToWorker>();
  #stopping = false;
  #restarts = 0;

  private constructor(
    addr: Deno.NetAddr,
    settings: ProxySettings,
    logLevel: string,
    onUpstreamFailure: UpstreamFailureListener,
    workerUrl: string,
  ) {
    this.addr = addr;
    this.#settings = settings;
    this.#logLevel = logLevel;
    this.#onUpstreamFailure = onUpstreamFailure;
    this.#workerUrl = workerUrl;
  }

  /**
   * Starts `count` workers listening on `settings.listen`. Port 0 is resolved first, so that
   * every worker binds the same port. `workerUrl` replaces the worker module (for tests).
   */
  static async start(
    count: number,
    settings: ProxySettings,
    logLevel: string,
    onUpstreamFailure: UpstreamFailureListener,
    workerUrl: string = WORKER_URL,
  ): Promise<WorkerPool> {
    let listen = settings.listen;
    let reserve: Deno.Listener | undefined;
    if (listen.port === 0) {
      // Hold the port until the workers have it, then let go (its queue is empty: nobody knows
      // the port yet).
      try {
        reserve = Deno.listen({ hostname: listen.hostname, port: 0, reusePort: true });
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        throw new ListenError(`cannot listen on ${listen.hostname}:0 (proxy): ${reason}`);
      }
      listen = { ...listen, port: (reserve.addr as Deno.NetAddr).port };
    }
    // One connection count for the whole process: --max-connections is per process.
    const connectionCount = new Int32Array(new SharedArrayBuffer(4));
    const shared: ProxySettings = { ...settings, listen, reusePort: true, connectionCount };
    const pool = new WorkerPool(
      { transport: "tcp", hostname: listen.hostname, port: listen.port },
      shared,
      logLevel,
      onUpstreamFailure,
      workerUrl,
    );
    try {
      for (let i = 0; i < count; i++) {
        const member = pool.#spawn(i);
        pool.#members.push(member);
        await started(member, shared, logLevel);
      }
      return pool;
    } catch (err) {
      pool.terminate();
      throw err;
    } finally {
      reserve?.close();
    }
  }

  /** Workers started again after one failed. */
  get restarts(): number {
    return this.#restarts;
  }

  applyConfig(config: Config, version: number, down: readonly DownServer[]): Promise<void> {
    // Workers walk each backend's schedule together, so weights hold across the whole port.
    const cursors = new Uint32Array(new SharedArrayBuffer(4 * Math.max(1, config.backends.length)));
    // JSON text crosses isolates faster than a structured clone of a large object graph, and
    // each worker parses it in parallel.
    const message: ToWorker = {
      type: "config",
      json: JSON.stringify(config),
      version,
      down,
      cursors,
    };
    this.#lastConfig = message;
    this.#health.clear();
    return Promise.all(this.#members.map((m) => {
      const applied = new Promise<void>((resolve) => m.waiting.set(version, resolve));
      m.worker.postMessage(message);
      return applied;
    })).then(() => {});
  }

  setHealth(backend: string, server: string, up: boolean): void {
    const message: ToWorker = { type: "health", backend, server, up };
    this.#health.set(`${backend}\n${server}`, message);
    for (const m of this.#members) m.worker.postMessage(message);
  }

  /** Stops every worker's listener, waits for requests in flight, and ends the workers. */
  async shutdown(): Promise<void> {
    this.#stopping = true;
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

  #spawn(index: number): Member {
    const worker = new Worker(this.#workerUrl, { type: "module", name: `dynlb-proxy-${index}` });
    const member: Member = { worker, waiting: new Map() };
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
          );
          break;
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
    const member = this.#spawn(index);
    this.#members[index] = member;
    // A config waiting on the dead worker is applied by the new one: hand the wait over.
    for (const [version, resolve] of failed.waiting) member.waiting.set(version, resolve);
    if (this.#lastConfig !== undefined) member.worker.postMessage(this.#lastConfig);
    for (const message of this.#health.values()) member.worker.postMessage(message);
    await started(member, this.#settings, this.#logLevel);
    this.#restarts++;
  }
}

function started(member: Member, settings: ProxySettings, logLevel: string): Promise<Deno.NetAddr> {
  return new Promise((resolve, reject) => {
    const onMessage = (event: MessageEvent<FromWorker>) => {
      const message = event.data;
      if (message.type === "listening") resolve(message.addr);
      else if (message.type === "listen-failed") reject(new ListenError(message.message));
      else return;
      member.worker.removeEventListener("message", onMessage);
    };
    member.worker.addEventListener("message", onMessage);
    member.worker.postMessage({ type: "start", settings, logLevel } satisfies ToWorker);
  });
}
