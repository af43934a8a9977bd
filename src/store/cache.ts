/**
 * The last configuration that was loaded from a remote store and applied, kept in a local file,
 * so the proxy can start with it when Redis (or KV Connect) is down at start-up.
 *
 * The cache is an aid, never a reason to fail: write errors (full disk, read-only directory) are
 * logged once per kind of failure and swallowed, and a missing or unreadable file reads as
 * `null`. Writes are atomic (temp file in the same directory, fsync, rename), so a crash leaves
 * either the old or the new document, never a torn one.
 *
 * @module
 */
import { dirname } from "node:path";
import { log } from "../log.ts";

/**
 * A last-known-good config file.
 *
 * @example
 * ```ts
 * const cache = new LastGoodCache("./.data/last-good-redis.json");
 * await cache.write('{"backends":[],"hosts":[]}');
 * const text = await cache.read(); // the same text, or null
 * ```
 */
export class LastGoodCache {
  readonly path: string;
  /** Error kinds already logged, so a persistently full disk logs once, not every apply. */
  #reported = new Set<string>();

  constructor(path: string) {
    this.path = path;
  }

  /** The cached text, or `null` when there is none or it cannot be read. */
  async read(): Promise<string | null> {
    try {
      return await Deno.readTextFile(this.path);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) this.#report("read", err);
      return null;
    }
  }

  /** Replaces the cached text atomically; never throws. */
  async write(text: string): Promise<void> {
    const dir = dirname(this.path);
    const temp = `${this.path}.${crypto.randomUUID().slice(0, 8)}.tmp`;
    try {
      await Deno.mkdir(dir, { recursive: true });
      const file = await Deno.open(temp, { write: true, createNew: true, mode: 0o600 });
      try {
        const bytes = new TextEncoder().encode(text);
        let written = 0;
        while (written < bytes.length) written += await file.write(bytes.subarray(written));
        await file.sync();
      } finally {
        file.close();
      }
      await Deno.rename(temp, this.path);
      this.#recovered("write");
    } catch (err) {
      await Deno.remove(temp).catch(() => {});
      this.#report("write", err);
    }
  }

  #report(op: string, err: unknown): void {
    const kind = `${op}:${err instanceof Error ? err.name : "error"}`;
    if (this.#reported.has(kind)) return;
    this.#reported.add(kind);
    log("warn", `last-good cache ${op} failed`, { path: this.path, error: String(err) });
  }

  #recovered(op: string): void {
    for (const kind of this.#reported) {
      if (kind.startsWith(`${op}:`)) this.#reported.delete(kind);
    }
  }
}
