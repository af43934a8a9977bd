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
   * Rejects with {@link StoreUnavailableError} (nothing changed) when the store is unreachable.
   */
  save(text: string): Promise<StoredConfig>;
  /**
   * Calls `onChange` whenever the stored config may have changed — a poll every `interval`
   * milliseconds (the seed polls every second) and, where the store can, a push notification.
   * The callback loads and compares revisions itself, so spurious calls are harmless.
   * Stops when `signal` aborts.
   */
  watch(onChange: () => void, signal: AbortSignal): void;
  /** Releases connections and timers. */
  close(): Promise<void>;
}
