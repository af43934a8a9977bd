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
import type { UpstreamFailureListener } from "./handler.ts";

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
  #members: Member[];

  private constructor(addr: Deno.NetAddr, members: Member[]) {
    this.addr = addr;
    this.#members = members;
  }

  /**
   * Starts `count` workers listening on `settings.listen`. Port 0 is resolved first, so that
   * every worker binds the same port.
   */
  static async start(
    count: number,
    settings: ProxySettings,
    logLevel: string,
    onUpstreamFailure: UpstreamFailureListener,
  ): Promise<WorkerPool> {
    let listen = settings.listen;
    let reserve: Deno.Listener | undefined;
    if (listen.port === 0) {
      // Hold the port until the workers have it, then let go (its queue is empty: nobody knows
      // the port yet).
      reserve = Deno.listen({ hostname: listen.hostname, port: 0, reusePort: true });
      listen = { ...listen, port: (reserve.addr as Deno.NetAddr).port };
    }
    const members: Member[] = [];
    try {
      let addr: Deno.NetAddr | undefined;
      for (let i = 0; i < count; i++) {
        const member = spawn(onUpstreamFailure);
        members.push(member);
        addr = await started(member, { ...settings, listen, reusePort: true }, logLevel);
      }
      return new WorkerPool(addr!, members);
    } catch (err) {
      for (const m of members) m.worker.terminate();
      throw err;
    } finally {
      reserve?.close();
    }
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
    return Promise.all(this.#members.map((m) => {
      const applied = new Promise<void>((resolve) => m.waiting.set(version, resolve));
      m.worker.postMessage(message);
      return applied;
    })).then(() => {});
  }

  setHealth(backend: string, server: string, up: boolean): void {
    const message: ToWorker = { type: "health", backend, server, up };
    for (const m of this.#members) m.worker.postMessage(message);
  }

  /** Stops every worker's listener, waits for requests in flight, and ends the workers. */
  async shutdown(): Promise<void> {
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
    for (const m of this.#members) m.worker.terminate();
  }
}

function spawn(onUpstreamFailure: UpstreamFailureListener): Member {
  const worker = new Worker(WORKER_URL, { type: "module", name: "dynlb-proxy" });
  const member: Member = { worker, waiting: new Map() };
  worker.addEventListener("message", (event: MessageEvent<FromWorker>) => {
    const message = event.data;
    switch (message.type) {
      case "applied":
        member.waiting.get(message.version)?.();
        member.waiting.delete(message.version);
        break;
      case "upstream-failure":
        onUpstreamFailure(
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
    log("error", "proxy worker failed", { error: event.message });
  });
  return member;
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
