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
import { type ConfigStore, type StoredConfig, StoreUnavailableError } from "./store.ts";
import { hexDigest } from "../digest.ts";

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
    let text: string;
    try {
      text = await Deno.readTextFile(this.#path);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return null;
      throw new StoreUnavailableError(`cannot read ${this.#path}: ${message(err)}`);
    }
    return { text, revision: await hexDigest("SHA-256", text) };
  }

  async save(text: string): Promise<StoredConfig> {
    // Write where a symlinked config really lives, keeping the file's mode.
    const target = await Deno.realPath(this.#path).catch(() => this.#path);
    const mode = await Deno.stat(target).then((i) => i.mode ?? 0o644, () => 0o644) & 0o7777;
    try {
      await writeFileAtomic(target, text, mode);
    } catch (err) {
      throw new StoreUnavailableError(`cannot write ${this.#path}: ${message(err)}`);
    }
    return { text, revision: await hexDigest("SHA-256", text) };
  }

  watch(onChange: () => void, signal: AbortSignal): void {
    let last: string | undefined;
    let failing = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const poll = async () => {
      try {
        const info = await Deno.stat(this.#path);
        const identity = `${info.mtime?.getTime() ?? 0}:${info.size}:${info.ino ?? 0}`;
        if (failing) log("info", "config file readable again", { file: this.#path });
        failing = false;
        // A file modified within the last two seconds may change again without its mtime,
        // size or inode showing it (coarse timestamps): look at its content until it settles.
        // The control plane compares content revisions, so extra calls cost one read.
        const recent = Date.now() - (info.mtime?.getTime() ?? 0) < 2000;
        if (identity !== last || recent) onChange();
        last = identity;
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

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
