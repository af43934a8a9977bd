/**
 * Keeps `--max-connections` within the process's file-descriptor limit: every client connection
 * may hold an upstream connection too, and the admin API, stores and health checks need
 * descriptors of their own. A limit the process cannot honour would end in `EMFILE` for whoever
 * asks next — possibly the admin API.
 *
 * The limit is read from `/proc/self/limits`, which Deno lets only `--allow-all` read: under
 * dynlb's own permissions (`deno task start`, the compiled executable) the descriptors still free
 * are counted instead, by opening `/dev/null`, up to {@link PROBE_CAP}. Each descriptor counted
 * costs memory the process keeps (~0.6 KiB: 20,000 of them were +12.5 MB of RSS), so the count
 * stops there: it finds the low limits that need the clamp (the usual 1,024 and 4,096), and a
 * process that can open that many is taken to have enough (Deno raises the soft limit to the hard
 * one at start, typically 65,536 or more).
 *
 * @module
 */

/** Descriptors kept for everything but proxied connections (admin, stores, logs, probes). */
export const RESERVED_DESCRIPTORS = 256;

/** The most descriptors counted by opening them: what 2,048 connections need, plus one. */
export const PROBE_CAP = 2 * 2048 + RESERVED_DESCRIPTORS + 1;

/**
 * The soft `RLIMIT_NOFILE` of this process, from `/proc/self/limits`; `undefined` when it cannot
 * be read (not Linux, no `--allow-all`) or is unlimited.
 *
 * @example
 * ```ts
 * openFileLimit(); // 1024 on a default shell
 * ```
 */
export function openFileLimit(): number | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync("/proc/self/limits");
  } catch {
    return undefined;
  }
  const line = text.split("\n").find((l) => l.startsWith("Max open files"));
  const soft = line?.slice("Max open files".length).trim().split(/\s+/)[0];
  const n = Number(soft);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/**
 * Counts the descriptors this process can still open, up to `enough`, by opening `/dev/null`
 * that many times (and closing them again); `undefined` when not even one can be opened that
 * way (no read permission, not Unix). Costs a few microseconds per descriptor counted.
 *
 * @example
 * ```ts
 * freeDescriptors(33_024); // 33024 with a high limit, ~1000 under `ulimit -n 1024`
 * ```
 */
export function freeDescriptors(enough: number): number | undefined {
  const opened: Deno.FsFile[] = [];
  try {
    while (opened.length < enough) opened.push(Deno.openSync("/dev/null"));
  } catch {
    // Out of descriptors (or not allowed at all: nothing opened).
  } finally {
    for (const file of opened) file.close();
  }
  return opened.length === 0 ? undefined : opened.length;
}

/**
 * The number of client connections the process can hold: `wanted`, or less when two
 * descriptors per connection plus {@link RESERVED_DESCRIPTORS} would exceed `limit`.
 *
 * @example
 * ```ts
 * connectionBudget(16384, 1024); // 384
 * connectionBudget(100, 1024); // 100
 * ```
 */
export function connectionBudget(wanted: number, limit: number | undefined): number {
  if (limit === undefined) return wanted;
  return Math.max(1, Math.min(wanted, Math.floor((limit - RESERVED_DESCRIPTORS) / 2)));
}

/**
 * The descriptor limit `--max-connections` must fit in: the open-file limit, or else (it cannot
 * be read) the descriptors still free when fewer than `wanted` connections need (and fewer than
 * {@link PROBE_CAP}); `undefined` when nothing says the limit is too low.
 *
 * @example
 * ```ts
 * connectionBudget(16384, descriptorLimit(16384));
 * ```
 */
export function descriptorLimit(wanted: number): number | undefined {
  const limit = openFileLimit();
  if (limit !== undefined) return limit;
  const needed = 2 * wanted + RESERVED_DESCRIPTORS;
  const free = freeDescriptors(Math.min(needed, PROBE_CAP));
  // As many as were asked for: the limit is not known, only that it is high enough or beyond
  // the cap.
  return free === undefined || free >= Math.min(needed, PROBE_CAP) ? undefined : free;
}
