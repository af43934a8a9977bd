/**
 * The file store, the default: the seed's `config_file`. Changes are found by polling the file's
 * identity (mtime, size, inode) every second, which catches editors that write in place and
 * those that rename a new file over the old one; the revision is the content's hash, so a
 * rewrite of the same content is no change. Saves are atomic: a temporary file in the same
 * directory is written, flushed to disk and renamed over the config, so a crash leaves either
 * the old or the new file, never a truncated one.
 *
 * @module
 */
import { log } from "../log.ts";
import { writeFileAtomic } from "./atomic.ts";
import {
  type ConfigHistory,
  type ConfigStore,
  type SaveOptions,
  StoreConflictError,
  type StoredConfig,
  StoreUnavailableError,
} from "./store.ts";
import { hexDigest } from "../digest.ts";
import { FileHistory } from "./file_history.ts";
import { errorText } from "../error_text.ts";

/**
 * A config kept in one JSON file.
 *
 * @example
 * ```ts
 * const store = new FileStore("./config.json");
 * const stored = await store.load();
 * ```
 */
export class FileStore implements ConfigStore {
  readonly kind = "file";
  readonly location: string;
  readonly history?: ConfigHistory;
  #path: string;
  #pollMs: number;

  /** `historyDir`: where applied configs are recorded (`--data-dir/history`); none: no history. */
  constructor(path: string, options: { pollIntervalMs?: number; historyDir?: string } = {}) {
    this.#path = path;
    this.location = path;
    this.#pollMs = options.pollIntervalMs ?? 1000;
    if (options.historyDir !== undefined) this.history = new FileHistory(options.historyDir);
  }

  async load(): Promise<StoredConfig | null> {
    let text: string;
    try {
      text = await Deno.readTextFile(this.#path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return null;
      throw new StoreUnavailableError(`cannot read ${this.#path}: ${errorText(err)}`);
    }
    return { text, revision: await hexDigest("SHA-256", text) };
  }

  async save(text: string, options: SaveOptions = {}): Promise<StoredConfig> {
    // Write where a symlinked config really lives, keeping the file's mode.
    const target = await Deno.realPath(this.#path).catch(() => this.#path);
    const mode = await Deno.stat(target).then((i) => i.mode ?? 0o644, () => 0o644) & 0o7777;
    // Saves by dynlb processes sharing the file take turns (a lock on its directory), so the
    // re-read below and the rename are one step for them; a hand edit can still slip between.
    const unlock = await lockDirectory(target);
    try {
      if (options.ifRevision !== undefined) {
        const current = await this.load();
        if ((current?.revision ?? null) !== options.ifRevision) {
          throw new StoreConflictError(`${this.#path} changed since it was loaded`);
        }
      }
      await writeFileAtomic(target, text, mode);
    } catch (err) {
      if (err instanceof StoreConflictError || err instanceof StoreUnavailableError) throw err;
      throw new StoreUnavailableError(`cannot write ${this.#path}: ${errorText(err)}`);
    } finally {
      unlock();
    }
    return { text, revision: await hexDigest("SHA-256", text) };
  }

  watch(onChange: () => void, signal: AbortSignal): Promise<void> {
    let last: string | undefined;
    let failing = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let polling = false;
    const stopped = Promise.withResolvers<void>();
    const poll = async () => {
      polling = true;
      try {
        const info = await Deno.stat(this.#path);
        const identity = `${info.mtime?.getTime() ?? 0}:${info.size}:${info.ino ?? 0}`;
        if (failing) log("info", "config file readable again", { file: this.#path });
        failing = false;
        // A file modified within the last two seconds may change again without its mtime,
        // size or inode showing it (coarse timestamps): look at its content until it settles.
        // The control plane compares content revisions, so extra calls cost one read.
        const recent = Date.now() - (info.mtime?.getTime() ?? 0) < 2000;
        if ((identity !== last || recent) && !signal.aborted) onChange();
        last = identity;
      } catch (err) {
        if (!failing) {
          log("warn", "cannot stat config file, keeping the running config", {
            file: this.#path,
            error: errorText(err),
          });
        }
        failing = true;
      }
      polling = false;
      if (!signal.aborted) timer = setTimeout(poll, this.#pollMs);
      else stopped.resolve();
    };
    signal.addEventListener("abort", () => {
      clearTimeout(timer);
      if (!polling) stopped.resolve();
    }, { once: true });
    if (signal.aborted) stopped.resolve();
    else poll();
    return stopped.promise;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** Takes an exclusive lock on the directory of `path`; resolves to its release. */
async function lockDirectory(path: string): Promise<() => void> {
  const slash = path.lastIndexOf("/");
  const dir = slash === -1 ? "." : path.slice(0, slash) || "/";
  let handle: Deno.FsFile | undefined;
  try {
    handle = await Deno.open(dir, { read: true });
    await handle.lock(true);
  } catch {
    // Not lockable here (some file systems): saves then race as they did without the lock.
  }
  return () => {
    try {
      handle?.close(); // closing releases the lock
    } catch {
      // Already closed.
    }
  };
}
