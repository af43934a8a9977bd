/**
 * Where configuration lives. Every source (file, Deno KV, Redis) is a provider behind this one
 * small interface, in the manner of Traefik's and Caddy's providers: it moves configuration
 * *text* in and out and says when the stored text changed. Parsing, validation and applying are
 * the control plane's job, so every store behaves the same way.
 *
 * @module
 */

/** A stored configuration document, as text, with an identity for change detection. */
export interface StoredConfig {
  /** The JSON text as stored. */
  readonly text: string;
  /**
   * Changes whenever the stored text changes (mtime+size+inode for a file, a version stamp or
   * the text's hash elsewhere). Two loads of an unchanged store give the same revision.
   */
  readonly revision: string;
}

/**
 * Thrown by `save` (and `load`) when the store cannot be reached; the admin API answers 503.
 *
 * @example
 * ```ts
 * throw new StoreUnavailableError("redis store unreachable");
 * ```
 */
export class StoreUnavailableError extends Error {
  override name = "StoreUnavailableError";
}

/**
 * Thrown by `save` with `ifRevision` when the stored config is no longer that revision (someone
 * else saved meanwhile); nothing was written. The admin API answers 412.
 *
 * @example
 * ```ts
 * throw new StoreConflictError("the stored config changed since it was loaded");
 * ```
 */
export class StoreConflictError extends Error {
  override name = "StoreConflictError";
}

/** Conditions of a save. */
export interface SaveOptions {
  /**
   * Write only if the stored config is still this revision (`null`: nothing stored), checked
   * atomically where the store can; otherwise reject with {@link StoreConflictError}.
   */
  readonly ifRevision?: string | null;
}

/** Where an applied config came from. */
export type HistorySource = "admin" | "store" | "cache" | "rollback";

/** One applied config, as `GET /config/history` lists it. */
export interface HistoryEntry {
  /** The applying instance's version number. */
  readonly version: number;
  /** SHA-256 of the document's canonical JSON (the `ETag`). */
  readonly hash: string;
  readonly applied_at: string;
  readonly source: HistorySource;
  /** Whether it was (or came from) the stored config. */
  readonly saved: boolean;
}

/**
 * The last applied configs, kept beside the stored config so they survive restarts and every
 * instance sharing the store sees the same list.
 */
export interface ConfigHistory {
  /**
   * Adds `entry` with its document (canonical JSON), keeping the newest `keep` entries; resolves
   * to the new entry's id.
   */
  record(entry: HistoryEntry, document: string, keep: number): Promise<string>;
  /** Removes the entry `record` returned `id` for (a save that then failed). */
  discard(id: string): Promise<void>;
  /** Every kept entry, newest first. */
  list(): Promise<HistoryEntry[]>;
  /** The document of the newest entry with `hash`, or `null`. */
  document(hash: string): Promise<string | null>;
}

/** A configuration store. */
export interface ConfigStore {
  /** Short name for logs and status: `file`, `kv`, `redis`. */
  readonly kind: string;
  /** Human-readable location: a path, a KV path, a redis URL and key (no password). */
  readonly location: string;
  /** Whether the store answered its last request; stores that are always there leave it out. */
  readonly reachable?: boolean;
  /**
   * Reads the stored config; `null` when nothing is stored yet.
   * Rejects with {@link StoreUnavailableError} when the store cannot be reached.
   */
  load(): Promise<StoredConfig | null>;
  /**
   * Stores `text` (already validated) all or nothing, and returns its new revision.
   * Rejects with {@link StoreUnavailableError} (nothing changed) when the store is unreachable,
   * and with {@link StoreConflictError} when `options.ifRevision` no longer holds.
   */
  save(text: string, options?: SaveOptions): Promise<StoredConfig>;
  /** Where applied configs are recorded; absent: no history. */
  readonly history?: ConfigHistory;
  /**
   * Calls `onChange` whenever the stored config may have changed — a poll every `interval`
   * milliseconds (the seed polls every second) and, where the store can, a push notification.
   * The callback loads and compares revisions itself, so spurious calls are harmless.
   * Stops when `signal` aborts; the promise resolves once it has stopped: no poll is in flight
   * and `onChange` is not called any more.
   */
  watch(onChange: () => void, signal: AbortSignal): Promise<void>;
  /** Releases connections and timers. */
  close(): Promise<void>;
}
