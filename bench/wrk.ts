/**
 * Runs `wrk` and parses its `--latency` report.
 *
 * @module
 */
import { ProcessMeter, runTracked } from "./proc.ts";

/** One wrk run's settings. */
export interface WrkOptions {
  /** Full URL, e.g. `http://127.0.0.1:8080/s`. */
  readonly url: string;
  /** `Host` header sent with every request. */
  readonly host: string;
  readonly connections: number;
  readonly durationSeconds: number;
  /** wrk threads; 1 leaves the other core to the proxy and the backends. */
  readonly threads?: number;
  /** More request headers, `Name: value` each (e.g. `Connection: close`). */
  readonly headers?: readonly string[];
}

/** What wrk reported. */
export interface WrkResult {
  readonly requests: number;
  readonly requestsPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Responses other than 2xx/3xx. */
  readonly non2xx: number;
  /** connect + read + write + timeout socket errors. */
  readonly socketErrors: number;
}

/**
 * Runs wrk once; throws if it fails or its output cannot be parsed.
 *
 * @example
 * ```ts
 * const r = await runWrk({ url: "http://127.0.0.1:8080/s", host: "bench.test",
 *   connections: 32, durationSeconds: 10 });
 * console.log(r.requestsPerSecond, r.p99Ms);
 * ```
 */
export async function runWrk(options: WrkOptions): Promise<WrkResult> {
  const args = [
    `-t${options.threads ?? 1}`,
    `-c${options.connections}`,
    `-d${options.durationSeconds}s`,
    "--latency",
    "-H",
    `Host: ${options.host}`,
    ...(options.headers ?? []).flatMap((header) => ["-H", header]),
    options.url,
  ];
  const output = await runTracked("wrk", args);
  const text = new TextDecoder().decode(output.stdout);
  if (!output.success) {
    throw new Error(
      `wrk ${args.join(" ")} failed:\n${text}${new TextDecoder().decode(output.stderr)}`,
    );
  }
  return parseWrk(text);
}

/** A wrk run and what the measured process spent on it. */
export interface MeteredRun {
  readonly requests: number;
  readonly rps: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Proxy CPU time (all its processes/threads) divided by requests, in µs. */
  readonly cpuUsPerRequest: number;
  /** Highest summed RSS of the proxy's processes during the run, in MiB. */
  readonly peakRssMiB: number;
  /** Non-2xx responses plus socket errors. */
  readonly errors: number;
}

/**
 * Runs wrk while metering the process tree of `pid` (the proxy under test).
 *
 * @example
 * ```ts
 * const m = await meteredWrk(proxy.pid, { url: proxy.url + "/s", host: "bench.test",
 *   connections: 32, durationSeconds: 10 });
 * console.log(m.rps, m.cpuUsPerRequest);
 * ```
 */
export async function meteredWrk(pid: number, options: WrkOptions): Promise<MeteredRun> {
  const meter = new ProcessMeter(pid);
  const wrk = await runWrk(options);
  const usage = meter.stop();
  return {
    requests: wrk.requests,
    rps: wrk.requestsPerSecond,
    p50Ms: wrk.p50Ms,
    p99Ms: wrk.p99Ms,
    cpuUsPerRequest: usage.cpuSeconds / Math.max(1, wrk.requests) * 1e6,
    peakRssMiB: usage.peakRssBytes / 2 ** 20,
    errors: wrk.non2xx + wrk.socketErrors,
  };
}

/**
 * Parses wrk's text report (with `--latency`).
 *
 * @example
 * ```ts
 * parseWrk(stdout).requestsPerSecond;
 * ```
 */
export function parseWrk(text: string): WrkResult {
  const number = (re: RegExp): number => {
    const m = text.match(re);
    if (!m) throw new Error(`cannot parse wrk output (${re}):\n${text}`);
    return Number(m[1]);
  };
  const latency = (pct: string): number => {
    const m = text.match(new RegExp(`^\\s+${pct}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, "m"));
    if (!m) throw new Error(`cannot parse wrk ${pct}% latency:\n${text}`);
    return Number(m[1]) * UNIT_MS[m[2]];
  };
  const errors = text.match(/Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/);
  return {
    requests: number(/(\d+) requests in/),
    requestsPerSecond: number(/Requests\/sec:\s+([\d.]+)/),
    p50Ms: latency("50"),
    p99Ms: latency("99"),
    non2xx: text.match(/Non-2xx or 3xx responses: (\d+)/)?.slice(1).map(Number)[0] ?? 0,
    socketErrors: errors ? errors.slice(1).map(Number).reduce((a, b) => a + b, 0) : 0,
  };
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

/**
 * The wrk version line (`wrk -v` prints it and exits 1).
 *
 * @example
 * ```ts
 * await wrkVersion(); // "wrk debian/4.1.0-3+b2 [epoll] ..."
 * ```
 */
export async function wrkVersion(): Promise<string> {
  const out = await new Deno.Command("wrk", { args: ["-v"], stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  return text.split("\n")[0].trim();
}
