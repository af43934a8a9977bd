/**
 * Config history of the file store, in a directory (`--data-dir/history/`): per applied config
 * an `ID.config.json` (the document) and an `ID.entry.json` (version, hash, time, source,
 * saved), written in that order so an entry never points at a missing document. IDs sort by
 * time. Instances sharing the data directory share the history.
 *
 * @module
 */
import { writeFileAtomic } from "./atomic.ts";
import { type ConfigHistory, type HistoryEntry, StoreUnavailableError } from "./store.ts";

const ENTRY = ".entry.json";
const DOCUMENT = ".config.json";

/**
 * A {@link ConfigHistory} in a directory.
 *
 * @example
 * ```ts
 * const history = new FileHistory("./.data/history");
 * console.log(await history.list());
 * ```
 */
export class FileHistory implements ConfigHistory {
  readonly #dir: string;

  constructor(dir: string) {
    this.#dir = dir;
  }

  async record(entry: HistoryEntry, document: string, keep: number): Promise<string> {
    const id = historyId(entry.hash);
    try {
      await Deno.mkdir(this.#dir, { recursive: true });
      await writeFileAtomic(`${this.#dir}/${id}${DOCUMENT}`, document);
      await writeFileAtomic(`${this.#dir}/${id}${ENTRY}`, JSON.stringify(entry) + "\n");
    } catch (err) {
      throw new StoreUnavailableError(`cannot write history in ${this.#dir}: ${err}`);
    }
    const ids = await this.#ids();
    for (const old of ids.slice(keep)) {
      await Deno.remove(`${this.#dir}/${old}${ENTRY}`).catch(() => {});
      await Deno.remove(`${this.#dir}/${old}${DOCUMENT}`).catch(() => {});
    }
    return id;
  }

  async discard(id: string): Promise<void> {
    await Deno.remove(`${this.#dir}/${id}${ENTRY}`).catch(() => {});
    await Deno.remove(`${this.#dir}/${id}${DOCUMENT}`).catch(() => {});
  }

  async list(): Promise<HistoryEntry[]> {
    const entries: HistoryEntry[] = [];
    for (const id of await this.#ids()) {
      const entry = await this.#entry(id);
      if (entry !== null) entries.push(entry);
    }
    return entries;
  }

  async document(hash: string): Promise<string | null> {
    for (const id of await this.#ids()) {
      if (!id.endsWith(hash.slice(0, 16))) continue;
      const entry = await this.#entry(id);
      if (entry?.hash !== hash) continue;
      try {
        return await Deno.readTextFile(`${this.#dir}/${id}${DOCUMENT}`);
      } catch {
        // Trimmed by another instance meanwhile: look further.
      }
    }
    return null;
  }

  /** Entry IDs, newest first. */
  async #ids(): Promise<string[]> {
    const ids: string[] = [];
    try {
      for await (const item of Deno.readDir(this.#dir)) {
        if (item.isFile && item.name.endsWith(ENTRY)) ids.push(item.name.slice(0, -ENTRY.length));
      }
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return [];
      throw new StoreUnavailableError(`cannot read history in ${this.#dir}: ${err}`);
    }
    return ids.sort().reverse();
  }

  async #entry(id: string): Promise<HistoryEntry | null> {
    try {
      return JSON.parse(await Deno.readTextFile(`${this.#dir}/${id}${ENTRY}`)) as HistoryEntry;
    } catch {
      return null; // trimmed meanwhile, or damaged: not shown
    }
  }
}

/**
 * A history ID: sorts by time (fixed-width base-36 milliseconds, then a counter against equal
 * milliseconds), ends with the hash's first 16 hex digits.
 *
 * @example
 * ```ts
 * historyId("9f2c…"); // "00mhx2k1c-0000-9f2c…"
 * ```
 */
export function historyId(hash: string): string {
  const now = Date.now();
  sequence = now === lastMs ? sequence + 1 : 0;
  lastMs = now;
  const time = now.toString(36).padStart(9, "0");
  return `${time}-${sequence.toString(36).padStart(4, "0")}-${hash.slice(0, 16)}`;
}

let lastMs = 0;
let sequence = 0;
