/**
 * CPU time and resident memory of a process and its descendants, read from `/proc` (Linux).
 *
 * nginx and HAProxy run workers as child processes (or threads); dynlb runs worker isolates as
 * threads. `/proc/<pid>/stat` already sums every thread of a process, so summing over the process
 * tree covers all designs the same way.
 *
 * @module
 */

/** Clock ticks per second of `utime`/`stime` (`getconf CLK_TCK`; 100 on every Linux we target). */
const TICKS_PER_SECOND = 100;

interface Stat {
  readonly ppid: number;
  /** utime + stime in ticks. */
  readonly ticks: number;
}

function readStat(pid: number): Stat | null {
  let text: string;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return null;
  }
  // The command name (field 2) may contain spaces and parentheses: split after its last ")".
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  // fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15.
  return { ppid: Number(fields[1]), ticks: Number(fields[11]) + Number(fields[12]) };
}

/**
 * The pid and every live descendant of it.
 *
 * @example
 * ```ts
 * const pids = processTree(Deno.pid);
 * ```
 */
export function processTree(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of Deno.readDirSync("/proc")) {
    const pid = Number(entry.name);
    if (!Number.isInteger(pid)) continue;
    const stat = readStat(pid);
    if (stat === null) continue;
    const list = children.get(stat.ppid);
    if (list === undefined) children.set(stat.ppid, [pid]);
    else list.push(pid);
  }
  const tree: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.pop()!;
    tree.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return tree;
}

/**
 * CPU seconds (user + system) used so far by the given processes; gone ones count 0.
 *
 * @example
 * ```ts
 * const before = cpuSeconds(processTree(pid));
 * ```
 */
export function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) ticks += readStat(pid)?.ticks ?? 0;
  return ticks / TICKS_PER_SECOND;
}

/**
 * Summed resident set size (`VmRSS`) of the given processes, in bytes.
 *
 * Processes that share pages (nginx workers and their master) are counted once each, as `ps`
 * would: the figure is an upper bound for multi-process servers.
 *
 * @example
 * ```ts
 * const rss = rssBytes(processTree(pid));
 * ```
 */
export function rssBytes(pids: readonly number[]): number {
  let kib = 0;
  for (const pid of pids) {
    let status: string;
    try {
      status = Deno.readTextFileSync(`/proc/${pid}/status`);
    } catch {
      continue;
    }
    const match = status.match(/^VmRSS:\s+(\d+) kB/m);
    if (match) kib += Number(match[1]);
  }
  return kib * 1024;
}

/** What a {@link ProcessMeter} saw between start and stop. */
export interface Usage {
  /** CPU seconds used by the process tree in the window. */
  readonly cpuSeconds: number;
  /** Highest summed RSS sampled in the window, in bytes. */
  readonly peakRssBytes: number;
  /** Wall-clock seconds of the window. */
  readonly wallSeconds: number;
}

/**
 * Measures a process tree over a window: CPU before/after and RSS sampled every `everyMs`.
 *
 * @example
 * ```ts
 * const meter = new ProcessMeter(pid);
 * await runLoad();
 * const usage = meter.stop(); // { cpuSeconds, peakRssBytes, wallSeconds }
 * ```
 */
export class ProcessMeter {
  readonly #pids: number[];
  readonly #cpuBefore: number;
  readonly #started = performance.now();
  readonly #timer: ReturnType<typeof setInterval>;
  #peak: number;

  constructor(root: number, everyMs = 100) {
    this.#pids = processTree(root);
    this.#cpuBefore = cpuSeconds(this.#pids);
    this.#peak = rssBytes(this.#pids);
    this.#timer = setInterval(() => {
      this.#peak = Math.max(this.#peak, rssBytes(this.#pids));
    }, everyMs);
  }

  /** Ends the window and returns what was used in it. */
  stop(): Usage {
    clearInterval(this.#timer);
    this.#peak = Math.max(this.#peak, rssBytes(this.#pids));
    return {
      cpuSeconds: cpuSeconds(this.#pids) - this.#cpuBefore,
      peakRssBytes: this.#peak,
      wallSeconds: (performance.now() - this.#started) / 1000,
    };
  }
}

const tracked = new Set<Deno.ChildProcess>();

/**
 * Runs a short-lived command (wrk, curl) to completion, killing it if {@link killTracked} is
 * called first (Ctrl-C of the harness), and returns its output.
 *
 * @example
 * ```ts
 * const out = await runTracked("curl", ["-sS", url]);
 * ```
 */
export async function runTracked(command: string, args: string[]): Promise<Deno.CommandOutput> {
  const child = new Deno.Command(command, { args, stdin: "null", stdout: "piped", stderr: "piped" })
    .spawn();
  tracked.add(child);
  try {
    return await child.output();
  } finally {
    tracked.delete(child);
  }
}

/**
 * Kills every command started by {@link runTracked} that is still running.
 *
 * @example
 * ```ts
 * killTracked();
 * ```
 */
export function killTracked(): void {
  for (const child of tracked) {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }
}
