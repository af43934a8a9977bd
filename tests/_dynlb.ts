/**
 * Runs `main.ts` as a real subprocess for integration tests: loopback listeners on free ports,
 * readiness from the program's own ready line, logs kept for failure messages.
 *
 * @module
 */

import { RUN_PERMISSIONS } from "../src/permissions.ts";
import { V8_FLAG_ARG } from "../src/v8_flags.ts";

const MAIN = new URL("../main.ts", import.meta.url).pathname;

/**
 * One way to run the data plane end to end. Each field is one dimension of the matrix and maps to
 * one flag (see `MODE_FLAGS`); adding a dimension means one field here, one entry in `MODE_FLAGS`
 * and a value in every row of `MODES`.
 */
export interface Mode {
  /** `--workers`: 1 runs the data plane in the main isolate, 2 in two worker isolates. */
  readonly workers: 1 | 2;
  /** `--upstream-transport`: dynlb's own HTTP/1.1 client or `fetch`. */
  readonly transport: "h1" | "fetch";
  /** `--listener`: dynlb's own HTTP/1.1 server or `Deno.serve`. */
  readonly listener: "h1" | "serve";
}

/** The flag each `Mode` field sets. */
const MODE_FLAGS: Readonly<Record<keyof Mode, string>> = {
  workers: "--workers",
  transport: "--upstream-transport",
  listener: "--listener",
};

/**
 * The data-plane modes the integration suites (proxy, health, admin) run in. The first row is the
 * default mode: every integration test runs in it (and `startDynlb` uses it when no mode is
 * given). Tests marked `"every"` also run in the other rows. The rows form a pairwise
 * (orthogonal) array: every value of every dimension, and every pair of values of two
 * dimensions, is run end to end, with four rows instead of the full product (three two-valued
 * dimensions: workers, transport, listener). Keep it so when editing: any two rows that differ in
 * one dimension must differ in another too, and the two `workers: 2` rows (and the two
 * `transport: "h1"` rows) between them hold every value of the other dimensions, since costly
 * tests run in those pairs only.
 */
export const MODES: readonly Mode[] = [
  { workers: 2, transport: "h1", listener: "h1" },
  { workers: 1, transport: "fetch", listener: "h1" },
  { workers: 1, transport: "h1", listener: "serve" },
  { workers: 2, transport: "fetch", listener: "serve" },
];

/** The mode every integration test runs in. */
export const DEFAULT_MODE: Mode = MODES[0];

/** The flags that select `mode`. */
export function modeArgs(mode: Mode): string[] {
  return (Object.keys(MODE_FLAGS) as (keyof Mode)[]).flatMap((key) => [
    MODE_FLAGS[key],
    String(mode[key]),
  ]);
}

/** A short label for test names, e.g. `workers=2 transport=h1`. */
export function modeName(mode: Mode): string {
  return (Object.keys(MODE_FLAGS) as (keyof Mode)[]).map((key) => `${key}=${mode[key]}`).join(
    " ",
  );
}

/**
 * Which modes a test runs in: `"every"` row of `MODES`; the `"pair"` of `workers: 2` rows, which
 * between them run every transport and listener (for data-path behaviour that does not depend on
 * the isolate count); the `"default"` one only; or the rows a predicate accepts (for behaviour
 * that exists in some modes only). Setting
 * `DYNLB_TEST_MODES=all` runs every `"default"` test in every mode (a slower, thorough run).
 */
export type Coverage = "every" | "pair" | "default" | ((mode: Mode) => boolean);

/**
 * Registers `fn` as one Deno test per mode it covers, named `[mode] name`.
 *
 * @example
 * ```ts
 * modeTest("routes by Host", "every", async (mode) => {
 *   await using lb = await startDynlb(["--config-file", path], { mode });
 * });
 * ```
 */
export function modeTest(
  name: string,
  coverage: Coverage,
  fn: (mode: Mode) => Promise<void>,
): void {
  const all = coverage === "every" ||
    (typeof coverage !== "function" && Deno.env.get("DYNLB_TEST_MODES") === "all");
  const modes = typeof coverage === "function"
    ? MODES.filter(coverage)
    : coverage === "pair" && !all
    ? MODES.filter((mode) => mode.workers === 2)
    : all
    ? MODES
    : [DEFAULT_MODE];
  for (const mode of modes) {
    Deno.test(`[${modeName(mode)}] ${name}`, () => fn(mode));
  }
}

const READY = /ready: proxy http:\/\/(\S+), admin http:\/\/(\S+),/;
const READY_TLS = /, https https:\/\/(\S+),/;

/** A dynlb process under test. */
export interface Dynlb {
  /** `http://127.0.0.1:PORT` of the proxy listener. */
  readonly proxy: string;
  /** `http://127.0.0.1:PORT` of the admin API. */
  readonly admin: string;
  /** `127.0.0.1:PORT` of the HTTPS listener (`--listen-tls`), if any. */
  readonly tls?: string;
  readonly process: Deno.ChildProcess;
  /** Everything written to stderr so far. */
  logs(): string;
  /** Resolves once stderr contains `text` (or rejects after `timeoutMs`). */
  waitForLog(text: string | RegExp, timeoutMs?: number): Promise<void>;
  /** Sends `signal` (SIGTERM by default) and resolves with the exit code. */
  stop(signal?: Deno.Signal): Promise<number>;
  /** Resolves with the exit code once the process exited (sends nothing). */
  exited(): Promise<number>;
}

/**
 * How tests run dynlb: `deno run` with the V8 flags and dynlb's own permissions (those of
 * `deno task start` and the compiled executable, no `--allow-all`).
 *
 * @example
 * ```ts
 * await startDynlb(args, { command: ["prlimit", "--nofile=400:400", ...DYNLB_COMMAND] });
 * ```
 */
export const DYNLB_COMMAND: readonly string[] = [
  Deno.execPath(),
  "run",
  V8_FLAG_ARG,
  ...RUN_PERMISSIONS,
  MAIN,
];

/**
 * Starts dynlb with `args` (after `--listen 127.0.0.1:0 --admin 127.0.0.1:0` and the flags of
 * `options.mode`, `DEFAULT_MODE` when absent; a flag in `args` wins) and waits until it prints
 * its ready line.
 *
 * @example
 * ```ts
 * await using lb = await startDynlb(["--config-file", path]);
 * await fetch(lb.proxy + "/", { headers: { host: "www.test1.com" } });
 * ```
 */
export async function startDynlb(
  args: readonly string[],
  options: {
    env?: Record<string, string>;
    cwd?: string;
    mode?: Mode;
    /** What runs dynlb, instead of `deno run … main.ts` (e.g. `setsid scripts/start`). */
    command?: readonly string[];
    /** Runs it in a process group of its own (its id is the process id), as a service manager does. */
    detached?: boolean;
  } = {},
): Promise<Dynlb & AsyncDisposable> {
  const [program, ...launch] = options.command ?? DYNLB_COMMAND;
  const process = new Deno.Command(program, {
    args: [
      ...launch,
      "--listen",
      "127.0.0.1:0",
      "--admin",
      "127.0.0.1:0",
      ...modeArgs(options.mode ?? DEFAULT_MODE),
      ...args,
    ],
    // 1,024 connections are plenty for any test, and dynlb then probes only ~2,300 descriptors
    // for the open-file clamp at start (with the default 16,384 it opens /dev/null up to ~33,000
    // times, ~0.3 s per start, a minute of CPU over the suite). A test's own flag or env wins.
    env: { NO_COLOR: "1", DYNLB_MAX_CONNECTIONS: "1024", ...options.env },
    cwd: options.cwd,
    detached: options.detached,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();

  let stderr = "";
  const listeners = new Set<() => void>();
  const stderrDone = (async () => {
    for await (const chunk of process.stderr.pipeThrough(new TextDecoderStream())) {
      stderr += chunk;
      for (const listener of listeners) listener();
    }
  })();

  const lines = process.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let stdout = "";
  let match: RegExpMatchArray | null = null;
  while (match === null) {
    const { done, value } = await lines.read();
    if (done) {
      await stderrDone;
      const status = await process.status;
      throw new Error(`dynlb exited (${status.code}) before ready:\n${stdout}\n${stderr}`);
    }
    stdout += value;
    match = stdout.match(READY);
  }
  // Keep draining stdout so the child never blocks on a full pipe.
  const stdoutDone = (async () => {
    while (!(await lines.read()).done);
  })();

  let exited: Promise<number> | undefined;
  let gone = false;
  process.status.then(() => gone = true);
  const wait = (): Promise<number> =>
    exited ??= Promise.all([process.status, stderrDone, stdoutDone]).then(([s]) => s.code);
  const stop = (signal: Deno.Signal = "SIGTERM"): Promise<number> => {
    if (!gone) {
      try {
        process.kill(signal);
      } catch { /* already gone */ }
    }
    return wait();
  };

  return {
    proxy: `http://${match[1]}`,
    admin: `http://${match[2]}`,
    tls: stdout.match(READY_TLS)?.[1],
    process,
    logs: () => stderr,
    waitForLog(text, timeoutMs = 10_000) {
      const seen = () => typeof text === "string" ? stderr.includes(text) : text.test(stderr);
      if (seen()) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`log never showed ${text}:\n${stderr}`));
        }, timeoutMs);
        const check = () => {
          if (!seen()) return;
          clearTimeout(timer);
          listeners.delete(check);
          resolve();
        };
        listeners.add(check);
      });
    },
    stop,
    exited: wait,
    async [Symbol.asyncDispose]() {
      await stop("SIGKILL");
    },
  };
}

/**
 * Polls `probe` until it returns true (a readiness check, not a sleep: it returns as soon as the
 * condition holds) or rejects after `timeoutMs`.
 *
 * @example
 * ```ts
 * await eventually(async () => (await get(lb, "a.test")).status === 200);
 * ```
 */
export async function eventually(
  probe: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
  what = "condition",
): Promise<number> {
  const started = performance.now();
  while (!(await probe())) {
    if (performance.now() - started > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return performance.now() - started;
}

/** Sends a request to the proxy with a `Host` header and reads the whole body. */
export async function get(
  lb: { proxy: string },
  host: string,
  path = "/",
  init: RequestInit = {},
): Promise<{ status: number; headers: Headers; body: string }> {
  // Plain fetch replaces `Host` with the URL's; this client sends the one given.
  const client = Deno.createHttpClient({ allowHost: true, http2: false });
  try {
    const response = await fetch(lb.proxy + path, {
      ...init,
      client,
      headers: { host, ...(init.headers as Record<string, string> | undefined) },
    });
    const body = await response.text();
    return { status: response.status, headers: response.headers, body };
  } finally {
    client.close();
  }
}

/** Posts a config to the admin API. */
export async function postConfig(
  lb: { admin: string },
  config: unknown,
  save = false,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(lb.admin + "/config", {
    method: "POST",
    headers: { "content-type": "application/json", ...(save ? { "x-save": "1" } : {}) },
    body: typeof config === "string" ? config : JSON.stringify(config),
  });
  return { status: response.status, body: await response.json() };
}
