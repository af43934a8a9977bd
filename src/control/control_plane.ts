/**
 * The control plane: the one place where configuration changes are decided. It takes config
 * text from the admin API and from the store, validates it, numbers it, hands the data plane an
 * immutable config to compile, and keeps the store and memory rules of the seed:
 *
 * - `POST /config` without `x-save` changes memory only, and that config stays in force until
 *   the store itself changes (a new revision);
 * - with `x-save`, the store is written first and the config applied only if that worked;
 * - a stored value that is not a valid config is logged once and never replaces a good one.
 *
 * Changes are applied one at a time, in arrival order.
 *
 * @module
 */
import { formatIssues, parseConfig } from "../config/schema.ts";
import type { Config, ConfigIssue, ParseResult } from "../config/types.ts";
import type { DownServer } from "../config/snapshot.ts";
import type { ConfigStore, HistoryEntry, HistorySource, StoredConfig } from "../store/store.ts";
import { log } from "../log.ts";
import type { DataPlane } from "./data_plane.ts";
import { hexDigest } from "../digest.ts";
import { redactSecrets } from "../config/redact.ts";
import { type OwnListener, selfReferences } from "../config/self.ts";

/** Where the running config came from. */
export type ConfigSource = HistorySource | "empty";

/** What the control plane needs from health checking (see `src/health/`). */
export interface HealthWatcher {
  /** Reconciles checks with a new config's backends. */
  update(backends: Config["backends"]): void;
  /** Servers currently down, per backend, for compiling a new snapshot. */
  down(): DownServer[];
}

/**
 * The running config as `GET /config` shows it. The document is kept as JSON text, not as
 * objects: a 100,000-host config is ~30 MB of text but several times that as objects, and only
 * the admin API ever reads it back.
 *
 * @example
 * ```ts
 * const { version, hash, saved } = control.running;
 * JSON.stringify(control.running); // the GET /config body
 * ```
 */
export class RunningConfig {
  /** Increases by one with every config applied by this instance; 0 before the first. */
  readonly version: number;
  /** SHA-256 of the config's canonical JSON: equal on every instance running the same config. */
  readonly hash: string;
  readonly source: ConfigSource;
  /** Whether the running config is the stored one (false after a memory-only POST). */
  readonly saved: boolean;
  /** ISO time it was applied. */
  readonly applied_at: string;
  /** The document as posted or stored (without defaults filled in), as canonical JSON. */
  readonly text: string;

  constructor(
    fields: Omit<RunningConfig, "config" | "toJSON">,
  ) {
    this.version = fields.version;
    this.hash = fields.hash;
    this.source = fields.source;
    this.saved = fields.saved;
    this.applied_at = fields.applied_at;
    this.text = fields.text;
  }

  /** The document, parsed afresh. */
  get config(): unknown {
    return JSON.parse(this.text);
  }

  /** The `GET /config` body. */
  toJSON(): Record<string, unknown> {
    const { version, hash, source, saved, applied_at } = this;
    return { version, hash, source, saved, applied_at, config: redactSecrets(this.config) };
  }
}

/** The outcome of a proposed config. */
export type ApplyResult =
  | {
    readonly ok: true;
    readonly running: RunningConfig;
    /** Things that work but deserve attention (a certificate about to expire). */
    readonly warnings: readonly ConfigIssue[];
  }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] };

/** Hooks for things that follow a config (the last-good cache of remote stores). */
export interface ControlPlaneOptions {
  readonly store: ConfigStore;
  readonly dataPlane: DataPlane;
  readonly health?: HealthWatcher;
  /** Called with the text of every valid config loaded from the store. */
  readonly onStoredConfig?: (text: string) => void;
  /** dynlb's own listeners, which no server of a config may be (read at each validation). */
  readonly listeners?: () => readonly OwnListener[];
  /** Called for every config proposed: where it came from, whether it was applied, its version. */
  readonly onReload?: (source: ConfigSource, ok: boolean, version: number) => void;
  /** Applied configs kept in the store's history (default 20; 0: none recorded). */
  readonly historySize?: number;
  /** Called with every config put in force (TLS certificates follow it). */
  readonly onApplied?: (config: Config) => void;
}

/** How a config is proposed through the admin API. */
export interface ProposeOptions {
  /** Write it to the store first (`x-save`). */
  readonly save: boolean;
  /**
   * `If-Match`: apply only if the running config's hash is one of these ETags (`*`: any); with
   * `save`, the store must also still hold what this instance last loaded or saved.
   */
  readonly ifMatch?: string;
  /** `admin` (default) or `rollback`. */
  readonly source?: "admin" | "rollback";
}

/**
 * A conditional change (`If-Match`) whose condition no longer holds: nothing changed. The admin
 * API answers 412.
 *
 * @example
 * ```ts
 * await control.propose(text, { save: true, ifMatch: '"9f2c…"' }).catch((err) => {
 *   if (err instanceof ConfigConflictError) console.error(err.message);
 * });
 * ```
 */
export class ConfigConflictError extends Error {
  override name = "ConfigConflictError";
}

const EMPTY_CONFIG: Config = { backends: [], hosts: [] };

/**
 * Validates, versions and applies configuration from the admin API and the store.
 *
 * @example
 * ```ts
 * const control = new ControlPlane({ store, dataPlane: router });
 * await control.start();
 * const result = await control.propose(text, { save: true });
 * ```
 */
export class ControlPlane {
  readonly store: ConfigStore;
  #dataPlane: DataPlane;
  #health?: HealthWatcher;
  #onStoredConfig?: (text: string) => void;
  #listeners: () => readonly OwnListener[];
  #historySize: number;
  #onApplied?: (config: Config) => void;
  #onReload?: (source: ConfigSource, ok: boolean, version: number) => void;
  #running = new RunningConfig({
    version: 0,
    hash: "",
    source: "empty",
    saved: false,
    applied_at: new Date().toISOString(),
    text: JSON.stringify(EMPTY_CONFIG),
  });
  /** The store revision last acted on: a memory-only config holds until this changes. */
  #storeRevision: string | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  #watch = new AbortController();
  /** Resolves once the store's watch has stopped (see {@link ControlPlane.stop}). */
  #watching: Promise<void> = Promise.resolve();
  /** The queued sync that later calls fold into. */
  #pendingSync: Promise<void> | undefined;
  /** A config being put in force: part of the data plane may already route by it. */
  #applying: Promise<unknown> | undefined;

  constructor(options: ControlPlaneOptions) {
    this.store = options.store;
    this.#dataPlane = options.dataPlane;
    this.#health = options.health;
    this.#onStoredConfig = options.onStoredConfig;
    this.#listeners = options.listeners ?? (() => []);
    this.#historySize = options.historySize ?? 20;
    this.#onApplied = options.onApplied;
    this.#onReload = options.onReload;
  }

  /**
   * The config in force, or the one before it while a change is being put in force (see
   * {@link ControlPlane.settled}).
   */
  get running(): RunningConfig {
    return this.#running;
  }

  /**
   * The config in force once no change is half-applied: what `GET /config` answers. With worker
   * isolates, one may already route by a new config while another still compiles it, and
   * `running` still names the previous one; an operator who saw the new routing must not then
   * read the old hash. This waits for the data plane only, never for a store.
   *
   * @example
   * ```ts
   * const { hash } = await control.settled(); // never older than what any request was routed by
   * ```
   */
  async settled(): Promise<RunningConfig> {
    for (let applying = this.#applying; applying !== undefined; applying = this.#applying) {
      await applying.catch(() => {});
      if (this.#applying === applying) break; // finished; only its bookkeeping is left
    }
    return this.#running;
  }

  /**
   * Loads and applies the stored config. Rejects when the stored config is invalid (a start-up
   * error) and with `StoreUnavailableError` when the store cannot be reached; resolves `false`
   * when nothing is stored yet.
   */
  async start(): Promise<boolean> {
    const stored = await this.store.load();
    if (stored === null) {
      await this.#apply(EMPTY_CONFIG, EMPTY_CONFIG, "empty", false);
      return false;
    }
    const parsed = this.#parse(stored.text, true);
    if (!parsed.ok) throw new InvalidStoredConfigError(this.store.location, parsed.issues);
    this.#storeRevision = stored.revision;
    const running = await this.#apply(parsed.config, parsed.document, "store", true);
    await this.#record(running, { unlessNewest: true });
    this.#onStoredConfig?.(stored.text);
    return true;
  }

  /**
   * Applies a config that did not come from the store (the last-good cache when the store was
   * unreachable at start-up). The next store change replaces it.
   */
  startFrom(text: string, source: ConfigSource): Promise<ApplyResult> {
    return this.#serial(async () => {
      const parsed = this.#parse(text, true);
      if (!parsed.ok) return parsed;
      const running = await this.#apply(parsed.config, parsed.document, source, false);
      if (source !== "empty") await this.#record(running, { unlessNewest: true });
      return { ok: true, running, warnings: parsed.warnings };
    });
  }

  /** Starts following the store's changes. */
  watch(): void {
    this.#watching = this.store.watch(() => void this.sync(), this.#watch.signal);
  }

  /**
   * Validates `text` and applies it; with `save`, writes it to the store first (a store error
   * rejects and changes nothing). With `ifMatch`, rejects with {@link ConfigConflictError} (or
   * `StoreConflictError` from the store) when the condition fails.
   */
  propose(text: string, options: ProposeOptions): Promise<ApplyResult> {
    return this.#serial(async () => {
      const parsed = this.#parse(text);
      if (!parsed.ok) {
        this.#onReload?.(options.source ?? "admin", false, 0);
        return parsed;
      }
      if (options.ifMatch !== undefined && !etagMatches(options.ifMatch, this.#running.hash)) {
        throw new ConfigConflictError(
          `the running config is ${etag(this.#running.hash)}, not ${options.ifMatch.trim()}`,
        );
      }
      const document = parsed.document;
      const source = options.source ?? "admin";
      let stored: StoredConfig | undefined;
      if (options.save) {
        // Recorded before the store changes, so instances that apply the change from the store
        // find it already recorded and do not record it again.
        const canonical = JSON.stringify(document);
        const entry: HistoryEntry = {
          version: this.#running.version + 1,
          hash: await hexDigest("SHA-256", canonical),
          applied_at: new Date().toISOString(),
          source,
          saved: true,
        };
        const recorded = await this.#recordEntry(entry, canonical);
        try {
          stored = await this.store.save(JSON.stringify(document, null, 2) + "\n", {
            ifRevision: options.ifMatch === undefined ? undefined : this.#storeRevision,
          });
        } catch (err) {
          if (recorded !== undefined) await this.store.history?.discard(recorded).catch(() => {});
          throw err;
        }
      }
      const running = await this.#apply(parsed.config, document, source, options.save);
      // Only once applied: if applying failed, the next sync applies what was stored.
      if (stored !== undefined) this.#storeRevision = stored.revision;
      else await this.#record(running, { unlessNewest: false });
      return { ok: true, running, warnings: parsed.warnings };
    });
  }

  /**
   * Checks the store for a new revision and applies it if valid. Calls that arrive while one is
   * queued are folded into it (and resolve with it).
   */
  sync(): Promise<void> {
    if (this.#pendingSync !== undefined) return this.#pendingSync;
    const sync = this.#serial(async () => {
      this.#pendingSync = undefined;
      let stored: StoredConfig | null;
      try {
        stored = await this.store.load();
      } catch {
        return; // The store logs its own reachability changes.
      }
      if (stored === null || stored.revision === this.#storeRevision) return;
      this.#storeRevision = stored.revision;
      const parsed = this.#parse(stored.text, true);
      if (!parsed.ok) {
        this.#onReload?.("store", false, 0);
        log("error", "stored config is invalid, keeping the running config", {
          store: this.store.location,
          version: this.#running.version,
          problems: parsed.issues.map((i) => `${i.path || "(document)"}: ${i.message}`)
            .join("; "),
        });
        return;
      }
      const running = await this.#apply(parsed.config, parsed.document, "store", true);
      await this.#record(running, { unlessNewest: true });
      this.#onStoredConfig?.(stored.text);
    }).catch((err) => log("error", "store sync failed", { error: String(err) }));
    this.#pendingSync = sync;
    return sync;
  }

  /**
   * Stops following the store; resolves once no poll is in flight and every change it reported
   * has been synced (nothing of the control plane runs after that).
   */
  async stop(): Promise<void> {
    this.#watch.abort();
    await this.#watching;
    await this.#queue;
  }

  /**
   * Records the running config in the store's history; with `unlessNewest`, not when the newest
   * entry already is this config (another instance saved it, or a restart). History is an aid:
   * failing to write it is logged, never a reason to refuse a config.
   */
  async #record(running: RunningConfig, options: { unlessNewest: boolean }): Promise<void> {
    const history = this.store.history;
    if (history === undefined || this.#historySize === 0 || running.source === "empty") return;
    try {
      if (options.unlessNewest && (await history.list())[0]?.hash === running.hash) return;
    } catch (err) {
      log("warn", "config history not readable", { error: String(err) });
      return;
    }
    const { version, hash, applied_at, saved } = running;
    const source = running.source as HistorySource;
    await this.#recordEntry({ version, hash, applied_at, source, saved }, running.text);
  }

  async #recordEntry(entry: HistoryEntry, document: string): Promise<string | undefined> {
    const history = this.store.history;
    if (history === undefined || this.#historySize === 0) return undefined;
    try {
      return await history.record(entry, document, this.#historySize);
    } catch (err) {
      log("warn", "config history not recorded", { hash: entry.hash, error: String(err) });
      return undefined;
    }
  }

  /**
   * Parses and validates, including that no server is one of dynlb's own listeners. A stored
   * config (`stored`) may name an expired certificate (a warning): it was valid when saved.
   */
  #parse(text: string, stored = false): ParseResult {
    const parsed = parseConfig(text, { expired: stored ? "warn" : "refuse" });
    if (!parsed.ok) return parsed;
    const issues = selfReferences(parsed.config, this.#listeners());
    return issues.length > 0 ? { ok: false, issues } : parsed;
  }

  async #apply(
    config: Config,
    document: unknown,
    source: ConfigSource,
    saved: boolean,
  ): Promise<RunningConfig> {
    const applying = this.#putInForce(config, document, source, saved);
    this.#applying = applying;
    try {
      return await applying;
    } finally {
      if (this.#applying === applying) this.#applying = undefined;
    }
  }

  async #putInForce(
    config: Config,
    document: unknown,
    source: ConfigSource,
    saved: boolean,
  ): Promise<RunningConfig> {
    const version = this.#running.version + 1;
    this.#health?.update(config.backends);
    await this.#dataPlane.applyConfig(config, version, this.#health?.down() ?? []);
    this.#onApplied?.(config);
    const text = JSON.stringify(document);
    this.#running = new RunningConfig({
      version,
      hash: await hexDigest("SHA-256", text),
      source,
      saved,
      applied_at: new Date().toISOString(),
      text,
    });
    log("info", "config applied", {
      version,
      source,
      saved,
      backends: config.backends.length,
      hosts: config.hosts.length,
    });
    this.#onReload?.(source, true, version);
    return this.#running;
  }

  #serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(task, task);
    this.#queue = run.catch(() => {});
    return run;
  }
}

/**
 * The `ETag` of a config hash: `"HASH"`.
 *
 * @example
 * ```ts
 * etag("9f2c"); // '"9f2c"'
 * ```
 */
export function etag(hash: string): string {
  return `"${hash}"`;
}

/**
 * Whether an `If-Match` value (`*` or a list of ETags; weak ones never match) names `hash`.
 *
 * @example
 * ```ts
 * etagMatches('"a", "b"', "b"); // true
 * ```
 */
export function etagMatches(ifMatch: string, hash: string): boolean {
  if (ifMatch.trim() === "*") return true;
  return ifMatch.split(",").some((tag) => tag.trim() === etag(hash));
}

/**
 * The stored config cannot be used (at start-up this stops the program).
 *
 * @example
 * ```ts
 * await control.start().catch((err) => {
 *   if (err instanceof InvalidStoredConfigError) console.error(err.issues);
 * });
 * ```
 */
export class InvalidStoredConfigError extends Error {
  override name = "InvalidStoredConfigError";
  readonly issues: readonly ConfigIssue[];

  constructor(location: string, issues: readonly ConfigIssue[]) {
    super(`invalid config in ${location}:\n${formatIssues(issues)}`);
    this.issues = issues;
  }
}
