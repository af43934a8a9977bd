/**
 * The file store, the default: the seed's `config_file`. Changes are found by polling the file's
 * identity (mtime, size, inode) every second, which catches editors that write in place and
 * those that rename a new file over the old one. Saves are atomic: a temporary file in the same
 * directory is written, flushed to disk and renamed over the config, so a crash leaves either
 * the old or the new file, never a truncated one.
 *
 * @module
 */
import { log } from "../log.ts";
import { type ConfigStore, type StoredConfig, StoreUnavailableError } from "./store.ts";

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
  #path: string;
  #pollMs: number;

  constructor(path: string, options: { pollIntervalMs?: number } = {}) {
    this.#path = path;
    this.location = path;
    this.#pollMs = options.pollIntervalMs ?? 1000;
  }

  async load(): Promise<StoredConfig | null> {
    let file: Deno.FsFile;
    try {
      file = await Deno.open(this.#path, { read: true });
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return null;
      throw new StoreUnavailableError(`cannot open ${this.#path}: ${message(err)}`);
    }
    try {
      // Read and stat one open file, so the revision describes the bytes read.
      const info = await file.stat();
      const bytes = new Uint8Array(await new Response(file.readable).arrayBuffer());
      return { text: new TextDecoder().decode(bytes), revision: revisionOf(info) };
    } catch (err) {
      throw new StoreUnavailableError(`cannot read ${this.#path}: ${message(err)}`);
    }
  }

  async save(text: string): Promise<StoredConfig> {
    const slash = this.#path.lastIndexOf("/");
    const dir = slash === -1 ? "." : this.#path.slice(0, slash) || "/";
    const temp = `${dir}/.${this.#path.slice(slash + 1)}.${Deno.pid}.${Date.now()}.tmp`;
    try {
      const file = await Deno.open(temp, { write: true, createNew: true, mode: 0o644 });
      try {
        const bytes = new TextEncoder().encode(text);
        let written = 0;
        while (written < bytes.length) written += await file.write(bytes.subarray(written));
        await file.sync();
      } finally {
        file.close();
      }
      await Deno.rename(temp, this.#path);
      await syncDirectory(dir);
    } catch (err) {
      await Deno.remove(temp).catch(() => {});
      throw new StoreUnavailableError(`cannot write ${this.#path}: ${message(err)}`);
    }
    const info = await Deno.stat(this.#path);
    return { text, revision: revisionOf(info) };
  }

  watch(onChange: () => void, signal: AbortSignal): void {
    let last: string | undefined;
    let failing = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = async () => {
      try {
        const revision = revisionOf(await Deno.stat(this.#path));
        if (failing) log("info", "config file readable again", { file: this.#path });
        failing = false;
        if (revision !== last) onChange();
        last = revision;
      } catch (err) {
        if (!failing) {
          log("warn", "cannot stat config file, keeping the running config", {
            file: this.#path,
            error: message(err),
          });
        }
        failing = true;
      }
      if (!signal.aborted) timer = setTimeout(poll, this.#pollMs);
    };
    signal.addEventListener("abort", () => clearTimeout(timer), { once: true });
    poll();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function revisionOf(info: Deno.FileInfo): string {
  return `${info.mtime?.getTime() ?? 0}:${info.size}:${info.ino ?? 0}`;
}

/** Makes the rename itself durable; not possible everywhere, and not fatal where it is not. */
async function syncDirectory(dir: string): Promise<void> {
  try {
    const handle = await Deno.open(dir, { read: true });
    try {
      await handle.sync();
    } finally {
      handle.close();
    }
  } catch {
    // Directories cannot be opened for sync on every platform.
  }
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
