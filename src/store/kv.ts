/**
 * Configuration in Deno KV, of any size.
 *
 * A KV value holds at most 64 KiB and one atomic commit at most 1,000 mutations / 800 KiB, while
 * a 100,000-host config is ~10 MB. So a save writes the UTF-8 text as immutable chunks under a
 * fresh id, then switches one small head key `{id, chunks, bytes, hash}` in a single atomic
 * commit (checked against the old head's versionstamp), then deletes the old chunks:
 *
 * ```
 * [key, "head"]                 → { id, chunks, bytes, hash }   the only mutable key
 * [key, "chunk", id, n]         → Uint8Array (≤ 64,000 bytes)  immutable
 * [key, "pending", id]          → { chunks, at }  chunks written, head not switched yet
 * [key, "garbage", id]          → { chunks }      replaced, chunks still to delete
 * ```
 *
 * A reader reads the head, then that id's chunks; if a concurrent save already collected them it
 * re-reads the head, so it never sees half a config. `pending` records let a later save collect
 * the chunks of a save that died half-way; `garbage` records make the collection of replaced
 * chunks survive a crash between the switch and the deletes.
 *
 * `watch` uses `kv.watch` on the head key (instant within this process) plus a poll of the head
 * (tiny), because `kv.watch` does not see writes by another process sharing the file.
 *
 * Remote KV: `path` may be a KV Connect URL (`https://api.deno.com/databases/<id>/connect`,
 * token in `DENO_KV_ACCESS_TOKEN`), which `Deno.openKv` accepts; the layout above stays within
 * the same limits. That path is untested here (no network).
 *
 * @module
 */
import { dirname } from "node:path";
import { log } from "../log.ts";
import {
  type ConfigHistory,
  type ConfigStore,
  type HistoryEntry,
  type SaveOptions,
  StoreConflictError,
  type StoredConfig,
  StoreUnavailableError,
} from "./store.ts";
import { hexDigest } from "../digest.ts";
import { historyId } from "./file_history.ts";

/**
 * Where the KV store lives.
 *
 * @example
 * ```ts
 * const options: KvStoreOptions = { path: "./.data/config.kv", pollIntervalMs: 1000 };
 * ```
 */
export interface KvStoreOptions {
  /** A file path (its directory is created), `:memory:`, or a KV Connect `https://` URL. */
  path: string;
  /** First key part for all records; default `config`. */
  key?: string;
  /** Poll interval of `watch`, milliseconds; default 1000. */
  pollIntervalMs?: number;
}

/** The head record: which chunk set is the current config. */
interface Head {
  id: string;
  chunks: number;
  bytes: number;
  /** SHA-256 hex of the bytes, checked on every load. */
  hash: string;
}

/** Bytes per chunk, under the 65,536-byte value limit with room for the encoding. */
const CHUNK_BYTES = 64_000;
/** Chunks per commit: 10 × 64,000 stays under the 819,200-byte commit limit. */
const CHUNKS_PER_COMMIT = 10;
/** Deletes per commit, under the 1,000-mutation limit. */
const DELETES_PER_COMMIT = 500;
/** Attempts to switch the head while other saves keep winning the race. */
const SWITCH_ATTEMPTS = 20;
/** Attempts to read a consistent head + chunks while saves keep collecting them. */
const READ_ATTEMPTS = 10;
/** How long to keep retrying while another process holds the KV file's write lock. */
const LOCKED_RETRY_MS = 5000;
/** A save unfinished for this long is assumed dead and its chunks collected. */
const PENDING_EXPIRY_MS = 60 * 60 * 1000;

type Timer = ReturnType<typeof setTimeout>;

/**
 * A {@link ConfigStore} in Deno KV (a local SQLite file or KV Connect), any config size.
 *
 * @example
 * ```ts
 * const store = new KvStore({ path: "./.data/config.kv" });
 * await store.save('{"backends":[],"hosts":[]}');
 * console.log((await store.load())?.revision);
 * await store.close();
 * ```
 */
export class KvStore implements ConfigStore {
  readonly kind = "kv";
  readonly location: string;
  readonly #path: string;
  readonly #key: string;
  readonly #pollIntervalMs: number;
  #kv: Promise<Deno.Kv> | null = null;
  #lastRevision: string | null | undefined = undefined;
  #watchers = new Set<() => Promise<void>>();
  #closed = false;
  /** History entries under `[key, "history", id]`, documents as chunks `[key, "history-doc", id, n]`. */
  readonly history: ConfigHistory = {
    record: (entry, document, keep) =>
      this.#open().then((kv) => unavailableOnError(() => this.#record(kv, entry, document, keep))),
    discard: (id) =>
      this.#open().then((kv) =>
        unavailableOnError(async () => {
          const entry = await kv.get<{ chunks: number }>(this.#k("history", id));
          if (entry.value === null) return;
          await this.#dropHistory(kv, entry.key, entry.value.chunks);
        })
      ),
    list: () =>
      this.#open().then((kv) =>
        unavailableOnError(async () => (await this.#entries(kv)).map((e) => e.value))
      ),
    document: (hash) =>
      this.#open().then((kv) =>
        unavailableOnError(async () => {
          for (const entry of await this.#entries(kv)) {
            if (entry.value.hash !== hash) continue;
            const bytes = await this.#readDocument(kv, entry.key[2] as string);
            if (bytes !== null) return new TextDecoder().decode(bytes);
          }
          return null;
        })
      ),
  };

  constructor(options: KvStoreOptions) {
    this.#path = options.path;
    this.#key = options.key ?? "config";
    this.#pollIntervalMs = options.pollIntervalMs ?? 1000;
    this.location = `${displayPath(options.path)} key=${this.#key}`;
  }

  async load(): Promise<StoredConfig | null> {
    const kv = await this.#open();
    const result = await unavailableOnError(() => this.#read(kv));
    this.#lastRevision = result?.revision ?? null;
    return result;
  }

  async save(text: string, options: SaveOptions = {}): Promise<StoredConfig> {
    const kv = await this.#open();
    const bytes = new TextEncoder().encode(text);
    const head: Head = {
      id: newId(),
      chunks: Math.ceil(bytes.length / CHUNK_BYTES),
      bytes: bytes.length,
      hash: await hexDigest("SHA-256", bytes),
    };
    await unavailableOnError(async () => {
      // Nothing points at our chunks until the switch; on failure drop them (or, if even that
      // fails, a later save does, through the `pending` record).
      const dropChunks = () =>
        this.#deleteChunkSet(kv, head.id, head.chunks, [this.#k("pending", head.id)])
          .catch(() => {});
      try {
        await this.#writeChunks(kv, head, bytes);
      } catch (err) {
        await dropChunks();
        throw err;
      }
      // A commit that throws (KV Connect network error) may still have switched: keep chunks.
      let switched: boolean;
      try {
        switched = await this.#switchHead(kv, head, options.ifRevision);
      } catch (err) {
        if (err instanceof StoreConflictError) await dropChunks();
        throw err;
      }
      if (!switched) {
        await dropChunks();
        throw new StoreUnavailableError(
          `kv store: ${SWITCH_ATTEMPTS} concurrent saves won the race, giving up; try again`,
        );
      }
    });
    this.#lastRevision = head.id;
    // The new config is in place; collecting old chunks is housekeeping that must not fail it.
    await this.#collectGarbage(kv, head.id).catch((err) =>
      log("warn", "kv store: could not delete old chunks", { error: String(err) })
    );
    return { text, revision: head.id };
  }

  watch(onChange: () => void, signal: AbortSignal): Promise<void> {
    if (signal.aborted || this.#closed) return Promise.resolve();
    const notify = (id: string | null) => {
      if (id === this.#lastRevision) return;
      try {
        onChange();
      } catch (err) {
        log("error", "kv store watcher failed", { error: String(err) });
      }
    };
    let timer: Timer | undefined;
    let reader: ReadableStreamDefaultReader<Deno.KvEntryMaybe<unknown>[]> | null = null;
    let streamDone: Promise<void> = Promise.resolve();
    let stopped = false;
    let polling: Promise<void> = Promise.resolve();
    const ended = Promise.withResolvers<void>();

    const poll = () => {
      polling = pollOnce();
    };
    const pollOnce = async () => {
      try {
        const kv = await this.#open();
        const entry = await whenUnlocked(() => kv.get<Head>(this.#k("head")));
        if (!stopped) notify(entry.value?.id ?? null);
      } catch {
        // Unavailable now; the next tick tries again.
      } finally {
        if (!stopped) timer = setTimeout(poll, this.#pollIntervalMs);
      }
    };
    timer = setTimeout(poll, this.#pollIntervalMs);

    this.#open().then((kv) => {
      if (stopped) return;
      const stream = kv.watch([this.#k("head")]);
      const current = stream.getReader();
      reader = current;
      streamDone = (async () => {
        try {
          while (!stopped) {
            const { done, value } = await current.read();
            if (done || stopped) break;
            notify((value[0].value as Head | null)?.id ?? null);
          }
        } catch {
          // The stream ends with an error when the KV closes; the poll is the safety net.
        }
      })();
    }, () => {});

    const stop = async () => {
      if (stopped) return;
      stopped = true;
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      this.#watchers.delete(stop);
      await reader?.cancel().catch(() => {});
      await Promise.all([streamDone, polling]);
      ended.resolve();
    };
    const onAbort = () => void stop();
    signal.addEventListener("abort", onAbort, { once: true });
    this.#watchers.add(stop);
    return ended.promise;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([...this.#watchers].map((stop) => stop()));
    const opening = this.#kv;
    this.#kv = null;
    if (opening) {
      try {
        (await opening).close();
      } catch {
        // Never opened or already closed.
      }
    }
  }

  async #record(kv: Deno.Kv, entry: HistoryEntry, document: string, keep: number) {
    const id = await this.#recordOnly(kv, entry, document);
    for (const old of (await this.#entries(kv)).slice(keep)) {
      await this.#dropHistory(kv, old.key, old.value.chunks);
    }
    return id;
  }

  async #dropHistory(kv: Deno.Kv, key: Deno.KvKey, chunks: number): Promise<void> {
    const id = key[2] as string;
    await commitOrThrow(() => kv.atomic().delete(key), "trim history");
    for (let first = 0; first < chunks; first += DELETES_PER_COMMIT) {
      await commitOrThrow(() => {
        const op = kv.atomic();
        for (let n = first; n < Math.min(first + DELETES_PER_COMMIT, chunks); n++) {
          op.delete(this.#k("history-doc", id, n));
        }
        return op;
      }, "trim history");
    }
  }

  async #recordOnly(kv: Deno.Kv, entry: HistoryEntry, document: string): Promise<string> {
    const id = historyId(entry.hash);
    const bytes = new TextEncoder().encode(document);
    const chunks = Math.ceil(bytes.length / CHUNK_BYTES);
    for (let first = 0; first < chunks; first += CHUNKS_PER_COMMIT) {
      await commitOrThrow(() => {
        const op = kv.atomic();
        for (let n = first; n < Math.min(first + CHUNKS_PER_COMMIT, chunks); n++) {
          op.set(
            this.#k("history-doc", id, n),
            bytes.subarray(n * CHUNK_BYTES, Math.min((n + 1) * CHUNK_BYTES, bytes.length)),
          );
        }
        return op;
      }, "write history");
    }
    // The entry last: it is what makes the document visible.
    await commitOrThrow(
      () => kv.atomic().set(this.#k("history", id), { ...entry, chunks }),
      "write history entry",
    );
    return id;
  }

  /** History entries, newest first. */
  async #entries(kv: Deno.Kv): Promise<Deno.KvEntry<HistoryEntry & { chunks: number }>[]> {
    return await whenUnlocked(() =>
      Array.fromAsync(
        kv.list<HistoryEntry & { chunks: number }>({ prefix: this.#k("history") }, {
          reverse: true,
        }),
      )
    );
  }

  async #readDocument(kv: Deno.Kv, id: string): Promise<Uint8Array | null> {
    const parts: Uint8Array[] = [];
    for await (const entry of kv.list<Uint8Array>({ prefix: this.#k("history-doc", id) })) {
      parts.push(entry.value);
    }
    if (parts.length === 0) return null;
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let offset = 0;
    for (const part of parts) {
      out.set(part, offset);
      offset += part.length;
    }
    return out;
  }

  #k(...parts: Deno.KvKeyPart[]): Deno.KvKey {
    return [this.#key, ...parts];
  }

  /** The database this store uses (opened on first use), for other records beside the config. */
  database(): Promise<Deno.Kv> {
    return this.#open();
  }

  #open(): Promise<Deno.Kv> {
    if (this.#closed) return Promise.reject(new StoreUnavailableError("kv store is closed"));
    if (!this.#kv) {
      const target = this.#path;
      this.#kv = (async () => {
        if (target !== ":memory:" && !/^https?:\/\//.test(target)) {
          await Deno.mkdir(dirname(target), { recursive: true });
        }
        return await Deno.openKv(target);
      })();
      this.#kv.catch(() => (this.#kv = null)); // let the next call try again
    }
    return this.#kv.catch((err) => {
      throw new StoreUnavailableError(`kv store cannot open ${displayPath(this.#path)}: ${err}`, {
        cause: err,
      });
    });
  }

  async #read(kv: Deno.Kv): Promise<StoredConfig | null> {
    let previousId: string | null = null;
    for (let attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
      const head = (await whenUnlocked(() => kv.get<Head>(this.#k("head")))).value;
      if (head === null) return null;
      const bytes = await whenUnlocked(() => this.#readChunks(kv, head));
      if (bytes) return { text: new TextDecoder().decode(bytes), revision: head.id };
      // Same head twice with chunks missing: not a race, the store is damaged.
      if (head.id === previousId) break;
      previousId = head.id;
    }
    throw new KvDataError(
      `kv store: head of ${this.location} points at missing or damaged chunks`,
    );
  }

  /** The head's bytes, or `null` when its chunks are (partly) gone or do not match the hash. */
  async #readChunks(kv: Deno.Kv, head: Head): Promise<Uint8Array<ArrayBuffer> | null> {
    const out = new Uint8Array(head.bytes);
    let offset = 0;
    let count = 0;
    const entries = kv.list<Uint8Array>({ prefix: this.#k("chunk", head.id) }, {
      batchSize: 100,
    });
    for await (const entry of entries) {
      const chunk = entry.value;
      if (entry.key[3] !== count || offset + chunk.length > out.length) return null;
      out.set(chunk, offset);
      offset += chunk.length;
      count++;
    }
    if (count !== head.chunks || offset !== head.bytes) return null;
    return (await hexDigest("SHA-256", out)) === head.hash ? out : null;
  }

  async #writeChunks(kv: Deno.Kv, head: Head, bytes: Uint8Array): Promise<void> {
    for (let first = 0; first < head.chunks || first === 0; first += CHUNKS_PER_COMMIT) {
      await commitOrThrow(() => {
        const op = kv.atomic();
        if (first === 0) {
          op.set(this.#k("pending", head.id), { chunks: head.chunks, at: Date.now() });
        }
        const last = Math.min(first + CHUNKS_PER_COMMIT, head.chunks);
        for (let n = first; n < last; n++) {
          op.set(
            this.#k("chunk", head.id, n),
            bytes.subarray(n * CHUNK_BYTES, Math.min((n + 1) * CHUNK_BYTES, bytes.length)),
          );
        }
        return op;
      }, "write chunks");
      if (head.chunks === 0) break;
    }
  }

  /**
   * Points the head at `head`, checked against the head it replaces; last writer wins, unless
   * `ifRevision` is given: then only that head may be replaced ({@link StoreConflictError}).
   */
  async #switchHead(
    kv: Deno.Kv,
    head: Head,
    ifRevision: string | null | undefined,
  ): Promise<boolean> {
    for (let attempt = 0; attempt < SWITCH_ATTEMPTS; attempt++) {
      const switched = await whenUnlocked(async () => {
        const old = await kv.get<Head>(this.#k("head"));
        // The commit below checks `old` too, so the comparison and the switch are one step.
        if (ifRevision !== undefined && (old.value?.id ?? null) !== ifRevision) {
          throw new StoreConflictError(`${this.location} changed since it was loaded`);
        }
        const op = kv.atomic()
          .check(old)
          .set(this.#k("head"), head)
          .delete(this.#k("pending", head.id));
        if (old.value) op.set(this.#k("garbage", old.value.id), { chunks: old.value.chunks });
        return (await op.commit()).ok;
      });
      if (switched) return true;
    }
    return false;
  }

  /** Deletes replaced chunk sets and those of saves that died long ago. */
  async #collectGarbage(kv: Deno.Kv, currentId: string): Promise<void> {
    const expired = Date.now() - PENDING_EXPIRY_MS;
    const doomed = await whenUnlocked(async () => {
      const found: Array<{ key: Deno.KvKey; chunks: number }> = [];
      for await (const entry of kv.list<{ chunks: number }>({ prefix: this.#k("garbage") })) {
        if (entry.key[2] !== currentId) found.push({ key: entry.key, chunks: entry.value.chunks });
      }
      const pending = kv.list<{ chunks: number; at: number }>({ prefix: this.#k("pending") });
      for await (const entry of pending) {
        if (entry.value.at < expired) found.push({ key: entry.key, chunks: entry.value.chunks });
      }
      return found;
    });
    for (const { key, chunks } of doomed) {
      await this.#deleteChunkSet(kv, key[2] as string, chunks, [key]);
    }
  }

  /** Deletes chunks `0..chunks-1` of `id`, then (last) the records that track them. */
  async #deleteChunkSet(
    kv: Deno.Kv,
    id: string,
    chunks: number,
    records: Deno.KvKey[],
  ): Promise<void> {
    for (let first = 0; first < chunks; first += DELETES_PER_COMMIT) {
      await commitOrThrow(() => {
        const op = kv.atomic();
        for (let n = first; n < Math.min(first + DELETES_PER_COMMIT, chunks); n++) {
          op.delete(this.#k("chunk", id, n));
        }
        return op;
      }, "delete chunks");
    }
    await commitOrThrow(() => {
      const op = kv.atomic();
      for (const key of records) op.delete(key);
      return op;
    }, "delete records");
  }
}

/** Commits the operation `build` makes, rebuilding it for each retry on a locked file. */
async function commitOrThrow(build: () => Deno.AtomicOperation, what: string): Promise<void> {
  const result = await whenUnlocked(() => build().commit());
  if (!result.ok) throw new KvDataError(`kv store: ${what} failed`);
}

/**
 * Runs `fn`, retrying with a growing pause while SQLite reports the file locked: processes
 * sharing one KV file get "database is locked" instead of waiting for each other. Gives up
 * about five seconds after the first failure (the caller then reports the store unavailable).
 *
 * Deno reports a locked file as a bare `TypeError` (no `Deno.errors` class, no `code`; measured
 * on Deno 2.9 with another process holding the SQLite write lock), after its own wait of about
 * five seconds — or at once when SQLite refuses to wait to avoid a deadlock. So a `TypeError`
 * from a KV operation with valid arguments is what is retried; every other error (`BadResource`
 * for a closed database, network errors of KV Connect) passes through at once.
 *
 * @example
 * ```ts
 * const entry = await whenUnlocked(() => kv.get(["config", "head"]));
 * ```
 */
export async function whenUnlocked<T>(fn: () => Promise<T>): Promise<T> {
  let deadline = 0;
  for (let attempt = 0;; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof TypeError)) throw err;
      if (deadline === 0) deadline = Date.now() + LOCKED_RETRY_MS;
      else if (Date.now() > deadline) throw err;
      const pause = Math.min(2 ** attempt, 50) * (0.5 + Math.random());
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}

/**
 * A KV database whose records dynlb cannot use: chunks missing or damaged, a write refused.
 *
 * @example
 * ```ts
 * if (err instanceof KvDataError) console.error("the KV store needs attention:", err.message);
 * ```
 */
export class KvDataError extends Error {
  override name = "KvDataError";
}

/** Maps KV I/O failures (locked or read-only file, network) to {@link StoreUnavailableError}. */
async function unavailableOnError<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof StoreUnavailableError || err instanceof StoreConflictError) throw err;
    if (err instanceof KvDataError) throw err;
    throw new StoreUnavailableError(`kv store failed: ${err}`, { cause: err });
  }
}

/** Time-ordered unique id: sorts by creation, readable in `deno kv` dumps. */
function newId(): string {
  return `${Date.now().toString(36).padStart(9, "0")}-${crypto.randomUUID().slice(0, 8)}`;
}

function displayPath(p: string): string {
  // A KV Connect URL may carry no secret, but keep logs to scheme+host anyway.
  return /^https?:\/\//.test(p) ? new URL(p).origin : p;
}
