/**
 * Config history of the Redis store: a list `KEY:history` of small entries, newest first, and
 * each document in its own string `KEY:history:ID`, so listing never transfers documents. Every
 * instance on the same Redis sees the same list.
 *
 * @module
 */
import type { createClient } from "redis";
import type { ConfigHistory, HistoryEntry } from "./store.ts";
import { historyId } from "./file_history.ts";

type Client = ReturnType<typeof createClient>;

/** Runs a command on the store's connection (timeouts and errors mapped as the store does). */
export type RedisRunner = <T>(fn: (client: Client) => Promise<T>, isWrite?: boolean) => Promise<T>;

/**
 * A {@link ConfigHistory} in Redis, on the store's connection.
 *
 * @example
 * ```ts
 * const history = new RedisHistory("balancer", (fn) => fn(client));
 * await history.list();
 * ```
 */
export class RedisHistory implements ConfigHistory {
  readonly #list: string;
  readonly #prefix: string;
  readonly #run: RedisRunner;

  constructor(key: string, run: RedisRunner) {
    this.#list = `${key}:history`;
    this.#prefix = `${key}:history:`;
    this.#run = run;
  }

  async record(entry: HistoryEntry, document: string, keep: number): Promise<string> {
    const id = historyId(entry.hash);
    const replies = await this.#run((client) =>
      client.multi()
        .set(this.#prefix + id, document)
        .lPush(this.#list, JSON.stringify({ ...entry, id }))
        .lRange(this.#list, keep, -1)
        .lTrim(this.#list, 0, keep - 1)
        .exec(), true);
    const dropped = (replies[2] as unknown as string[]).flatMap((text) => {
      const old = parseEntry(text);
      return old === null ? [] : [this.#prefix + old.id];
    });
    if (dropped.length > 0) await this.#run((client) => client.del(dropped), true);
    return id;
  }

  async discard(id: string): Promise<void> {
    const items = await this.#run((client) => client.lRange(this.#list, 0, -1));
    // LREM needs the element's exact text.
    const item = items.find((text) => parseEntry(text)?.id === id);
    if (item === undefined) return;
    await this.#run(
      (client) => client.multi().lRem(this.#list, 1, item).del(this.#prefix + id).exec(),
      true,
    );
  }

  async list(): Promise<HistoryEntry[]> {
    return (await this.#entries()).map(({ id: _, ...entry }) => entry);
  }

  async document(hash: string): Promise<string | null> {
    for (const entry of await this.#entries()) {
      if (entry.hash !== hash) continue;
      const text = await this.#run((client) => client.get(this.#prefix + entry.id));
      if (text !== null) return text;
    }
    return null;
  }

  async #entries(): Promise<Array<HistoryEntry & { id: string }>> {
    const items = await this.#run((client) => client.lRange(this.#list, 0, -1));
    return items.flatMap((text) => parseEntry(text) ?? []); // elements not ours are skipped
  }
}

/** A list element, or `null` when it is not one of ours. */
function parseEntry(text: string): (HistoryEntry & { id: string }) | null {
  try {
    const entry = JSON.parse(text) as HistoryEntry & { id: string };
    return typeof entry?.id === "string" && typeof entry.hash === "string" ? entry : null;
  } catch {
    return null;
  }
}
