/**
 * The standard `process_*` figures of the Prometheus client libraries. CPU time and memory come
 * from the runtime; open and maximum file descriptors and virtual memory from `/proc`, which
 * Deno lets a program read only with `--allow-all` (otherwise those three are left out).
 *
 * @module
 */
import process from "node:process";

/** What the process uses right now. */
export interface ProcessFigures {
  readonly residentBytes: number;
  readonly virtualBytes: number | undefined;
  readonly cpuSeconds: number;
  readonly openFds: number | undefined;
  readonly maxFds: number | undefined;
  /** Seconds since the epoch. */
  readonly startTime: number;
}

/** `/proc` needs every permission; `run` and `ffi` are granted together only by `--allow-all`. */
const procReadable = Deno.permissions.querySync({ name: "run" }).state === "granted" &&
  Deno.permissions.querySync({ name: "ffi" }).state === "granted";

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
  let openFds: number | undefined;
  let maxFds: number | undefined;
  const cpu = process.cpuUsage();
  // Without --allow-all, reading /proc would fail (or prompt, in a terminal): do not try.
  if (procReadable) {
    try {
      const stat = Deno.readTextFileSync("/proc/self/stat");
      // The command name (field 2) may hold spaces and parentheses: count fields after its end.
      virtualBytes = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[20]);
      let n = 0;
      for (const _ of Deno.readDirSync("/proc/self/fd")) n++;
      openFds = n - 1; // the directory being read
      const limits = Deno.readTextFileSync("/proc/self/limits");
      const soft = limits.match(/^Max open files\s+(\d+)/m)?.[1];
      if (soft !== undefined) maxFds = Number(soft);
    } catch { /* not Linux */ }
  }
  return {
    residentBytes: Deno.memoryUsage().rss,
    virtualBytes,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    openFds,
    maxFds,
    startTime: Math.floor(performance.timeOrigin / 1000),
  };
}
