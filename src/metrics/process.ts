/**
 * The standard `process_*` figures of the Prometheus client libraries, read from `/proc` on
 * Linux (elsewhere only what Deno itself reports).
 *
 * @module
 */

/** What the process uses right now. */
export interface ProcessFigures {
  readonly residentBytes: number;
  readonly virtualBytes: number | undefined;
  readonly cpuSeconds: number | undefined;
  readonly openFds: number | undefined;
  readonly maxFds: number | undefined;
  /** Seconds since the epoch. */
  readonly startTime: number;
}

/** Linux reports CPU times in /proc in units of USER_HZ, which is 100 on every architecture. */
const USER_HZ = 100;

/**
 * Reads the process figures (a few small `/proc` reads: admin requests only).
 *
 * @example
 * ```ts
 * processFigures().residentBytes;
 * ```
 */
export function processFigures(): ProcessFigures {
  let virtualBytes: number | undefined;
  let cpuSeconds: number | undefined;
  let openFds: number | undefined;
  let maxFds: number | undefined;
  try {
    const stat = Deno.readTextFileSync("/proc/self/stat");
    // The command name (field 2) may hold spaces and parentheses: count fields after its end.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    cpuSeconds = (Number(fields[11]) + Number(fields[12])) / USER_HZ;
    virtualBytes = Number(fields[20]);
  } catch { /* not Linux */ }
  try {
    let n = 0;
    for (const _ of Deno.readDirSync("/proc/self/fd")) n++;
    openFds = n - 1; // the directory being read
  } catch { /* not Linux */ }
  try {
    const limits = Deno.readTextFileSync("/proc/self/limits");
    const soft = limits.match(/^Max open files\s+(\d+)/m)?.[1];
    if (soft !== undefined) maxFds = Number(soft);
  } catch { /* not Linux */ }
  return {
    residentBytes: Deno.memoryUsage().rss,
    virtualBytes,
    cpuSeconds,
    openFds,
    maxFds,
    startTime: Math.floor(performance.timeOrigin / 1000),
  };
}
