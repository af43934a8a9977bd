/**
 * Keeps `--max-connections` within the process's file-descriptor limit: every client connection
 * may hold an upstream connection too, and the admin API, stores and health checks need
 * descriptors of their own. A limit the process cannot honour would end in `EMFILE` for whoever
 * asks next — possibly the admin API.
 *
 * @module
 */

/** Descriptors kept for everything but proxied connections (admin, stores, logs, probes). */
export const RESERVED_DESCRIPTORS = 256;

/**
 * The soft `RLIMIT_NOFILE` of this process, from `/proc/self/limits`; `undefined` when it cannot
 * be read (not Linux, no permission) or is unlimited.
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
