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
import { writeFileAtomic } from "./atomic.ts";

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
    try {
      await Deno.mkdir(dirname(this.path), { recursive: true });
      await writeFileAtomic(this.path, text, 0o600);
      this.#recovered("write");
    } catch (err) {
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
