/**
 * Configuration in one Redis string key (the seed's `redis_key`, default `balancer`).
 *
 * - `save` runs `SET key text` and `PUBLISH <key>:changed {revision, instance}` in one
 *   MULTI/EXEC, so every instance's subscriber hears about the change within milliseconds.
 * - `watch` also polls, because a plain `redis-cli SET` publishes nothing. The poll asks Redis
 *   for the SHA-1 of the stored value (a small Lua script) instead of transferring the whole
 *   document every second; when scripting is not allowed it falls back to waking the control
 *   plane on every tick, which then GETs and compares.
 * - The revision is the SHA-1 hex of the stored bytes, computed by Redis in `load` too, so
 *   the poll and `load` always agree.
 * - The connection reconnects forever with a capped backoff. Commands are never queued while
 *   disconnected (`disableOfflineQueue`), so `save`/`load` fail at once with
 *   {@link StoreUnavailableError} instead of hanging, which the admin API turns into a 503.
 *
 * @module
 */
import { isIP } from "node:net";
import { formatHostPort } from "../address.ts";
import { createClient, ErrorReply, WatchError } from "redis";
import { log } from "../log.ts";
import {
  type ConfigHistory,
  type ConfigStore,
  type SaveOptions,
  StoreConflictError,
  type StoredConfig,
  StoreUnavailableError,
} from "./store.ts";
import { hexDigest } from "../digest.ts";
import { RedisHistory } from "./redis_history.ts";
import {
  type RedisConnectOptions,
  type RedisEndpoint,
  type RedisNode,
  resolveEndpoint,
} from "./redis_options.ts";
import { askSentinels } from "./sentinel.ts";
import { errorText } from "../error_text.ts";

/**
 * How to reach the Redis store.
 *
 * @example
 * ```ts
 * const options: RedisStoreOptions = { url: "rediss://:secret@redis.internal:6380/2", key: "lb" };
 * ```
 */
export interface RedisStoreOptions extends RedisConnectOptions {
  /** The key holding the config text; default `balancer` (as in the seed). */
  key?: string;
  /** Poll interval of `watch`, milliseconds; default 1000 (the seed polls every second). */
  pollIntervalMs?: number;
  /** How long `load`/`save` wait for a reply (or for the first connection), ms; default 2000. */
  commandTimeoutMs?: number;
  /**
   * Sentinels naming the master (`SENTINEL get-master-addr-by-name`); then host, port and url
   * are not used. The master is asked for at start and every `pollIntervalMs`, and the
   * connections move when the Sentinels promote another.
   */
  sentinels?: readonly RedisNode[];
  /** The master's name at the Sentinels; default `mymaster`. */
  sentinelName?: string;
}

type Endpoint = RedisEndpoint;

/** The longest pause between reconnection attempts. */
const MAX_BACKOFF_MS = 5000;

// Returns [sha1hex, value] so the revision is computed where the bytes are; one round trip.
const LOAD_SCRIPT = "local v = redis.call('GET', KEYS[1]) " +
  "if not v then return false end return {redis.sha1hex(v), v}";
// The poll's cheap probe: 40 bytes instead of the whole document.
const REVISION_SCRIPT = "local v = redis.call('GET', KEYS[1]) " +
  "if not v then return false end return redis.sha1hex(v)";

type Client = ReturnType<typeof createClient>;
type Timer = ReturnType<typeof setTimeout>;

/**
 * A {@link ConfigStore} backed by one Redis string key, with pub/sub change notifications.
 *
 * @example
 * ```ts
 * const store = new RedisStore({ host: "127.0.0.1", port: 6379, key: "balancer" });
 * const stored = await store.load(); // null when the key does not exist
 * const ac = new AbortController();
 * store.watch(() => console.log("maybe changed"), ac.signal);
 * await store.save('{"backends":[],"hosts":[]}');
 * ac.abort();
 * await store.close();
 * ```
 */
export class RedisStore implements ConfigStore {
  readonly kind = "redis";
  readonly location: string;
  readonly #key: string;
  /** History: a list `KEY:history` of entries beside the config key (see `redis_history.ts`). */
  readonly history: ConfigHistory;
  readonly #channel: string;
  #endpoint: Endpoint;
  readonly #pollIntervalMs: number;
  readonly #timeoutMs: number;
  readonly #instance = crypto.randomUUID();
  /** The connection to the master; replaced when the Sentinels name another. */
  #client: Client;
  #subscriber: Client | null = null;
  /** Whether a watcher wants the pub/sub connection. */
  #subscribing = false;
  readonly #sentinels?: { readonly nodes: readonly RedisNode[]; readonly name: string };
  #sentinelTimer: Timer | undefined;
  /** False while the Sentinels have not named a master yet (nothing to connect to). */
  #masterKnown = true;
  /** `connecting` until the first connection succeeds or fails. */
  #state: "connecting" | "up" | "down" = "connecting";
  #readyWaiters = new Set<() => void>();
  /** The revision this instance last loaded or saved; a poll only wakes on a difference. */
  #lastRevision: string | null | undefined = undefined;
  /** `false` once Redis refused EVAL (ACL, disabled scripting): then plain GET everywhere. */
  #scripting = true;
  #watchers = new Set<() => void>();
  #cleanups = new Set<() => void>();
  #closed = false;

  /** Whether Redis is connected. */
  get reachable(): boolean {
    return this.#state === "up";
  }

  constructor(options: RedisStoreOptions = {}) {
    this.#endpoint = resolveEndpoint(options);
    this.#key = options.key ?? "balancer";
    this.#channel = `${this.#key}:changed`;
    this.history = new RedisHistory(this.#key, (fn, isWrite) => this.#command(fn, isWrite));
    this.#pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.#timeoutMs = options.commandTimeoutMs ?? 2000;
    const { host, port, db, tls } = this.#endpoint;
    const scheme = tls ? "rediss" : "redis";
    if (options.sentinels !== undefined && options.sentinels.length > 0) {
      const name = options.sentinelName ?? "mymaster";
      this.#sentinels = { nodes: options.sentinels, name };
      this.#masterKnown = false;
      const nodes = options.sentinels.map((n) => formatHostPort(n.host, n.port)).join(",");
      this.location = `${scheme}+sentinel://${nodes}/${name}/${db} key=${this.#key}`;
    } else {
      this.location = `${scheme}://${formatHostPort(host, port)}/${db} key=${this.#key}`;
    }
    // With Sentinels, a placeholder until the master is known: it is never connected, so
    // commands wait for the first connection as they do while a plain Redis is unreachable.
    this.#client = this.#createClient();
    if (this.#sentinels === undefined) this.#connect(this.#client);
    else void this.#followSentinels();
  }

  /** Wires a new master connection and starts it (never awaited: with Redis down it does not settle). */
  #connect(client: Client): void {
    client.on("error", (err: unknown) => {
      if (client === this.#client) this.#onDown(err);
    });
    client.on("ready", () => {
      if (client === this.#client) this.#onUp();
    });
    client.connect().catch(() => {});
  }

  /**
   * Asks the Sentinels for the master now and every poll interval; when they name another
   * address, moves both connections there (the `ready` of the new one resynchronises).
   */
  async #followSentinels(): Promise<void> {
    const sentinels = this.#sentinels!;
    let current: string | null = null;
    let unreachableLogged = false;
    const check = async () => {
      const master = await askSentinels(sentinels.nodes, sentinels.name, this.#timeoutMs);
      if (this.#closed) return;
      if (master === null) {
        if (!unreachableLogged) {
          log("warn", "redis sentinels name no master", { location: this.location });
        }
        unreachableLogged = true;
        if (this.#state === "connecting") this.#onDown(new Error("no master from the sentinels"));
      } else {
        unreachableLogged = false;
        const address = formatHostPort(master.host, master.port);
        if (address !== current) {
          if (current !== null) {
            log("warn", "redis sentinels name a new master", { from: current, to: address });
          }
          current = address;
          this.#masterKnown = true;
          this.#endpoint = { ...this.#endpoint, host: master.host, port: master.port };
          // The new connection's `ready` then logs and resynchronises like a reconnection.
          if (this.#state === "up") this.#state = "down";
          const old = this.#client;
          this.#client = this.#createClient();
          this.#connect(this.#client);
          const subscriber = this.#subscriber;
          this.#subscriber = null;
          await Promise.all([closeClient(old), subscriber && closeClient(subscriber)]);
          if (this.#subscribing) this.#ensureSubscriber();
        }
      }
      if (!this.#closed) this.#sentinelTimer = setTimeout(check, this.#pollIntervalMs);
    };
    await check();
  }

  async load(): Promise<StoredConfig | null> {
    const result = await this.#command(async (client) => {
      if (this.#scripting) {
        try {
          const reply = await client.eval(LOAD_SCRIPT, { keys: [this.#key] });
          if (reply === null) return null;
          const [revision, text] = reply as unknown as [string, string];
          return { text, revision };
        } catch (err) {
          if (!this.#scriptingRefused(err)) throw err;
        }
      }
      const text = await client.get(this.#key);
      return text === null ? null : { text, revision: await hexDigest("SHA-1", text) };
    });
    this.#lastRevision = result?.revision ?? null;
    return result;
  }

  async save(text: string, options: SaveOptions = {}): Promise<StoredConfig> {
    const revision = await hexDigest("SHA-1", text);
    const payload = JSON.stringify({ revision, instance: this.#instance });
    const write = (client: Client) =>
      client.multi().set(this.#key, text).publish(this.#channel, payload).exec();
    await this.#command(async (client) => {
      if (options.ifRevision === undefined) return await write(client);
      // WATCH makes EXEC fail if anyone writes the key between this read and the write.
      await client.watch(this.#key);
      const current = await client.get(this.#key);
      const currentRevision = current === null ? null : await hexDigest("SHA-1", current);
      if (currentRevision !== options.ifRevision) {
        await client.unwatch();
        throw new StoreConflictError(`${this.location} changed since it was loaded`);
      }
      try {
        return await write(client);
      } catch (err) {
        if (err instanceof WatchError) {
          throw new StoreConflictError(`${this.location} changed while saving`);
        }
        throw err;
      }
    }, true);
    this.#lastRevision = revision;
    return { text, revision };
  }

  /**
   * Sends one raw command on this store's connection (for records beside the config, such as
   * ACME state), within the command timeout; fails at once while disconnected.
   */
  sendCommand(args: string[]): Promise<unknown> {
    return this.#command((client) => client.sendCommand(args));
  }

  /** The key holding the config; related records are named after it. */
  get key(): string {
    return this.#key;
  }

  watch(onChange: () => void, signal: AbortSignal): Promise<void> {
    if (signal.aborted || this.#closed) return Promise.resolve();
    let ended = false;
    const notify = () => {
      if (ended) return;
      try {
        onChange();
      } catch (err) {
        log("error", "redis store watcher failed", { error: String(err) });
      }
    };
    let timer: Timer | undefined;
    let polling = false;
    const stopped = Promise.withResolvers<void>();
    const poll = async () => {
      polling = true;
      try {
        if (this.#state === "up" && (await this.#changedSinceLastSeen())) notify();
      } catch {
        // Unreachable: the error listener logs the state change, reconnection resyncs.
      } finally {
        polling = false;
        // Re-armed only after the previous poll finished: a slow Redis never piles polls up.
        if (!ended) timer = setTimeout(poll, this.#pollIntervalMs);
        else stopped.resolve();
      }
    };
    timer = setTimeout(poll, this.#pollIntervalMs);
    this.#watchers.add(notify);
    const cleanup = () => {
      ended = true;
      clearTimeout(timer);
      this.#watchers.delete(notify);
      this.#cleanups.delete(cleanup);
      signal.removeEventListener("abort", cleanup);
      if (!polling) stopped.resolve();
    };
    this.#cleanups.add(cleanup);
    signal.addEventListener("abort", cleanup, { once: true });
    this.#subscribing = true;
    this.#ensureSubscriber();
    return stopped.promise;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const cleanup of [...this.#cleanups]) cleanup();
    for (const wake of this.#readyWaiters) wake();
    clearTimeout(this.#sentinelTimer);
    await Promise.all([
      closeClient(this.#client),
      this.#subscriber && closeClient(this.#subscriber),
    ]);
  }

  #createClient(): Client {
    const { host, port, username, password, db, tls } = this.#endpoint;
    const reconnectStrategy = (retries: number) =>
      Math.min(100 * 2 ** Math.min(retries, 10), MAX_BACKOFF_MS);
    const socket = tls
      ? {
        host,
        port,
        tls: true as const,
        // SNI carries host names only; node:tls refuses an IP address there.
        ...(isIP(host) === 0 ? { servername: host } : {}),
        connectTimeout: 3000,
        reconnectStrategy,
      }
      : { host, port, connectTimeout: 3000, reconnectStrategy };
    return createClient({
      socket,
      username,
      password,
      database: db,
      disableOfflineQueue: true,
      // Finds a silently dead connection (a NAT or firewall dropped it) within seconds.
      pingInterval: 10_000,
    });
  }

  /** One subscriber connection per store, shared by all watchers; node-redis resubscribes. */
  #ensureSubscriber(): void {
    if (this.#subscriber || this.#closed || !this.#masterKnown) return;
    const subscriber = this.#client.duplicate({ pingInterval: undefined });
    this.#subscriber = subscriber;
    // Its failures mirror the main connection's, which already logs them.
    subscriber.on("error", () => {});
    // Subscribe on the first `ready`; after that node-redis resubscribes on every reconnect.
    let subscribed = false;
    subscriber.on("ready", () => {
      if (subscribed || this.#closed) return;
      subscribed = true;
      subscriber.subscribe(this.#channel, (message: string) => this.#onMessage(message)).catch(
        () => (subscribed = false),
      );
    });
    subscriber.connect().catch(() => {});
  }

  #onMessage(message: string): void {
    let revision: unknown;
    try {
      revision = (JSON.parse(message) as { revision?: unknown }).revision;
    } catch {
      // A foreign publisher: treat it as "something changed".
    }
    if (typeof revision === "string" && revision === this.#lastRevision) return;
    for (const notify of [...this.#watchers]) notify();
  }

  #onDown(err: unknown): void {
    if (this.#closed || this.#state === "down") return;
    this.#state = "down";
    log("warn", "redis store unreachable", { location: this.location, error: errorText(err) });
    for (const wake of this.#readyWaiters) wake();
  }

  #onUp(): void {
    const wasDown = this.#state === "down";
    this.#state = "up";
    for (const wake of this.#readyWaiters) wake();
    if (!wasDown || this.#closed) return;
    log("info", "redis store reconnected", { location: this.location });
    // Changes made while we were away published nothing we could hear: resynchronise.
    for (const notify of [...this.#watchers]) notify();
  }

  /** Runs `fn` on a ready client within the command timeout, mapping failures. */
  async #command<T>(fn: (client: Client) => Promise<T>, isWrite = false): Promise<T> {
    if (this.#closed) throw new StoreUnavailableError("redis store is closed");
    if (this.#state === "connecting") await this.#waitForFirstConnection();
    if (!this.#client.isReady) {
      throw new StoreUnavailableError(`redis store unreachable (${this.location})`);
    }
    let timer: Timer | undefined;
    const timeout = new Promise<never>((_, reject) => {
      // A hung Redis (stopped, overloaded) may still apply a timed-out write later; the poll
      // then reports it like any other change.
      const note = isWrite ? "; the write may still be applied" : "";
      timer = setTimeout(
        () => reject(new StoreUnavailableError(`redis store timed out (${this.location})${note}`)),
        this.#timeoutMs,
      );
    });
    const work = fn(this.#client);
    work.catch(() => {}); // a late rejection after the timeout must not go unhandled
    try {
      return await Promise.race([work, timeout]);
    } catch (err) {
      if (err instanceof StoreUnavailableError || err instanceof StoreConflictError) throw err;
      throw new StoreUnavailableError(`redis store failed: ${errorText(err)}`, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  #waitForFirstConnection(): Promise<void> {
    return new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        this.#readyWaiters.delete(wake);
        resolve();
      };
      const timer: Timer = setTimeout(wake, this.#timeoutMs);
      this.#readyWaiters.add(wake);
    });
  }

  async #changedSinceLastSeen(): Promise<boolean> {
    if (!this.#scripting) return true;
    try {
      const reply = await this.#command((client) =>
        client.eval(REVISION_SCRIPT, { keys: [this.#key] })
      );
      const revision = reply === null ? null : String(reply);
      return revision !== this.#lastRevision;
    } catch (err) {
      if (this.#scriptingRefused((err as Error).cause)) return true;
      throw err;
    }
  }

  #scriptingRefused(err: unknown): boolean {
    if (!(err instanceof ErrorReply)) return false;
    if (this.#scripting) {
      this.#scripting = false;
      log("info", "redis store: EVAL refused, polling with GET", { error: err.message });
    }
    return true;
  }
}

async function closeClient(client: Client): Promise<void> {
  try {
    if (client.isReady) {
      await client.close();
      return;
    }
  } catch {
    // Fall through: a failed graceful close still has to release the socket.
  }
  try {
    client.destroy();
  } catch {
    // Already closed.
  }
}
